#pragma once
// Calibration for tests. synthetic_capture: Hessians for the small demo models
// of the export tests without running a model (per input, H = X^T X / n of
// random tokens that share a common component, so H is far from diagonal, as
// real activations make it). hessians_of: a real model's Hessians over
// consecutive chunks of a token stream, through the one calibration pipeline.
#include <cstdint>
#include <limits>
#include <span>
#include <vector>

#include "calib/activation_capture.h"

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
// a model of `hidden` and `intermediate` widths: H only (no |x| statistics).
inline ActivationCapture synthetic_capture(int blocks, int hidden, int intermediate) {
  ActivationCapture cap;
  cap.tokens = 4 * hidden;
  for (int b = 0; b < blocks; ++b) {
    const auto seed = static_cast<std::uint32_t>(4 * b);
    const LlamaLinearInput inputs[] = {LlamaLinearInput::Attention, LlamaLinearInput::AttentionOutput,
                                       LlamaLinearInput::Mlp, LlamaLinearInput::MlpDown};
    for (int k = 0; k < 4; ++k) {
      InputStats s;
      s.block = b;
      s.input = inputs[k];
      s.cols = k == 3 ? intermediate : hidden;
      s.tokens = cap.tokens;
      s.hessian = synthetic_hessian(static_cast<int>(s.cols), seed + static_cast<std::uint32_t>(k) + 1);
      cap.inputs.push_back(std::move(s));
    }
  }
  return cap;
}

// The Hessians of `tokens` in consecutive chunks of n_ctx, each from `bos`
// (what an export's --calib text gives), summed by `backend` when one is given.
inline Result<ActivationCapture> hessians_of(const LlamaModel& model, std::span<const std::int32_t> tokens, int n_ctx,
                                             std::int32_t bos, Backend* backend = nullptr) {
  auto chunks = consecutive_calibration_chunks(tokens, std::numeric_limits<int>::max(), n_ctx, bos);
  if (!chunks) return chunks.error();
  CaptureOptions options;
  options.heatmap_tokens = 0;
  options.hessian_backend = backend;
  return capture_activations(model, *chunks, options);
}

}  // namespace qs::test
