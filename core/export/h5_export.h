#pragma once
// The QuantScope quantized checkpoint (docs/hdf5-checkpoint.md): every tensor
// as the plan quantized it (integer-grid codes with their scales and zero
// points, ggml blocks, or the source bytes), with the plan, the source's
// identity and each layer's measured error. Streaming (one tensor at a time)
// and atomic (a temporary file renamed on success).
#include <cstdint>
#include <string>
#include <vector>

#include "model/model.h"
#include "quant/plan.h"
#include "util/op_context.h"
#include "util/result.h"

namespace qs {

struct H5ExportedLayer {
  std::string name, format;
  bool quantized = false;
  std::string reason;  // why it was copied
  double bits_per_weight = 0, sqnr_db = 0;
};

struct H5ExportReport {
  std::vector<H5ExportedLayer> layers;
  std::uint64_t bytes = 0;
};

// RTN only for now: methods that need calibration are refused.
Result<H5ExportReport> export_quantized_h5(const Model& source, const Plan& plan, const std::string& out_path,
                                           OpContext& ctx);

}  // namespace qs
