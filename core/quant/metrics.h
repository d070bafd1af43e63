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

}  // namespace qs
