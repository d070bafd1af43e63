#pragma once
// SmoothQuant (Xiao et al., 2022): move quantization difficulty from the
// activations (a few channels with huge outliers) to the weights with a
// per-input-channel factor s_j = max|X_j|^alpha / max|W_j|^(1 - alpha), W_j the
// weight's input column j: Y = X W^T = (X diag(s)^-1) (W diag(s))^T exactly, and
// both factors are now quantized to 8 bits (W per output channel, X per token
// or per tensor, symmetric absmax as the reference's W8A8 fake-quant). Errors
// are reported for both sides separately and for the product, with and
// without smoothing.
#include <cstdint>
#include <vector>

#include "quant/metrics.h"
#include "util/op_context.h"
#include "util/result.h"

namespace qs {

struct SmoothQuantSpec {
  double alpha = 0.5;          // migration strength: 0 leaves X alone, 1 moves everything into W
  int weight_bits = 8;         // symmetric absmax per output channel: codes in [-(2^(b-1)-1), 2^(b-1)-1]
  int act_bits = 8;            // symmetric absmax ...
  bool act_per_token = true;   // ... per token (row of X); false: one scale for the whole X
};

struct W8A8Error {
  WeightError weight;          // W diag(s) against its quantization
  WeightError activation;      // X diag(s)^-1 against its quantization
  double weight_absmax = 0;    // max |W diag(s)|
  double act_absmax = 0;       // max |X diag(s)^-1|
  // ||Y' - X W^T||^2 / ||X W^T||^2 for Y' = Qa(X/s) Qw(W s)^T (both), (X/s) Qw(W s)^T (weight only),
  // Qa(X/s) (W s)^T (activation only); in double over F32 products.
  double rel_output_error = 0, rel_output_error_weight_only = 0, rel_output_error_act_only = 0;
};

struct SmoothQuantResult {
  std::vector<float> smooth;             // s, [cols]: multiply W's input columns, divide X's (fold into the previous norm)
  std::vector<std::int8_t> weight_codes; // [rows, cols]: W diag(s) = weight_scales[row] * code
  std::vector<float> weight_scales;      // [rows]
  std::vector<float> dequantized;        // Q(W diag(s)) diag(s)^-1, [rows, cols]: the weight-side error in W's space
  W8A8Error error;                       // with smoothing
  W8A8Error baseline;                    // the same W8A8 quantization without smoothing (s = 1)
};

// The activation side of W8A8 in place: each row of x [rows, cols] divided by
// s ([cols]; nullptr: none) and fake-quantized to `bits` with its own
// symmetric absmax scale (per token), the arithmetic w8a8_error uses.
void fake_quant_activation_rows(float* x, std::int64_t rows, std::int64_t cols, int bits, const float* s);

// s_j from the per-input-channel activation max and the per-input-channel
// weight max (over every weight that reads the input); clamped as below.
std::vector<float> smoothquant_factors_from_max(const float* act_absmax, const float* weight_absmax, std::int64_t cols,
                                                double alpha);

// s_j from the per-input-channel activation max (calibration) and the weight;
// both maxima clamped to >= 1e-5 and s to >= 1e-5 as the reference.
std::vector<float> smoothquant_factors(const float* act_absmax, const float* w, std::int64_t rows, std::int64_t cols,
                                       double alpha);

// The W8A8 errors of W [rows, cols] on X [tokens, cols] with smoothing factors s ([cols]; nullptr: none).
Result<W8A8Error> w8a8_error(const float* w, std::int64_t rows, std::int64_t cols, const float* x, std::int64_t tokens,
                             const float* s, const SmoothQuantSpec& spec);

// Factors from `act_absmax` ([cols], calibration) or, when null, from X itself;
// errors measured on X (calibration or held-out tokens).
Result<SmoothQuantResult> smoothquant(const float* w, std::int64_t rows, std::int64_t cols, const float* x,
                                      std::int64_t tokens, const SmoothQuantSpec& spec,
                                      const float* act_absmax = nullptr, OpContext& ctx = OpContext::none());

// The migration strength by measurement: alpha = 0, step, 2 step, ..., 1, each
// scored by the W8A8 output error on X (use calibration tokens; judge on
// held-out ones). Costs one [tokens, cols] x [cols, rows] GEMM per alpha.
struct SmoothQuantSweep {
  std::vector<double> alphas, errors;  // rel. output error of the W8A8 product per alpha
  int best = 0;                        // index of the smallest error
  double best_alpha = 0;
};
Result<SmoothQuantSweep> smoothquant_alpha_sweep(const float* w, std::int64_t rows, std::int64_t cols, const float* x,
                                                 std::int64_t tokens, const SmoothQuantSpec& spec, double step = 0.1,
                                                 const float* act_absmax = nullptr, OpContext& ctx = OpContext::none());

}  // namespace qs
