// Document: the plan editor's jobs (layer measurements, budget allocation).
#include <QFutureWatcher>
#include <QtConcurrent/QtConcurrentRun>
#include <algorithm>

#include "app/document.h"

namespace qs::app {

std::optional<LayerMeasureOutcome> Document::cachedMeasurement(int layer, const QString& format) const {
  auto it = measureCache_.constFind(qMakePair(layer, format));
  if (it == measureCache_.constEnd()) return std::nullopt;
  return *it;
}

void Document::requestMeasurements(const QVector<QPair<int, QString>>& layers, bool live) {
  if (!model_) return;
  QVector<LayerMeasureRequest> fill;
  QVector<LayerMeasureOutcome> cached;
  for (const auto& [layer, format] : layers) {
    if (layer < 0 || static_cast<std::size_t>(layer) >= model_->layers.size()) continue;
    const quint64 generation = ++measureGeneration_;
    layerGeneration_[layer] = generation;  // whatever was asked for this layer before is stale now
    pendingLive_.remove(layer);
    if (auto hit = cachedMeasurement(layer, format)) {
      hit->generation = generation;
      cached.push_back(*hit);
    } else if (live) {
      pendingLive_[layer] = format;
    } else {
      fill.push_back({layer, format, generation});
    }
  }
  // Busy before the superseded jobs are cancelled: an edit that supersedes a
  // running measurement is a rapid edit and waits for the debounce.
  const bool busy = measureTimer_.isActive() || liveMeasureRunning();
  cancelSupersededMeasureJobs();
  if (!pendingLive_.isEmpty()) {
    if (busy) measureTimer_.start();  // (re)start: rapid edits collect
    else startPendingLiveMeasurements();  // a lone edit: no reason to wait
  }
  if (!fill.isEmpty()) startMeasureJob(std::move(fill), true);
  for (const LayerMeasureOutcome& o : cached) onLayerMeasured(o);
  if (!live && fill.isEmpty()) emit measureProgress(0, 0);
}

void Document::prepareMeasurement(int layer) {
  if (!model_) return;
  (void)QtConcurrent::run(warmMeasureScratch, model_, layer, measureScratch_);  // owns what it uses
}

void Document::startPendingLiveMeasurements() {
  measureTimer_.stop();
  QVector<LayerMeasureRequest> requests;
  for (auto it = pendingLive_.cbegin(); it != pendingLive_.cend(); ++it)
    requests.push_back({it.key(), it.value(), layerGeneration_.value(it.key())});
  pendingLive_.clear();
  if (!requests.isEmpty()) startMeasureJob(std::move(requests), false);
}

bool Document::liveMeasureRunning() const {
  return std::any_of(measureJobs_.cbegin(), measureJobs_.cend(),
                     [this](const MeasureJob& j) { return j.id != fillJob_ && !j.control->cancelled(); });
}

void Document::cancelSupersededMeasureJobs() {
  for (MeasureJob& job : measureJobs_) {
    bool current = false;
    for (auto it = job.layers.cbegin(); it != job.layers.cend() && !current; ++it)
      current = layerGeneration_.value(it.key()) == it.value();
    if (!current) job.control->cancel();  // its answers would all be dropped
  }
}

void Document::cancelMeasurements() {
  measureTimer_.stop();
  pendingLive_.clear();
  layerGeneration_.clear();
  ++measureGeneration_;
  for (MeasureJob& job : measureJobs_) job.control->cancel();
  measureJobs_.clear();
  fillJob_ = 0;
  fillDone_ = fillTotal_ = 0;
}

void Document::startMeasureJob(QVector<LayerMeasureRequest> requests, bool fill) {
  MeasureJob job;
  job.id = ++measureJobId_;
  job.control = std::make_shared<JobControl>();
  for (const LayerMeasureRequest& r : requests) job.layers.insert(r.layer, r.generation);
  const quint64 id = job.id;
  if (fill) {
    fillJob_ = id;
    fillDone_ = 0;
    fillTotal_ = static_cast<int>(requests.size());
    emit measureProgress(0, fillTotal_);
  }
  measureJobs_.push_back(job);

  auto* watcher = new QFutureWatcher<LayerMeasureOutcome>(this);
  connect(watcher, &QFutureWatcher<LayerMeasureOutcome>::resultReadyAt, this, [this, watcher, id](int index) {
    // Dropped when its job was let go (another model opened): the cache is of the open model only.
    if (std::none_of(measureJobs_.cbegin(), measureJobs_.cend(), [id](const MeasureJob& j) { return j.id == id; }))
      return;
    const LayerMeasureOutcome outcome = watcher->resultAt(index);
    if (id == fillJob_) emit measureProgress(++fillDone_, fillTotal_);
    onLayerMeasured(outcome);
  });
  connect(watcher, &QFutureWatcher<LayerMeasureOutcome>::finished, this, [this, watcher, id] {
    watcher->deleteLater();
    measureJobs_.removeIf([id](const MeasureJob& j) { return j.id == id; });
    if (id == fillJob_) {
      fillJob_ = 0;
      emit measureProgress(fillTotal_, fillTotal_);
    }
  });
  watcher->setFuture(QtConcurrent::run(runMeasureLayers, model_, std::move(requests), job.control, measureScratch_,
                                       calibration_));
}

void Document::onLayerMeasured(const LayerMeasureOutcome& outcome) {
  if (outcome.cancelled) return;
  // A valid answer for (layer, format) even when superseded: keep it, undo and re-edits find it.
  measureCache_.insert(qMakePair(outcome.layer, outcome.format), outcome);
  if (layerGeneration_.value(outcome.layer) != outcome.generation) return;  // a newer request is under way
  if (outcome.ok) emit layerMeasured(outcome.layer, outcome.format, outcome.figures);
  else emit layerMeasureFailed(outcome.layer, outcome.format, outcome.error);
}

void Document::requestErrorHistograms(int layer, const QString& format) {
  cancelErrorHistograms();
  if (!model_) return;
  errorLayer_ = layer;
  errorFormat_ = format;
  errorTimer_.start();
}

void Document::cancelErrorHistograms() {
  ++errorGeneration_;
  errorTimer_.stop();
  if (errorControl_) errorControl_->cancel();
  errorControl_.reset();
}

void Document::startErrorHistograms() {
  if (!model_) return;
  const quint64 generation = errorGeneration_;
  errorControl_ = std::make_shared<JobControl>();
  auto* watcher = new QFutureWatcher<ErrorHistogramsOutcome>(this);
  connect(watcher, &QFutureWatcher<ErrorHistogramsOutcome>::finished, this, [this, watcher] {
    watcher->deleteLater();
    const ErrorHistogramsOutcome o = watcher->result();
    if (o.generation != errorGeneration_) return;  // superseded
    errorControl_.reset();
    if (o.histograms) {
      errorHistograms_ = o.histograms;
      emit errorHistogramsReady(o.layer, o.format);
    } else if (!o.cancelled) {
      emit errorHistogramsFailed(o.layer, o.format, o.error);
    }
  });
  constexpr int kBins = 128;
  watcher->setFuture(
      QtConcurrent::run(runErrorHistograms, model_, errorLayer_, errorFormat_, kBins, generation, errorControl_,
                        calibration_));
}

void Document::cancelAllocation() {
  ++allocateGeneration_;
  if (allocateControl_) allocateControl_->cancel();
  allocateControl_.reset();
}

void Document::requestAllocation(double target, const QStringList& formats) {
  cancelAllocation();
  if (!model_) return;
  const quint64 generation = allocateGeneration_;
  allocateControl_ = std::make_shared<JobControl>();
  progressTimer_.start();
  auto* watcher = new QFutureWatcher<AllocateOutcome>(this);
  connect(watcher, &QFutureWatcher<AllocateOutcome>::finished, this, [this, watcher] {
    watcher->deleteLater();
    onAllocationFinished(watcher->result());
  });
  auto costs = formats == costFormats_ ? costs_ : nullptr;
  watcher->setFuture(
      QtConcurrent::run(runAllocate, model_, formats, target, costs, generation, allocateControl_, calibration_));
}

void Document::onAllocationFinished(const AllocateOutcome& outcome) {
  if (outcome.generation != allocateGeneration_) return;
  allocateControl_.reset();
  if (outcome.costs) {
    costs_ = outcome.costs;
    costFormats_ = outcome.formats;
  }
  if (!outcome.allocation) {
    if (!outcome.cancelled) emit allocationFailed(outcome.error);
    return;
  }
  allocation_ = outcome.allocation;
  emit allocationReady();
}

}  // namespace qs::app

