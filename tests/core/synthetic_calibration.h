#pragma once
// Calibration Hessians for the small demo models of the export tests, without
// running a model: per input, H = X^T X / n of random tokens that share a
// common component (so H is far from diagonal, as real activations make it).
#include <cstdint>
#include <vector>

#include "calib/hessians.h"

namespace qs::test {

inline std::vector<float> synthetic_hessian(int cols, std::uint32_t seed) {
  std::uint32_t s = seed;
  auto rnd = [&] {
    s = s * 1664525u + 1013904223u;
    return static_cast<float>(s >> 8) / 16777216.0f - 0.5f;
  };
  const int tokens = 4 * cols;
  std::vector<float> x(static_cast<std::size_t>(tokens) * static_cast<std::size_t>(cols));
  std::vector<float> h(static_cast<std::size_t>(cols) * static_cast<std::size_t>(cols), 0.0f);
  for (int t = 0; t < tokens; ++t) {
    const float common = rnd();
    for (int c = 0; c < cols; ++c) x[static_cast<std::size_t>(t * cols + c)] = common * static_cast<float>(1 + c % 7) + rnd();
  }
  for (int t = 0; t < tokens; ++t)
    for (int i = 0; i < cols; ++i)
      for (int j = 0; j < cols; ++j)
        h[static_cast<std::size_t>(i * cols + j)] +=
            x[static_cast<std::size_t>(t * cols + i)] * x[static_cast<std::size_t>(t * cols + j)] / static_cast<float>(tokens);
  return h;
}

// Every block's four inputs (attention, attention output, MLP, MLP down) for
// a model of `hidden` and `intermediate` widths.
inline CalibrationHessians synthetic_hessians(int blocks, int hidden, int intermediate) {
  CalibrationHessians hs;
  hs.tokens = 4 * hidden;
  for (int b = 0; b < blocks; ++b) {
    const auto seed = static_cast<std::uint32_t>(4 * b);
    hs.blocks.push_back({synthetic_hessian(hidden, seed + 1), synthetic_hessian(hidden, seed + 2),
                         synthetic_hessian(hidden, seed + 3), synthetic_hessian(intermediate, seed + 4)});
  }
  return hs;
}

}  // namespace qs::test
