#pragma once
// Model: an opened checkpoint. Headers are parsed; weights stay memory-mapped.
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "model/arch_info.h"
#include "model/layer.h"
#include "model/tensor_info.h"

namespace qs {

struct GgufFile;

enum class ModelFormat { HfDirectory, Safetensors, Gguf, KerasH5 };
std::string_view model_format_name(ModelFormat f);

struct Model {
  std::string path;  // what the user opened (file or directory)
  ModelFormat format = ModelFormat::Safetensors;
  ArchInfo arch;
  std::vector<TensorInfo> tensors;       // in file order (by shard, then offset)
  std::vector<Layer> layers;             // linear layers, in model order
  std::vector<std::string> weight_files; // the files mapped
  std::shared_ptr<const GgufFile> gguf;  // GGUF models: all metadata (tokenizer too), for display and export

  std::optional<std::size_t> find_tensor(const std::string& name) const;
  std::uint64_t parameter_count() const;
  std::uint64_t weight_bytes() const;
  int block_count() const;  // 1 + highest block index among layers, 0 if none
  // The file that declares the architecture (an HF directory's config.json, a
  // GGUF itself): what a message about an inconsistent architecture names.
  std::string architecture_file() const;
  // The weight file, or the model and how many files hold its weights: what a
  // message about a missing tensor names.
  std::string weights_label() const;
};

// The transformer block a tensor belongs to, from its name alone (HF
// "model.layers.N.", "layers.N." and GGUF "blk.N." prefixes); -1 outside blocks.
// `rest`, when given, receives the name after the block prefix.
int tensor_block(std::string_view name, std::string_view* rest = nullptr);
// True for RMSNorm/LayerNorm weights in the llama-family spellings
// (input_layernorm, post_attention_layernorm, model.norm, attn_norm, ffn_norm, output_norm).
bool is_norm_tensor(std::string_view name);

// Fills model.layers from tensor names: llama-family names (HF "model.layers.N.*"
// and GGUF "blk.N.*") are grouped into blocks with roles; any other 2-D
// ".weight" tensor becomes a flat "other" layer.
void group_layers(Model& model);

}  // namespace qs
