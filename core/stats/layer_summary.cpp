#include "stats/layer_summary.h"

namespace qs {

Result<LayerSummary> summarize_tensor(Backend& backend, const TensorInfo& t, OpContext& ctx, double outlier_k) {
  const TensorData data = TensorData::of(t);
  LayerSummary s;
  auto stats = backend.tensor_stats(data, HistogramSpec{}, ctx);
  if (!stats) return stats.error();
  s.stats = std::move(*stats);
  if (t.shape.size() >= 2) {
    auto ch = backend.channel_absmax(data, ctx);
    if (!ch) return ch.error();
    s.outlier_in = outlier_channels(ch->cols, outlier_k);
    s.outlier_out = outlier_channels(ch->rows, outlier_k);
    s.channels = std::move(*ch);
  }
  return s;
}

Result<std::vector<LayerFigures>> summarize_layers(Backend& backend, const Model& model, OpContext& ctx,
                                                   double outlier_k) {
  std::vector<LayerFigures> out(model.layers.size());
  for (std::size_t i = 0; i < model.layers.size(); ++i) {
    if (ctx.cancelled()) return Error::cancelled();
    auto s = summarize_tensor(backend, model.tensors[model.layers[i].weight], OpContext::none(), outlier_k);
    if (!s) {
      if (s.error().code == ErrorCode::Cancelled) return s.error();
      if (s.error().code == ErrorCode::Backend) return s.error();  // a broken device fails the job
      out[i].error = s.error().message;
      continue;
    }
    out[i] = {s->stats.abs_max, s->stats.std, s->stats.kurtosis, s->outlier_in.size(), s->outlier_out.size(), true, {}};
    ctx.progress(static_cast<double>(i + 1) / static_cast<double>(model.layers.size()));
  }
  return out;
}

}  // namespace qs
