#pragma once
// The work the Document runs off the UI thread, as plain functions that take
// everything they need by value: a job owns shared pointers to the Model (and
// with it the memory maps) and the Backend, so the UI may open another model or
// close the window while the job finishes.
#include <QString>
#include <atomic>
#include <memory>
#include <new>
#include <utility>
#include <vector>

#include "backend/backend.h"
#include "model/model.h"
#include "stats/layer_summary.h"
#include "util/op_context.h"

namespace qs::app {

struct OpenOutcome {
  std::shared_ptr<const Model> model;  // null on failure
  QString error;
};

// Opens `path`; with `demo`, first generates the demo model if needed (path ignored).
OpenOutcome runOpen(const QString& path, bool demo);

// Cancel flag and progress of one job (statistics, overview), shared by the UI and the worker.
class JobControl {
 public:
  JobControl() : ctx_([this](double f) { progress_.store(f, std::memory_order_relaxed); }) {}
  JobControl(const JobControl&) = delete;
  JobControl& operator=(const JobControl&) = delete;
  void cancel() { ctx_.cancel(); }
  bool cancelled() const { return ctx_.cancelled(); }
  double progress() const { return progress_.load(std::memory_order_relaxed); }
  OpContext& context() { return ctx_; }

 private:
  std::atomic<double> progress_{0.0};  // declared first: the context's callback writes it
  OpContext ctx_;
};

// The scaffolding every job shares: a job superseded before it started
// touches nothing; otherwise `work` (a Result<T> from a core call, given the
// job's OpContext) runs, a failure keeps its message and whether it was a
// cancel, and `keep` stores the value in the outcome. `out` arrives with its
// identifying fields (generation, tensor) already set.
template <typename Outcome, typename Work, typename Keep>
Outcome runJob(Outcome out, JobControl& control, Work&& work, Keep&& keep) {
  if (control.cancelled()) {
    out.cancelled = true;
    return out;
  }
  // A size no check foresaw is this job's error, not the application's end.
  decltype(work(control.context())) result = Error::invalid("");
  try {
    result = work(control.context());
  } catch (const std::bad_alloc&) {
    result = Error::unsupported("out of memory: the model declares more than this machine holds (QS_MEMORY_BUDGET)");
  }
  if (!result) {
    out.cancelled = result.error().code == ErrorCode::Cancelled;
    out.error = QString::fromStdString(result.error().message);
    return out;
  }
  keep(out, std::move(*result));
  return out;
}

struct StatsOutcome {
  int tensor = -1;
  quint64 generation = 0;  // which request this answers; stale ones are dropped
  std::shared_ptr<const LayerSummary> summary;  // null on failure or cancel
  QString error;
  bool cancelled = false;
};

StatsOutcome runStats(std::shared_ptr<const Model> model, std::shared_ptr<Backend> backend, int tensor,
                      quint64 generation, std::shared_ptr<JobControl> control, double outlierFactor);

struct OverviewOutcome {
  quint64 generation = 0;
  std::shared_ptr<const std::vector<LayerFigures>> figures;  // Model::layers order; null on failure or cancel
  QString error;
  bool cancelled = false;
};

// The model overview: summarize_layers over every layer, progress per layer.
OverviewOutcome runOverview(std::shared_ptr<const Model> model, std::shared_ptr<Backend> backend,
                            quint64 generation, std::shared_ptr<JobControl> control, double outlierFactor);

struct HeatmapOutcome {
  int tensor = -1;
  quint64 generation = 0;
  std::shared_ptr<const Heatmap> heatmap;  // null on failure or cancel
  QString error;
  bool cancelled = false;
};

// Max |w| over tiles of a region of one weight (the backend's abs_heatmap).
HeatmapOutcome runHeatmap(std::shared_ptr<const Model> model, std::shared_ptr<Backend> backend, int tensor,
                          HeatmapRequest request, quint64 generation, std::shared_ptr<JobControl> control);

struct ComparisonOutcome {
  int tensor = -1;
  quint64 generation = 0;
  std::shared_ptr<const Histogram> histogram;  // null on failure or cancel
  QString error;
  bool cancelled = false;
};

// The histogram of one tensor over given bins (another tensor's), for the overlay.
ComparisonOutcome runComparison(std::shared_ptr<const Model> model, std::shared_ptr<Backend> backend, int tensor,
                                HistogramSpec spec, quint64 generation, std::shared_ptr<JobControl> control);

}  // namespace qs::app
