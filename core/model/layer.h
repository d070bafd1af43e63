#pragma once
// Layer: a linear layer (or embedding / lm_head) found among a model's tensors.
#include <optional>
#include <string>
#include <string_view>

namespace qs {

enum class LayerRole { Q, K, V, O, Gate, Up, Down, Embed, LmHead, Other };

std::string_view layer_role_name(LayerRole r);  // "q", "k", ... "lm_head", "other"

struct Layer {
  std::string name;                   // e.g. "model.layers.3.self_attn.q_proj"
  std::size_t weight = 0;             // index into Model::tensors
  std::optional<std::size_t> bias;    // index into Model::tensors
  int block = -1;                     // transformer block index, -1 outside blocks
  LayerRole role = LayerRole::Other;
};

}  // namespace qs
