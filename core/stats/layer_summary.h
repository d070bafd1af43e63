#pragma once
// The one-line summary of a layer that the CLI table and the layer tree show.
#include <cstddef>
#include <string>
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

// The few numbers per layer that the model overview plots along depth.
struct LayerFigures {
  double abs_max = 0, std = 0, kurtosis = 0;
  std::size_t outliers_in = 0, outliers_out = 0;
  bool ok = false;  // false: the weight could not be read (undecodable type); `error` says why
  std::string error;
};

// Figures for every layer of the model, in Model::layers order; progress is per
// layer. A layer whose type cannot be decoded gets ok = false, not a failure.
Result<std::vector<LayerFigures>> summarize_layers(Backend& backend, const Model& model, OpContext& ctx,
                                                   double outlier_k = kDefaultOutlierFactor);

}  // namespace qs
