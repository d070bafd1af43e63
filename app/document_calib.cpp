// Document: calibration (a run saved to its file, a file loaded back).
#include <QFileInfo>
#include <QFutureWatcher>
#include <QtConcurrent/QtConcurrentRun>

#include "app/document.h"

namespace qs::app {

void Document::cancelCalibration() {
  // The job returns Cancelled at the next sequence; write_calibration_file is
  // atomic, so nothing is at the destination when calibrationCancelled comes.
  if (calibrateControl_) calibrateControl_->cancel();
}

void Document::requestCalibration(const CalibrateJobRequest& request) {
  if (calibrateControl_) calibrateControl_->cancel();  // superseded: its answer is dropped
  calibrateControl_.reset();
  const quint64 generation = ++calibrateGeneration_;
  if (!model_) return;
  calibrateControl_ = std::make_shared<JobControl>();
  progressTimer_.start();
  auto* watcher = new QFutureWatcher<CalibrateOutcome>(this);
  connect(watcher, &QFutureWatcher<CalibrateOutcome>::finished, this, [this, watcher] {
    watcher->deleteLater();
    onCalibrateFinished(watcher->result());
  });
  // The forward pass goes where the statistics do: the document's compute backend.
  CalibrateJobRequest job = request;
  job.backend = QString::fromStdString(backend_->name());  // the same device makes the forward pass
  watcher->setFuture(QtConcurrent::run(runCalibrate, model_, job, generation, calibrateControl_));
}

void Document::onCalibrateFinished(const CalibrateOutcome& outcome) {
  if (outcome.generation != calibrateGeneration_) return;  // superseded, or another model opened
  calibrateControl_.reset();
  if (outcome.cancelled) {
    emit calibrationCancelled();
    return;
  }
  if (!outcome.file) {
    emit calibrationFailed(outcome.error);
    return;
  }
  ++calibrationLoadGeneration_;  // a load still in flight would replace the fresh run
  setCalibration(outcome.file);
  emit calibrationFinished(outcome);
}

QString Document::defaultCalibrationPath() const {
  return model_ ? QString::fromStdString(default_calibration_path(*model_)) : QString();
}

void Document::loadCalibration(const QString& path, bool automatic) {
  if (calibrationLoadControl_) calibrationLoadControl_->cancel();
  const quint64 generation = ++calibrationLoadGeneration_;
  if (!model_) return;
  calibrationLoadControl_ = std::make_shared<JobControl>();
  emit calibrationLoadStarted(path, automatic);
  auto* watcher = new QFutureWatcher<CalibrationLoadOutcome>(this);
  connect(watcher, &QFutureWatcher<CalibrationLoadOutcome>::finished, this, [this, watcher] {
    watcher->deleteLater();
    onCalibrationLoaded(watcher->result());
  });
  watcher->setFuture(
      QtConcurrent::run(runLoadCalibration, model_, path, automatic, generation, calibrationLoadControl_));
}

void Document::onCalibrationLoaded(const CalibrationLoadOutcome& outcome) {
  if (outcome.generation != calibrationLoadGeneration_) return;
  calibrationLoadControl_.reset();
  if (!outcome.file) {
    if (!outcome.cancelled) emit calibrationLoadFailed(outcome.path, outcome.error, outcome.automatic);
    return;
  }
  setCalibration(outcome.file);
}

void Document::setCalibration(std::shared_ptr<const CalibrationFile> file) {
  calibration_ = std::move(file);
  // Cached figures lack (or carry another run's) output error: measure again.
  cancelMeasurements();
  measureCache_.clear();
  // An allocation or a before/after view under way was computed without these statistics.
  cancelAllocation();
  cancelErrorHistograms();
  costs_.reset();
  costFormats_.clear();
  emit calibrationChanged();
}

Result<Heatmap> Document::smallHeatmap(const float* data, std::int64_t rows, std::int64_t cols,
                                       const HeatmapRequest& request) const {
  TensorData t;
  t.dtype = DType::F32;
  t.data = reinterpret_cast<const std::byte*>(data);
  t.numel = static_cast<std::uint64_t>(rows * cols);
  t.rows = rows;
  t.cols = cols;
  return backend_->abs_heatmap(t, request, OpContext::none());
}

}  // namespace qs::app
