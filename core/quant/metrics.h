#pragma once
// Reconstruction error of a quantized weight: in weight space, and in output
// space for given activations or a Hessian H = X^T X / n.
#include <cstdint>

namespace qs {

struct WeightError {
  double mse = 0;          // mean squared error
  double sqnr_db = 0;      // 20 log10(||W|| / ||W - Q||); +inf when exact
  double max_abs = 0;      // largest |W - Q|
};

WeightError weight_error(const float* w, const float* q, std::uint64_t n);

// ||W X^T - Q X^T||_F^2 / ||W X^T||_F^2 for W, Q [rows, cols] and X [tokens, cols], in double.
double relative_output_error(const float* w, const float* q, std::int64_t rows, std::int64_t cols, const float* x,
                             std::int64_t tokens);
// The same from a Hessian: tr(dW H dW^T) / tr(W H W^T) with H [cols, cols] (any positive scale).
double relative_output_error_h(const float* w, const float* q, std::int64_t rows, std::int64_t cols, const float* h);

// What the quantization methods (clip search, AWQ, outlier keeping, ...) report
// for one layer: weight-space error, and the relative output error on the
// calibration Hessian and, when given, on held-out tokens' Hessian.
struct LayerError {
  WeightError weight;
  double rel_output_error = -1;          // on h; -1 when h is null
  double rel_output_error_heldout = -1;  // on h_heldout; -1 when null
};
LayerError layer_error(const float* w, const float* q, std::int64_t rows, std::int64_t cols, const float* h = nullptr,
                       const float* h_heldout = nullptr);

}  // namespace qs
