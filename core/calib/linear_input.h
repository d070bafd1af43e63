#pragma once
// Which linear-layer input of a llama block a layer reads: q, k and v the
// attention input, o the attention's output, gate and up the MLP input, down
// the MLP's inner activation. Calibration statistics are kept per input, so
// every consumer that looks up a layer's statistics asks here.
#include <optional>

#include "calib/llama_forward.h"
#include "model/layer.h"

namespace qs {

// nullopt for layers that read no captured input (embeddings, head, others).
constexpr std::optional<LlamaLinearInput> linear_input_of(LayerRole role) {
  switch (role) {
    case LayerRole::Q: case LayerRole::K: case LayerRole::V: return LlamaLinearInput::Attention;
    case LayerRole::O: return LlamaLinearInput::AttentionOutput;
    case LayerRole::Gate: case LayerRole::Up: return LlamaLinearInput::Mlp;
    case LayerRole::Down: return LlamaLinearInput::MlpDown;
    default: return std::nullopt;
  }
}

}  // namespace qs
