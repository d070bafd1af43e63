#pragma once
// Model: an opened checkpoint. Headers are parsed; weights stay memory-mapped.
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
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
};

// Fills model.layers from tensor names: llama-family names (HF "model.layers.N.*"
// and GGUF "blk.N.*") are grouped into blocks with roles; any other 2-D
// ".weight" tensor becomes a flat "other" layer.
void group_layers(Model& model);

}  // namespace qs
