#include <filesystem>
#include "model/model.h"

#include <algorithm>
#include <array>
#include <charconv>
#include <string_view>
#include <unordered_map>

namespace qs {

std::int64_t TensorInfo::cols() const {
  const std::int64_t r = rows();
  return r > 0 ? static_cast<std::int64_t>(numel() / static_cast<std::uint64_t>(r)) : 0;
}

std::string TensorInfo::where() const { return file ? file->path() + ": " + name : name; }

std::string TensorInfo::shape_string() const {
  std::string s = "[";
  for (std::size_t i = 0; i < shape.size(); ++i) {
    if (i) s += ", ";
    s += std::to_string(shape[i]);
  }
  return s + "]";
}

std::string_view layer_role_name(LayerRole r) {
  switch (r) {
    case LayerRole::Q: return "q";
    case LayerRole::K: return "k";
    case LayerRole::V: return "v";
    case LayerRole::O: return "o";
    case LayerRole::Gate: return "gate";
    case LayerRole::Up: return "up";
    case LayerRole::Down: return "down";
    case LayerRole::Embed: return "embed";
    case LayerRole::LmHead: return "lm_head";
    case LayerRole::Other: return "other";
  }
  return "other";
}

std::string_view model_format_name(ModelFormat f) {
  switch (f) {
    case ModelFormat::HfDirectory: return "Hugging Face directory";
    case ModelFormat::Safetensors: return "safetensors";
    case ModelFormat::Gguf: return "GGUF";
    case ModelFormat::KerasH5: return "Keras HDF5";
  }
  return "?";
}

bool ArchInfo::is_llama_family() const {
  return model_type == "llama" || model_type == "mistral" || model_type == "qwen2";
}

std::optional<std::size_t> Model::find_tensor(const std::string& name) const {
  for (std::size_t i = 0; i < tensors.size(); ++i)
    if (tensors[i].name == name) return i;
  return std::nullopt;
}

std::uint64_t Model::parameter_count() const {
  std::uint64_t n = 0;
  for (const auto& t : tensors) n += t.numel();
  return n;
}

std::uint64_t Model::weight_bytes() const {
  std::uint64_t n = 0;
  for (const auto& t : tensors) n += t.nbytes;
  return n;
}

std::string Model::architecture_file() const {
  if (format == ModelFormat::Gguf || !arch.known()) return path;
  // An HF directory, or a file picked out of one: open_model read the config.json beside it.
  std::error_code ec;
  const std::filesystem::path p(path);
  const std::filesystem::path dir = std::filesystem::is_directory(p, ec) ? p : p.parent_path();
  const std::filesystem::path config = dir / "config.json";
  return std::filesystem::is_regular_file(config, ec) ? config.string() : path;
}

std::string Model::weights_label() const {
  if (weight_files.size() == 1) return weight_files.front();
  return path + " (" + std::to_string(weight_files.size()) + " weight files)";
}

int Model::block_count() const {
  int n = 0;
  for (const auto& l : layers) n = std::max(n, l.block + 1);
  return n;
}

namespace {

struct RoleSuffix {
  std::string_view suffix;
  LayerRole role;
};
// Llama / Mistral / Qwen2 module names inside a block, HF and GGUF spellings.
constexpr std::array<RoleSuffix, 14> kBlockRoles{{
    {"self_attn.q_proj", LayerRole::Q},
    {"self_attn.k_proj", LayerRole::K},
    {"self_attn.v_proj", LayerRole::V},
    {"self_attn.o_proj", LayerRole::O},
    {"mlp.gate_proj", LayerRole::Gate},
    {"mlp.up_proj", LayerRole::Up},
    {"mlp.down_proj", LayerRole::Down},
    {"attn_q", LayerRole::Q},
    {"attn_k", LayerRole::K},
    {"attn_v", LayerRole::V},
    {"attn_output", LayerRole::O},
    {"ffn_gate", LayerRole::Gate},
    {"ffn_up", LayerRole::Up},
    {"ffn_down", LayerRole::Down},
}};

bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

}  // namespace

int tensor_block(std::string_view name, std::string_view* rest) {
  for (std::string_view prefix : {"model.layers.", "layers.", "blk."}) {
    if (name.substr(0, prefix.size()) != prefix) continue;
    const std::string_view tail = name.substr(prefix.size());
    const auto dot = tail.find('.');
    if (dot == std::string_view::npos || dot == 0) return -1;
    int b = 0;
    const auto [ptr, ec] = std::from_chars(tail.data(), tail.data() + dot, b);
    if (ec != std::errc() || ptr != tail.data() + dot || b < 0) return -1;
    if (rest) *rest = tail.substr(dot + 1);
    return b;
  }
  return -1;
}

bool is_norm_tensor(std::string_view name) {
  for (std::string_view n : {"input_layernorm.", "post_attention_layernorm.", "attn_norm.", "ffn_norm.", "output_norm.",
                             "model.norm.", "norm.weight", "norm.bias"})
    if (name.find(n) != std::string_view::npos) return true;
  return false;
}

void group_layers(Model& model) {
  model.layers.clear();
  std::unordered_map<std::string_view, std::size_t> by_name;
  for (std::size_t i = 0; i < model.tensors.size(); ++i) by_name.emplace(model.tensors[i].name, i);
  const bool llama = model.arch.is_llama_family() ||
                     by_name.count("model.embed_tokens.weight") > 0 ||
                     by_name.count("token_embd.weight") > 0;
  for (std::size_t i = 0; i < model.tensors.size(); ++i) {
    const TensorInfo& t = model.tensors[i];
    if (!ends_with(t.name, ".weight") || t.shape.size() < 2) continue;
    Layer layer;
    layer.name = t.name.substr(0, t.name.size() - std::string_view(".weight").size());
    layer.weight = i;
    if (auto it = by_name.find(layer.name + ".bias"); it != by_name.end()) layer.bias = it->second;
    if (llama) {
      std::string_view rest;
      if (const int block = tensor_block(layer.name, &rest); block >= 0) {
        layer.block = block;
        for (const auto& r : kBlockRoles)
          if (rest == r.suffix) layer.role = r.role;
      } else if (layer.name == "model.embed_tokens" || layer.name == "token_embd") {
        layer.role = LayerRole::Embed;
      } else if (layer.name == "lm_head" || layer.name == "output") {
        layer.role = LayerRole::LmHead;
      }
    }
    model.layers.push_back(std::move(layer));
  }
  // Model order: embedding, blocks in order (q k v o gate up down), then the rest.
  auto rank = [](const Layer& l) {
    if (l.role == LayerRole::Embed) return std::pair{-1, 0};
    if (l.block >= 0) return std::pair{l.block, static_cast<int>(l.role)};
    if (l.role == LayerRole::LmHead) return std::pair{1 << 30, 1};
    return std::pair{1 << 30, 0};
  };
  std::stable_sort(model.layers.begin(), model.layers.end(),
                   [&](const Layer& a, const Layer& b) { return rank(a) < rank(b); });
}

}  // namespace qs
