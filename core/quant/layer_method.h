#pragma once
// One layer quantized as its plan row says: the format and the method with its
// parameters. The plan editor measures rows with it and a plan evaluation
// fake-quantizes with it, so both agree with what an export would do.
//
// Methods: rtn (every format), clip (MSE clip search: integer grids and ggml
// block types; diag(H)-weighted when the input's Hessian is given), gptq
// (integer grids and the ggml types GPTQ can target; needs H), awq (integer
// grids, ggml types and the element formats; needs H and mean |x|).
// Parameters (plan "params"): clip: min_ratio, step; gptq: percdamp,
// block_size, act_order (0/1), static_groups (0/1); awq: alpha_points, clip (0/1).
#include <string>
#include <string_view>
#include <vector>

#include "quant/measure.h"
#include "quant/outlier_keep.h"
#include "quant/plan.h"
#include "util/op_context.h"
#include "util/result.h"

namespace qs {

// Calibration statistics of the layer's input, when there are any.
struct LayerInputStats {
  const float* h = nullptr;           // [cols, cols]: X^T X / n
  const float* x_mean_abs = nullptr;  // [cols]: mean |x| per input channel
};

class Backend;

struct LayerMethodResult {
  std::vector<float> dequantized;  // [rows, cols]
  LayerQuantError figures;         // bits/weight, weight error, milliseconds of the method
  double rel_output_error = -1;    // tr(dW H dW^T) / tr(W H W^T) when H is given
};

// `w` [rows, cols] row-major F32. A method that needs statistics it was not
// given, a format the method cannot target, or an unknown method: Unsupported
// with the reason. `backend`: where GPTQ runs (Backend::gptq; a device takes
// integer grids); null: core's CPU code. `output_error`: with H, also the
// relative output error (a GEMM the size of the layer's; exports skip it).
Result<LayerMethodResult> quantize_with_method(const float* w, std::int64_t rows, std::int64_t cols,
                                               const QuantChoice& choice, const LayerConfig& config,
                                               const LayerInputStats& stats, OpContext& ctx,
                                               Backend* backend = nullptr, bool output_error = true);

// Method "outliers" with its params (fraction, channels) and ranking (by
// calibration when `stats` has it): outlier_keep's whole result, side table
// included, for the exports that store it.
Result<OutlierResult> keep_outliers(const QuantChoice& choice, const LayerConfig& config, const float* w,
                                    std::int64_t rows, std::int64_t cols, const LayerInputStats& stats);

// True for the methods that need a layer's input statistics (gptq, awq).
bool method_needs_calibration(const std::string& method);

// The config that applies to `layer`: the embedding is a lookup and the head's
// input is not captured, so methods that need input statistics give way to
// RTN there (GPTQ tooling leaves both alone too). Every consumer asks this.
// `changed` (optional) is set when the method was replaced.
LayerConfig config_for_layer(const Layer& layer, LayerConfig config, bool* changed = nullptr);

// A layer config as one string, for caches and requests keyed by what is
// measured: the format alone for plain RTN ("int4-g128"), else
// "format+method" with the params sorted by name ("q4_0+gptq(act_order=1,percdamp=0.05)").
std::string layer_config_key(const LayerConfig& config);
// The inverse; errors name what is malformed.
Result<LayerConfig> parse_layer_config_key(std::string_view key);

}  // namespace qs
