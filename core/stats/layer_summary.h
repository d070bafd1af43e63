#pragma once
// The one-line summary of a layer that the CLI table and the layer tree show.
#include <cstddef>
#include <vector>

#include "backend/backend.h"
#include "model/model.h"
#include "stats/outliers.h"

namespace qs {

struct LayerSummary {
  TensorStats stats;                      // of the weight, with a default histogram
  std::vector<std::size_t> outlier_in;    // input channels (columns) by the k x median rule
  std::vector<std::size_t> outlier_out;   // output channels (rows) by the same rule
  ChannelAbsMax channels;                 // per-channel abs-max and RMS, for the channel views
};

Result<LayerSummary> summarize_tensor(Backend& backend, const TensorInfo& t, OpContext& ctx,
                                      double outlier_k = kDefaultOutlierFactor);

}  // namespace qs
