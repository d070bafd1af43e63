#pragma once
// The calibration statistics of one linear layer's input that the methods
// take (AWQ: H and mean |x|; SmoothQuant: max |x|; clip search and outlier
// keeping: diag H), computed here from a sample of activations. The
// calibration pipeline accumulates the same quantities over a model's forward
// pass; tests and benchmarks build them from X directly.
#include <cstdint>
#include <vector>

namespace qs {

struct ActivationStats {
  std::int64_t tokens = 0, cols = 0;
  std::vector<float> h;         // [cols, cols]: X^T X / tokens
  std::vector<float> mean_abs;  // [cols]: mean over tokens of |x_j|
  std::vector<float> abs_max;   // [cols]: max over tokens of |x_j|
};

// `x` [tokens, cols] row-major, one token per row. H through BLAS when present.
ActivationStats activation_stats(const float* x, std::int64_t tokens, std::int64_t cols);

}  // namespace qs
