#include "app/document.h"

#include <QFutureWatcher>
#include <QtConcurrent/QtConcurrentRun>

#include "app/plan_document.h"
#include "backend/cpu_backend.h"
#include "stats/outliers.h"

namespace qs::app {

Document::Document(std::shared_ptr<Backend> backend, QObject* parent)
    : QObject(parent), backend_(std::move(backend)), outlierFactor_(kDefaultOutlierFactor),
      measureScratch_(std::make_shared<MeasureScratch>()) {
  if (!backend_) backend_ = cpu_backend();  // the CPU is a device like any other, never a null pointer
  if (!backend_->is_host()) measureScratch_->device = backend_;
  plan_ = new PlanDocument(this);
  // Plan edits: an edit when nothing live is pending or running is measured at
  // once; edits that come while one is (rapid typing, spin boxes) collect for
  // 50 ms and then the latest of each layer is measured (the rest superseded).
  measureTimer_.setSingleShot(true);
  measureTimer_.setInterval(50);
  connect(&measureTimer_, &QTimer::timeout, this, &Document::startPendingLiveMeasurements);
  errorTimer_.setSingleShot(true);
  errorTimer_.setInterval(150);
  connect(&errorTimer_, &QTimer::timeout, this, &Document::startErrorHistograms);
  progressTimer_.setInterval(100);
  connect(&progressTimer_, &QTimer::timeout, this, [this] {
    if (statsControl_) emit statsProgress(statsTensor_, statsControl_->progress());
    if (overviewControl_) emit overviewProgress(overviewControl_->progress());
    if (allocateControl_) emit allocationProgress(allocateControl_->progress());
    if (exportControl_) emit exportProgress(exportControl_->progress());
    if (calibrateControl_) emit calibrationProgress(calibrateControl_->progress());
    if (!statsControl_ && !overviewControl_ && !allocateControl_ && !exportControl_ && !calibrateControl_)
      progressTimer_.stop();
  });
}

Document::~Document() {
  // Jobs own what they use (shared pointers), so they may outlive us; cancel
  // them so that the thread pool drains quickly at exit.
  cancelStats();
  cancelOverview();
  cancelHeatmap();
  cancelComparison();
  cancelMeasurements();
  cancelErrorHistograms();
  cancelAllocation();
  cancelExport();
}

QString Document::path() const { return model_ ? QString::fromStdString(model_->path) : QString(); }

QString Document::outlierRule() const {
  return tr("channel abs-max > %1 × median (LLM.int8 magnitude rule)").arg(outlierFactor_);
}

void Document::open(const QString& path) { startOpen(path, false); }
void Document::openDemo() { startOpen(tr("demo model"), true); }

void Document::startOpen(const QString& path, bool demo) {
  const quint64 generation = ++openGeneration_;
  openPending_ = true;
  emit openStarted(path);
  auto* watcher = new QFutureWatcher<OpenOutcome>(this);
  connect(watcher, &QFutureWatcher<OpenOutcome>::finished, this, [this, watcher, generation, path] {
    watcher->deleteLater();
    onOpenFinished(generation, path, watcher->result());
  });
  watcher->setFuture(QtConcurrent::run(runOpen, path, demo));
}

void Document::onOpenFinished(quint64 generation, const QString& path, const OpenOutcome& outcome) {
  if (generation != openGeneration_) return;  // a later open superseded this one
  openPending_ = false;
  if (!outcome.model) {
    emit openFailed(path, outcome.error);
    return;
  }
  cancelStats();
  cancelOverview();
  cancelHeatmap();
  cancelComparison();
  cache_.clear();
  overview_.reset();
  heatmap_.reset();
  heatmapTensor_ = -1;
  comparison_.reset();
  comparisonTensor_ = -1;
  cancelMeasurements();
  measureCache_.clear();
  cancelErrorHistograms();
  errorHistograms_.reset();
  cancelAllocation();
  allocation_.reset();
  costs_.reset();
  costFormats_.clear();
  cancelCalibration();
  ++calibrateGeneration_;  // a run for the old model is dropped (the app resets its dialog)
  calibrateControl_.reset();
  if (calibrationLoadControl_) calibrationLoadControl_->cancel();
  calibrationLoadControl_.reset();
  ++calibrationLoadGeneration_;  // a load for the old model is dropped
  calibration_.reset();
  model_ = outcome.model;
  emit modelOpened();
  requestOverview();
}

void Document::cancelStats() {
  ++statsGeneration_;  // whatever is in flight is now stale
  if (statsControl_) statsControl_->cancel();
  statsControl_.reset();
  statsTensor_ = -1;
}

void Document::requestStats(int tensor) {
  cancelStats();
  if (!model_ || tensor < 0 || static_cast<std::size_t>(tensor) >= model_->tensors.size()) {
    emit statsFailed(tensor, tr("No tensor %1 in the open model").arg(tensor));
    return;
  }
  if (cache_.contains(tensor)) {
    emit statsReady(tensor);
    return;
  }
  const quint64 generation = statsGeneration_;
  statsTensor_ = tensor;
  statsControl_ = std::make_shared<JobControl>();
  emit statsStarted(tensor);
  progressTimer_.start();

  auto* watcher = new QFutureWatcher<StatsOutcome>(this);
  connect(watcher, &QFutureWatcher<StatsOutcome>::finished, this, [this, watcher] {
    watcher->deleteLater();
    onStatsFinished(watcher->result());
  });
  watcher->setFuture(
      QtConcurrent::run(runStats, model_, backend_, tensor, generation, statsControl_, outlierFactor_));
}

void Document::onStatsFinished(const StatsOutcome& outcome) {
  // Stale (superseded, or from a model since replaced): drop it. Checked first,
  // so the cache only ever holds results for the current model.
  if (outcome.generation != statsGeneration_) return;
  statsControl_.reset();
  statsTensor_ = -1;
  if (!outcome.summary) {
    if (!outcome.cancelled) emit statsFailed(outcome.tensor, outcome.error);
    return;
  }
  cache_.insert(outcome.tensor, outcome.summary);
  emit statsReady(outcome.tensor);
}

void Document::cancelOverview() {
  ++overviewGeneration_;
  if (overviewControl_) overviewControl_->cancel();
  overviewControl_.reset();
}

void Document::requestOverview() {
  cancelOverview();
  if (!model_) return;
  const quint64 generation = overviewGeneration_;
  overviewControl_ = std::make_shared<JobControl>();
  emit overviewStarted();
  progressTimer_.start();
  auto* watcher = new QFutureWatcher<OverviewOutcome>(this);
  connect(watcher, &QFutureWatcher<OverviewOutcome>::finished, this, [this, watcher] {
    watcher->deleteLater();
    onOverviewFinished(watcher->result());
  });
  watcher->setFuture(QtConcurrent::run(runOverview, model_, backend_, generation, overviewControl_, outlierFactor_));
}

void Document::onOverviewFinished(const OverviewOutcome& outcome) {
  if (outcome.generation != overviewGeneration_) return;  // superseded, or for a model since replaced
  overviewControl_.reset();
  if (!outcome.figures) {
    if (!outcome.cancelled) emit overviewFailed(outcome.error);
    return;
  }
  overview_ = outcome.figures;
  emit overviewReady();
}

bool Document::validTensor(int tensor) const {
  return model_ && tensor >= 0 && static_cast<std::size_t>(tensor) < model_->tensors.size();
}

void Document::cancelHeatmap() {
  ++heatmapGeneration_;
  if (heatmapControl_) heatmapControl_->cancel();
  heatmapControl_.reset();
}

void Document::requestHeatmap(int tensor, const HeatmapRequest& request) {
  cancelHeatmap();
  if (!validTensor(tensor)) {
    emit heatmapFailed(tensor, tr("No tensor %1 in the open model").arg(tensor));
    return;
  }
  const quint64 generation = heatmapGeneration_;
  heatmapControl_ = std::make_shared<JobControl>();
  emit heatmapStarted(tensor);
  auto* watcher = new QFutureWatcher<HeatmapOutcome>(this);
  connect(watcher, &QFutureWatcher<HeatmapOutcome>::finished, this, [this, watcher] {
    watcher->deleteLater();
    onHeatmapFinished(watcher->result());
  });
  watcher->setFuture(QtConcurrent::run(runHeatmap, model_, backend_, tensor, request, generation, heatmapControl_));
}

void Document::onHeatmapFinished(const HeatmapOutcome& outcome) {
  if (outcome.generation != heatmapGeneration_) return;  // superseded, or for a model since replaced
  heatmapControl_.reset();
  if (!outcome.heatmap) {
    if (!outcome.cancelled) emit heatmapFailed(outcome.tensor, outcome.error);
    return;
  }
  heatmap_ = outcome.heatmap;
  heatmapTensor_ = outcome.tensor;
  emit heatmapReady(outcome.tensor);
}

void Document::cancelComparison() {
  ++comparisonGeneration_;
  if (comparisonControl_) comparisonControl_->cancel();
  comparisonControl_.reset();
}

void Document::requestComparison(int tensor, const HistogramSpec& spec) {
  cancelComparison();
  if (!validTensor(tensor)) {
    emit comparisonFailed(tensor, tr("No tensor %1 in the open model").arg(tensor));
    return;
  }
  const quint64 generation = comparisonGeneration_;
  comparisonControl_ = std::make_shared<JobControl>();
  auto* watcher = new QFutureWatcher<ComparisonOutcome>(this);
  connect(watcher, &QFutureWatcher<ComparisonOutcome>::finished, this, [this, watcher] {
    watcher->deleteLater();
    onComparisonFinished(watcher->result());
  });
  watcher->setFuture(
      QtConcurrent::run(runComparison, model_, backend_, tensor, spec, generation, comparisonControl_));
}

void Document::onComparisonFinished(const ComparisonOutcome& outcome) {
  if (outcome.generation != comparisonGeneration_) return;
  comparisonControl_.reset();
  if (!outcome.histogram) {
    if (!outcome.cancelled) emit comparisonFailed(outcome.tensor, outcome.error);
    return;
  }
  comparison_ = outcome.histogram;
  comparisonTensor_ = outcome.tensor;
  emit comparisonReady(outcome.tensor);
}

}  // namespace qs::app
