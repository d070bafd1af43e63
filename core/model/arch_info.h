#pragma once
// Architecture facts of a model, from HF config.json (or GGUF metadata later).
// Zero / empty means "not stated".
#include <cstdint>
#include <string>
#include <vector>

namespace qs {

struct RopeInfo {
  double theta = 0;          // RoPE base
  std::string scaling_type;  // "", "linear", "dynamic", "yarn", "llama3", ...
  double scaling_factor = 0;
};

struct ArchInfo {
  std::string model_type;                 // "llama", "mistral", "qwen2", ...
  std::vector<std::string> architectures; // e.g. {"LlamaForCausalLM"}
  std::int64_t hidden_size = 0;
  std::int64_t intermediate_size = 0;
  std::int64_t num_layers = 0;
  std::int64_t num_heads = 0;
  std::int64_t num_kv_heads = 0;
  std::int64_t head_dim = 0;
  std::int64_t vocab_size = 0;
  std::int64_t max_position = 0;
  double rms_norm_eps = 0;
  RopeInfo rope;
  bool tie_word_embeddings = false;
  std::string torch_dtype;

  bool known() const { return !model_type.empty() || hidden_size > 0; }
  // True for the llama family whose tensor names we group into blocks.
  bool is_llama_family() const;
};

}  // namespace qs
