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
  auto model = open_model(target);
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
  if (control->cancelled()) {  // superseded before it started: don't touch the data
    out.cancelled = true;
    return out;
  }
  const TensorInfo& t = model->tensors.at(static_cast<std::size_t>(tensor));
  auto summary = summarize_tensor(*backend, t, control->context(), outlierFactor);
  if (!summary) {
    out.cancelled = summary.error().code == ErrorCode::Cancelled;
    out.error = QString::fromStdString(summary.error().message);
    return out;
  }
  out.summary = std::make_shared<const LayerSummary>(std::move(*summary));
  return out;
}

OverviewOutcome runOverview(std::shared_ptr<const Model> model, std::shared_ptr<Backend> backend,
                            quint64 generation, std::shared_ptr<JobControl> control, double outlierFactor) {
  OverviewOutcome out;
  out.generation = generation;
  if (control->cancelled()) {
    out.cancelled = true;
    return out;
  }
  auto figures = summarize_layers(*backend, *model, control->context(), outlierFactor);
  if (!figures) {
    out.cancelled = figures.error().code == ErrorCode::Cancelled;
    out.error = QString::fromStdString(figures.error().message);
    return out;
  }
  out.figures = std::make_shared<const std::vector<LayerFigures>>(std::move(*figures));
  return out;
}

HeatmapOutcome runHeatmap(std::shared_ptr<const Model> model, std::shared_ptr<Backend> backend, int tensor,
                          HeatmapRequest request, quint64 generation, std::shared_ptr<JobControl> control) {
  HeatmapOutcome out;
  out.tensor = tensor;
  out.generation = generation;
  if (control->cancelled()) {
    out.cancelled = true;
    return out;
  }
  const TensorInfo& t = model->tensors.at(static_cast<std::size_t>(tensor));
  auto map = backend->abs_heatmap(TensorData::of(t), request, control->context());
  if (!map) {
    out.cancelled = map.error().code == ErrorCode::Cancelled;
    out.error = QString::fromStdString(map.error().message);
    return out;
  }
  out.heatmap = std::make_shared<const Heatmap>(std::move(*map));
  return out;
}

ComparisonOutcome runComparison(std::shared_ptr<const Model> model, std::shared_ptr<Backend> backend, int tensor,
                                HistogramSpec spec, quint64 generation, std::shared_ptr<JobControl> control) {
  ComparisonOutcome out;
  out.tensor = tensor;
  out.generation = generation;
  if (control->cancelled()) {
    out.cancelled = true;
    return out;
  }
  const TensorInfo& t = model->tensors.at(static_cast<std::size_t>(tensor));
  auto stats = backend->tensor_stats(TensorData::of(t), spec, control->context());
  if (!stats) {
    out.cancelled = stats.error().code == ErrorCode::Cancelled;
    out.error = QString::fromStdString(stats.error().message);
    return out;
  }
  out.histogram = std::make_shared<const Histogram>(std::move(stats->hist));
  return out;
}

}  // namespace qs::app
