#pragma once
// Document: the open model and everything computed from it. It runs opens and
// statistics as jobs on Qt's thread pool and answers with signals, so the UI
// thread never waits. A newer request supersedes an older one: the older job is
// cancelled and its result, should it still arrive, is dropped.
#include <QHash>
#include <QPair>
#include <QVector>
#include <optional>
#include <QObject>
#include <QString>
#include <QTimer>
#include <memory>

#include "app/calib_jobs.h"
#include "app/export_job.h"
#include "app/jobs.h"
#include "app/plan_jobs.h"

namespace qs::app {

class PlanDocument;

class Document : public QObject {
  Q_OBJECT
 public:
  explicit Document(std::shared_ptr<Backend> backend, QObject* parent = nullptr);
  ~Document() override;

  // The plan being edited (its configs, undo stack and figures).
  PlanDocument* plan() const { return plan_; }

  // Opening keeps the current model until the new one is ready; a failure leaves it as is.
  void open(const QString& path);
  void openDemo();
  bool isOpening() const { return openPending_; }

  std::shared_ptr<const Model> model() const { return model_; }
  QString path() const;
  const Backend& backend() const { return *backend_; }

  // Statistics of one tensor (index into Model::tensors): cached answers come
  // back at once, others from a job. Only the latest request is answered.
  void requestStats(int tensor);
  void cancelStats();
  bool isComputing() const { return statsControl_ != nullptr; }
  std::shared_ptr<const LayerSummary> cachedStats(int tensor) const { return cache_.value(tensor); }

  // The model overview (figures of every layer along depth): started by itself
  // once a model opens, cancelled when another one does.
  void requestOverview();
  void cancelOverview();
  bool isOverviewComputing() const { return overviewControl_ != nullptr; }
  std::shared_ptr<const std::vector<LayerFigures>> overview() const { return overview_; }

  // The |W| heatmap of a region of one weight. A newer request cancels and
  // supersedes the one in flight (zooming sends many); not cached.
  void requestHeatmap(int tensor, const HeatmapRequest& request);
  void cancelHeatmap();
  bool isHeatmapComputing() const { return heatmapControl_ != nullptr; }
  std::shared_ptr<const Heatmap> heatmap() const { return heatmap_; }  // the latest answer
  int heatmapTensor() const { return heatmapTensor_; }

  // The histogram of `tensor` over the bins of `spec` (another tensor's
  // histogram range), for the comparison overlay. Superseded like the others.
  void requestComparison(int tensor, const HistogramSpec& spec);
  void cancelComparison();
  std::shared_ptr<const Histogram> comparison() const { return comparison_; }
  int comparisonTensor() const { return comparisonTensor_; }

  // Plan editor: layer `layer` (index into Model::layers) measured under
  // `format`. Cached answers come back at once; a live request starts at once
  // when no other live one is pending or running, else waits ~50 ms for more
  // edits (debounce); a newer request for a layer supersedes the older one (its
  // result is dropped; a job left with nothing current is cancelled). A fill
  // (live = false) starts at once, with progress.
  void requestMeasurements(const QVector<QPair<int, QString>>& layers, bool live);
  void cancelMeasurements();
  // A row was selected: convert its weight to F32 in the background, ready for its first edit.
  void prepareMeasurement(int layer);
  bool isMeasuring() const { return !measureJobs_.isEmpty() || measureTimer_.isActive(); }
  std::optional<LayerMeasureOutcome> cachedMeasurement(int layer, const QString& format) const;
  int measureDebounceMs() const { return measureTimer_.interval(); }

  // Allocation to a budget: candidates measured once per set of formats (cached), then allocate_to_budget.
  void requestAllocation(double target, const QStringList& formats);
  void cancelAllocation();
  bool isAllocating() const { return allocateControl_ != nullptr; }
  std::shared_ptr<const Allocation> allocation() const { return allocation_; }

  // The before/after/error histograms of one plan row: starts after a short
  // delay (the row's live measurement, which the user waits for, goes first);
  // a newer request supersedes the older one.
  void requestErrorHistograms(int layer, const QString& format);
  void cancelErrorHistograms();
  bool isErrorHistogramsComputing() const { return errorTimer_.isActive() || errorControl_ != nullptr; }
  std::shared_ptr<const QuantErrorHistograms> errorHistograms() const { return errorHistograms_; }
  // Export (File ▸ Export…): one at a time; a new request cancels the one in
  // flight. Answers with exportFinished (result or error) or exportCancelled.
  void requestExport(const ExportJobRequest& request);
  void cancelExport();
  bool isExporting() const { return exportControl_ != nullptr; }

  // Calibration (Tools ▸ Calibrate…): one run at a time, saved to
  // request.outputPath; answers with calibrationFinished (and the data become
  // the document's calibration), calibrationFailed or calibrationCancelled.
  void requestCalibration(const CalibrateJobRequest& request);
  void cancelCalibration();
  bool isCalibrating() const { return calibrateControl_ != nullptr; }
  // Loads a calibration file made for the open model (another model's is
  // refused); `automatic`: the default file found on open.
  void loadCalibration(const QString& path, bool automatic = false);
  // The default calibration file of the open model, when there is one.
  QString defaultCalibrationPath() const;
  bool isLoadingCalibration() const { return calibrationLoadControl_ != nullptr; }
  std::shared_ptr<const CalibrationFile> calibration() const { return calibration_; }
  // Max |x| over tiles of a region of an F32 [rows, cols] matrix, on the
  // document's backend, at once (the activation map: small enough for the UI thread).
  Result<Heatmap> smallHeatmap(const float* data, std::int64_t rows, std::int64_t cols,
                               const HeatmapRequest& request) const;

  double outlierFactor() const { return outlierFactor_; }
  QString outlierRule() const;

 signals:
  void openStarted(const QString& path);
  void modelOpened();
  void openFailed(const QString& path, const QString& message);
  void statsStarted(int tensor);
  void statsProgress(int tensor, double fraction);
  void statsReady(int tensor);
  void statsFailed(int tensor, const QString& message);
  void overviewStarted();
  void overviewProgress(double fraction);
  void overviewReady();
  void overviewFailed(const QString& message);
  void heatmapStarted(int tensor);
  void heatmapReady(int tensor);
  void heatmapFailed(int tensor, const QString& message);
  void comparisonReady(int tensor);
  void comparisonFailed(int tensor, const QString& message);
  void layerMeasured(int layer, const QString& format, const qs::LayerQuantError& figures);
  void layerMeasureFailed(int layer, const QString& format, const QString& message);
  void measureProgress(int done, int total);  // of the latest fill
  void allocationProgress(double fraction);
  void errorHistogramsReady(int layer, const QString& format);
  void errorHistogramsFailed(int layer, const QString& format, const QString& message);
  void allocationReady();
  void allocationFailed(const QString& message);
  void exportProgress(double fraction);
  void exportFinished(const qs::app::ExportOutcome& outcome);  // with a result, or an error to show
  void exportCancelled();
  void calibrationProgress(double fraction);
  void calibrationFinished(const qs::app::CalibrateOutcome& outcome);
  void calibrationFailed(const QString& message);
  void calibrationCancelled();
  void calibrationLoadStarted(const QString& path, bool automatic);
  void calibrationLoadFailed(const QString& path, const QString& message, bool automatic);
  // The document's calibration data changed (loaded, calibrated, or gone with a new model):
  // measurements were dropped and are to be requested again.
  void calibrationChanged();

 private:
  void startOpen(const QString& path, bool demo);
  void onOpenFinished(quint64 generation, const QString& path, const OpenOutcome& outcome);
  void onStatsFinished(const StatsOutcome& outcome);
  void onOverviewFinished(const OverviewOutcome& outcome);
  void onHeatmapFinished(const HeatmapOutcome& outcome);
  void onComparisonFinished(const ComparisonOutcome& outcome);
  bool validTensor(int tensor) const;
  void startMeasureJob(QVector<LayerMeasureRequest> requests, bool fill);
  void onLayerMeasured(const LayerMeasureOutcome& outcome);
  void cancelSupersededMeasureJobs();
  void startPendingLiveMeasurements();
  bool liveMeasureRunning() const;
  void onAllocationFinished(const AllocateOutcome& outcome);
  void startErrorHistograms();
  void onExportFinished(const ExportOutcome& outcome);
  void onCalibrateFinished(const CalibrateOutcome& outcome);
  void onCalibrationLoaded(const CalibrationLoadOutcome& outcome);
  void setCalibration(std::shared_ptr<const CalibrationFile> file);

  std::shared_ptr<Backend> backend_;
  PlanDocument* plan_ = nullptr;  // child
  std::shared_ptr<const Model> model_;
  QHash<int, std::shared_ptr<const LayerSummary>> cache_;
  double outlierFactor_;

  quint64 openGeneration_ = 0;
  bool openPending_ = false;

  quint64 statsGeneration_ = 0;
  int statsTensor_ = -1;
  std::shared_ptr<JobControl> statsControl_;  // the running request's cancel flag
  QTimer progressTimer_;                      // polls the jobs' progress: no cross-thread callbacks

  quint64 overviewGeneration_ = 0;
  std::shared_ptr<JobControl> overviewControl_;
  std::shared_ptr<const std::vector<LayerFigures>> overview_;  // of the open model

  quint64 heatmapGeneration_ = 0;
  std::shared_ptr<JobControl> heatmapControl_;
  std::shared_ptr<const Heatmap> heatmap_;
  int heatmapTensor_ = -1;

  quint64 comparisonGeneration_ = 0;
  std::shared_ptr<JobControl> comparisonControl_;
  std::shared_ptr<const Histogram> comparison_;
  int comparisonTensor_ = -1;

  struct MeasureJob {
    quint64 id = 0;
    std::shared_ptr<JobControl> control;
    QHash<int, quint64> layers;  // layer -> the generation this job measures
  };
  quint64 measureGeneration_ = 0, measureJobId_ = 0, fillJob_ = 0;
  QHash<int, quint64> layerGeneration_;              // the current request of each layer
  QHash<int, QString> pendingLive_;                  // waiting for the debounce
  QVector<MeasureJob> measureJobs_;
  QHash<QPair<int, QString>, LayerMeasureOutcome> measureCache_;  // of the open model
  QTimer measureTimer_;
  std::shared_ptr<MeasureScratch> measureScratch_;
  int fillDone_ = 0, fillTotal_ = 0;

  quint64 errorGeneration_ = 0;
  int errorLayer_ = -1;
  QString errorFormat_;
  QTimer errorTimer_;
  std::shared_ptr<JobControl> errorControl_;
  std::shared_ptr<const QuantErrorHistograms> errorHistograms_;  // the latest answer

  quint64 allocateGeneration_ = 0;
  std::shared_ptr<JobControl> allocateControl_;
  std::shared_ptr<const Allocation> allocation_;
  QStringList costFormats_;
  std::shared_ptr<const CandidateCosts> costs_;  // of costFormats_ on the open model

  quint64 exportGeneration_ = 0;
  std::shared_ptr<JobControl> exportControl_;

  quint64 calibrateGeneration_ = 0, calibrationLoadGeneration_ = 0;
  std::shared_ptr<JobControl> calibrateControl_, calibrationLoadControl_;
  std::shared_ptr<const CalibrationFile> calibration_;  // of the open model; null when none is loaded
};

}  // namespace qs::app
