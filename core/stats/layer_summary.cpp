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

}  // namespace qs
