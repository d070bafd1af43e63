#include "app/jobs.h"

#include "demo/demo_model.h"
#include "io/open_model.h"

namespace qs::app {

OpenOutcome runOpen(const QString& path, bool demo) {
  OpenOutcome out;
  std::string target = path.toStdString();
  if (demo) {
    auto dir = ensure_demo_model();
    if (!dir) {
      out.error = QString::fromStdString(dir.error().message);
      return out;
    }
    target = *dir;
  }
  Result<Model> model = Error::invalid("");
  try {
    model = open_model(target);
  } catch (const std::bad_alloc&) {
    model = Error::unsupported(target + ": out of memory: the file declares more than this machine holds (QS_MEMORY_BUDGET)");
  }
  if (!model) {
    out.error = QString::fromStdString(model.error().message);
    return out;
  }
  out.model = std::make_shared<const Model>(std::move(*model));
  return out;
}

StatsOutcome runStats(std::shared_ptr<const Model> model, std::shared_ptr<Backend> backend, int tensor,
                      quint64 generation, std::shared_ptr<JobControl> control, double outlierFactor) {
  StatsOutcome out;
  out.tensor = tensor;
  out.generation = generation;
  return runJob(
      std::move(out), *control,
      [&](OpContext& ctx) {
        return summarize_tensor(*backend, model->tensors.at(static_cast<std::size_t>(tensor)), ctx, outlierFactor);
      },
      [](StatsOutcome& o, LayerSummary&& s) { o.summary = std::make_shared<const LayerSummary>(std::move(s)); });
}

OverviewOutcome runOverview(std::shared_ptr<const Model> model, std::shared_ptr<Backend> backend,
                            quint64 generation, std::shared_ptr<JobControl> control, double outlierFactor) {
  OverviewOutcome out;
  out.generation = generation;
  return runJob(
      std::move(out), *control, [&](OpContext& ctx) { return summarize_layers(*backend, *model, ctx, outlierFactor); },
      [](OverviewOutcome& o, std::vector<LayerFigures>&& f) {
        o.figures = std::make_shared<const std::vector<LayerFigures>>(std::move(f));
      });
}

HeatmapOutcome runHeatmap(std::shared_ptr<const Model> model, std::shared_ptr<Backend> backend, int tensor,
                          HeatmapRequest request, quint64 generation, std::shared_ptr<JobControl> control) {
  HeatmapOutcome out;
  out.tensor = tensor;
  out.generation = generation;
  return runJob(
      std::move(out), *control,
      [&](OpContext& ctx) {
        const TensorInfo& t = model->tensors.at(static_cast<std::size_t>(tensor));
        return backend->abs_heatmap(TensorData::of(t), request, ctx);
      },
      [](HeatmapOutcome& o, Heatmap&& map) { o.heatmap = std::make_shared<const Heatmap>(std::move(map)); });
}

ComparisonOutcome runComparison(std::shared_ptr<const Model> model, std::shared_ptr<Backend> backend, int tensor,
                                HistogramSpec spec, quint64 generation, std::shared_ptr<JobControl> control) {
  ComparisonOutcome out;
  out.tensor = tensor;
  out.generation = generation;
  return runJob(
      std::move(out), *control,
      [&](OpContext& ctx) {
        const TensorInfo& t = model->tensors.at(static_cast<std::size_t>(tensor));
        return backend->tensor_stats(TensorData::of(t), spec, ctx);
      },
      [](ComparisonOutcome& o, TensorStats&& stats) { o.histogram = std::make_shared<const Histogram>(std::move(stats.hist)); });
}

}  // namespace qs::app
