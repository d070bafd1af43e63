#pragma once
// Calibration: the Hessians H = X^T X / n of every linear layer's input over
// calibration text, collected by running the model (llama_forward.h) and
// watching the inputs of its linear layers. Layers that share an input share
// their H: q, k and v; gate and up. GPTQ, AWQ and the output-error metric
// take them per layer.
#include <cstdint>
#include <span>
#include <vector>

#include "calib/llama_forward.h"
#include "model/model.h"
#include "util/op_context.h"
#include "util/result.h"

namespace qs {

class Backend;

struct BlockHessians {
  std::vector<float> attention, attention_output, mlp, mlp_down;  // [cols, cols] each
};

struct CalibrationHessians {
  std::vector<BlockHessians> blocks;
  std::int64_t tokens = 0;  // rows of X behind each H

  // The H of a layer's input by role and block; nullptr for layers it has none for (embeddings, head).
  const std::vector<float>* of(LayerRole role, int block) const;
};

// Runs `tokens` in chunks of `n_ctx` (each starting at position 0, its first
// token replaced by `bos` when bos >= 0, as the perplexity protocol does) and
// accumulates every block's H in F32 sums of F32 products (GEMMs), divided by
// the token count at the end. With a `backend` (a device; null = here on the
// CPU), each H is summed by its Backend::hessian_accumulator, in device
// memory; an H the backend cannot hold (out of memory) is summed here.
Result<CalibrationHessians> collect_hessians(const LlamaModel& model, std::span<const std::int32_t> tokens, int n_ctx,
                                             std::int32_t bos, OpContext& ctx = OpContext::none(),
                                             Backend* backend = nullptr);

}  // namespace qs
