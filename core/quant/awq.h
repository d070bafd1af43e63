#pragma once
// AWQ (Lin et al., 2023, "Activation-aware Weight Quantization"): scale each
// input channel j of the weight by s_j before quantizing and divide it back
// afterwards (or fold 1/s into the previous norm), so that channels seeing large
// activations get relatively finer steps:
//   s_j = xbar_j^alpha / wbar_j^(1 - alpha), normalised by sqrt(max s * min s),
// xbar_j = mean |x_j| over calibration tokens, wbar_j = mean over rows of
// |W_ij| / max |W| of (i, j)'s group (the reference's group-normalised weight
// magnitude). alpha runs over a grid in [0, 1) and the one with the smallest
// output error tr(dW H dW^T), dW = Q(W diag(s)) diag(s)^-1 - W, wins; H = X^T X
// replaces re-running the layer. Then AWQ's clip search: per (row, group) a
// max-shrink ratio of the scaled weight's range, minimising the group's share
// of the output error, dW_g H_gg dW_g^T (the reference measures the same on a
// token subsample).
//
// The identity (s = 1, plain RTN) is one more candidate in the alpha search:
// with the weight-aware term, alpha = 0 is s = 1/wbar, not the identity, and a
// layer where no alpha helps should get RTN rather than a regression.
#include <cstdint>
#include <vector>

#include "quant/fake_quant.h"
#include "quant/int_grid.h"
#include "quant/metrics.h"
#include "util/op_context.h"
#include "util/result.h"

namespace qs {

struct AwqSpec {
  QuantTarget target = QuantTarget::int_grid({4, false, 128});
  int grid = 20;              // alpha = k / grid, k = 0 .. grid - 1
  bool weight_term = true;    // s = xbar^a / wbar^(1-a) ("duo scaling"); false: s = xbar^a
  // Clip search after scaling (integer grids only: ggml quantizers pick their own scales).
  bool clip = true;
  int clip_grid = 20;           // ratios 1 - k / clip_grid ...
  double clip_max_shrink = 0.5; // ... for k < clip_grid * clip_max_shrink: 1, 0.95, ..., 0.55
  // Rows used to rank alphas (evenly spaced; 0 = all). The output error is a sum
  // over rows, so a subsample estimates it; it sets the search's cost (one
  // [rows_used * (grid + 1), cols] x [cols, cols] GEMM).
  std::int64_t search_rows = 64;
  // Fill AwqResult::error.rel_output_error on h: one more [2 rows, cols] x [cols, cols] GEMM.
  bool output_error = true;
};

struct AwqResult {
  std::vector<float> scales;          // s, [cols]: the quantized weight is Q(W diag(s)); feed it x / s
  double alpha = -1;                  // the chosen alpha; -1 when the identity (s = 1) won
  std::vector<double> search_error;   // relative output error on the search rows, per alpha, identity last
  std::vector<float> clip_ratios;     // chosen clip ratio per (row, group) (integer grids with clip); else empty
  IntQuantized q;                     // integer targets: codes, scales, zeros of Q(W diag(s)) (clipped)
  std::vector<float> dequantized;     // Q(W diag(s)) diag(s)^-1, [rows, cols]: s folded back
  LayerError error;                   // dequantized vs W; output error on the given H
  double bits_per_weight = 0;         // the target's; s itself is folded into the previous op
};

// wbar_j: mean over rows of |W_ij| / max |W| over (i, j)'s group of `group` columns
// (0: the whole row; -1: the whole tensor). An all-zero group contributes 0.
std::vector<float> awq_weight_magnitude(const float* w, std::int64_t rows, std::int64_t cols, std::int64_t group);
// s for one alpha, normalised (clamped to >= 1e-4 first, as the reference).
std::vector<float> awq_scales(const float* x_mean_abs, const float* w_mag, std::int64_t cols, double alpha,
                              bool weight_term);

// `w` [rows, cols]; `h` [cols, cols] = X^T X (any positive scale); `x_mean_abs` [cols].
Result<AwqResult> awq(const float* w, std::int64_t rows, std::int64_t cols, const float* h, const float* x_mean_abs,
                      const AwqSpec& spec, OpContext& ctx = OpContext::none());

}  // namespace qs
