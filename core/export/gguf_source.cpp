#include "export/gguf_source.h"

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "export/spm_vocab.h"
#include "util/read_text_file.h"
#include "util/json_depth.h"

namespace qs {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

GgufValue u32(std::uint64_t v) {
  GgufValue g;
  g.type = GgufType::U32;
  g.v = v;
  return g;
}
GgufValue f32(double v) {
  GgufValue g;
  g.type = GgufType::F32;
  g.v = static_cast<double>(static_cast<float>(v));
  return g;
}
GgufValue str(std::string v) {
  GgufValue g;
  g.type = GgufType::STRING;
  g.v = std::move(v);
  return g;
}
GgufValue boolean(bool v) {
  GgufValue g;
  g.type = GgufType::BOOL;
  g.v = v;
  return g;
}

// A numeric array viewing storage that `keep` holds.
template <typename T>
GgufValue numeric_array(GgufType elem, const std::vector<T>& values, std::vector<std::shared_ptr<const void>>& keep) {
  auto storage = std::make_shared<std::vector<T>>(values);
  GgufArray a;
  a.elem = elem;
  a.count = storage->size();
  a.raw = std::as_bytes(std::span<const T>(*storage));
  keep.push_back(storage);
  GgufValue g;
  g.type = GgufType::ARRAY;
  g.v = std::move(a);
  return g;
}

GgufValue string_array(std::vector<std::string> values, std::vector<std::shared_ptr<const void>>& keep) {
  auto storage = std::make_shared<const std::vector<std::string>>(std::move(values));  // never moves again
  GgufArray a;
  a.elem = GgufType::STRING;
  a.count = storage->size();
  for (const auto& s : *storage) a.strings.emplace_back(s);
  keep.push_back(storage);
  GgufValue g;
  g.type = GgufType::ARRAY;
  g.v = std::move(a);
  return g;
}

// HF llama-family tensor name -> GGUF name (llama.cpp's tensor map); "" to drop.
Result<std::string> gguf_name(const std::string& hf) {
  static const std::pair<std::string_view, std::string_view> kTop[] = {
      {"model.embed_tokens.weight", "token_embd.weight"},
      {"model.norm.weight", "output_norm.weight"},
      {"lm_head.weight", "output.weight"},
  };
  for (const auto& [from, to] : kTop)
    if (hf == from) return std::string(to);
  std::string_view rest;
  const int block = tensor_block(hf, &rest);
  static const std::pair<std::string_view, std::string_view> kBlock[] = {
      {"input_layernorm.weight", "attn_norm.weight"},
      {"self_attn.q_proj.weight", "attn_q.weight"},     {"self_attn.q_proj.bias", "attn_q.bias"},
      {"self_attn.k_proj.weight", "attn_k.weight"},     {"self_attn.k_proj.bias", "attn_k.bias"},
      {"self_attn.v_proj.weight", "attn_v.weight"},     {"self_attn.v_proj.bias", "attn_v.bias"},
      {"self_attn.o_proj.weight", "attn_output.weight"},
      {"post_attention_layernorm.weight", "ffn_norm.weight"},
      {"mlp.gate_proj.weight", "ffn_gate.weight"},      {"mlp.up_proj.weight", "ffn_up.weight"},
      {"mlp.down_proj.weight", "ffn_down.weight"},
      {"self_attn.rotary_emb.inv_freq", ""},  // recomputed by every runtime
  };
  if (block >= 0)
    for (const auto& [from, to] : kBlock)
      if (rest == from) return to.empty() ? std::string() : "blk." + std::to_string(block) + "." + std::string(to);
  return Error::unsupported(hf + ": no GGUF name for this tensor in a llama-family model");
}

Result<json> read_json_beside(const fs::path& dir, const char* file, bool required) {
  const fs::path p = dir / file;
  if (!fs::exists(p)) {
    if (required) return Error::io(p.string() + ": missing");
    return json::object();
  }
  auto text = read_text_file(p.string(), std::size_t{16} << 20);
  if (!text) return text.error();
  if (auto r = check_json_depth(*text, p.string()); !r) return r.error();
  try {
    return json::parse(*text);
  } catch (const json::exception& e) {
    return Error::format(p.string() + ": invalid JSON: " + e.what());
  }
}

std::optional<std::uint64_t> json_uint(const json& j, const char* key) {
  if (j.contains(key) && j[key].is_number_unsigned()) return j[key].get<std::uint64_t>();
  return std::nullopt;
}

}  // namespace

void permute_rope_rows(const float* in, float* out, std::int64_t rows, std::int64_t cols, std::int64_t heads) {
  const std::int64_t head_dim = rows / heads, half = head_dim / 2;
  for (std::int64_t h = 0; h < heads; ++h)
    for (std::int64_t j = 0; j < 2; ++j)
      for (std::int64_t i = 0; i < half; ++i)
        std::memcpy(out + (h * head_dim + i * 2 + j) * cols, in + (h * head_dim + j * half + i) * cols,
                    static_cast<std::size_t>(cols) * sizeof(float));
}

Result<GgufSource> gguf_source_of_gguf(const Model& model) {
  if (!model.gguf) return Error::invalid(model.path + ": not a GGUF model");
  GgufSource s;
  s.metadata = model.gguf->metadata;
  s.alignment = model.gguf->alignment;
  for (const TensorInfo& t : model.gguf->tensors) s.tensors.push_back({t.name, t.shape, &t, t.dtype, 0});
  return s;
}

Result<GgufSource> gguf_source_of_hf(const Model& model) {
  const ArchInfo& a = model.arch;
  if (a.model_type != "llama" && a.model_type != "mistral")
    return Error::unsupported(model.architecture_file() + ": GGUF export supports llama-family models (llama, mistral); this one is \"" +
                              a.model_type + "\"");
  if (!a.rope.scaling_type.empty() && a.rope.scaling_type != "linear")
    return Error::unsupported(model.path + ": RoPE scaling \"" + a.rope.scaling_type + "\" is not exported yet");
  const fs::path dir = fs::is_directory(model.path) ? fs::path(model.path) : fs::path(model.path).parent_path();
  const fs::path spm = dir / "tokenizer.model";
  if (!fs::exists(spm))
    return Error::unsupported(model.path + ": GGUF export needs the SentencePiece tokenizer.model (BPE tokenizer.json-only "
                              "models need llama.cpp's pre-tokenizer detection, not implemented yet)");
  auto pieces = read_spm_vocab(spm.string());
  if (!pieces) return pieces.error();
  auto config = read_json_beside(dir, "config.json", true);
  if (!config) return config.error();
  auto tok_config = read_json_beside(dir, "tokenizer_config.json", false);
  if (!tok_config) return tok_config.error();
  if (a.num_heads <= 0 || a.hidden_size <= 0 || a.num_layers <= 0)
    return Error::format(model.path + ": config.json lacks hidden_size, num_attention_heads or num_hidden_layers");
  const std::int64_t kv_heads = a.num_kv_heads > 0 ? a.num_kv_heads : a.num_heads;
  const std::int64_t head_dim = a.head_dim > 0 ? a.head_dim : a.hidden_size / a.num_heads;

  GgufSource s;
  auto& md = s.metadata;
  md.emplace_back("general.architecture", str("llama"));
  md.emplace_back("general.type", str("model"));
  md.emplace_back("general.name", str(dir.filename().string()));
  md.emplace_back("llama.block_count", u32(static_cast<std::uint64_t>(a.num_layers)));
  if (a.max_position > 0) md.emplace_back("llama.context_length", u32(static_cast<std::uint64_t>(a.max_position)));
  md.emplace_back("llama.embedding_length", u32(static_cast<std::uint64_t>(a.hidden_size)));
  if (a.intermediate_size > 0) md.emplace_back("llama.feed_forward_length", u32(static_cast<std::uint64_t>(a.intermediate_size)));
  md.emplace_back("llama.attention.head_count", u32(static_cast<std::uint64_t>(a.num_heads)));
  md.emplace_back("llama.attention.head_count_kv", u32(static_cast<std::uint64_t>(kv_heads)));
  if (a.rope.theta > 0) md.emplace_back("llama.rope.freq_base", f32(a.rope.theta));
  if (a.rms_norm_eps > 0) md.emplace_back("llama.attention.layer_norm_rms_epsilon", f32(a.rms_norm_eps));
  if (a.vocab_size > 0) md.emplace_back("llama.vocab_size", u32(static_cast<std::uint64_t>(a.vocab_size)));
  md.emplace_back("llama.rope.dimension_count", u32(static_cast<std::uint64_t>(head_dim)));
  if (a.rope.scaling_type == "linear") {
    md.emplace_back("llama.rope.scaling.type", str("linear"));
    md.emplace_back("llama.rope.scaling.factor", f32(a.rope.scaling_factor));
  }

  // The vocabulary, padded to the model's vocab size with unused tokens as the converter does.
  std::vector<std::string> tokens;
  std::vector<float> scores;
  std::vector<std::int32_t> types;
  std::optional<std::uint64_t> unk;
  for (const auto& p : *pieces) {
    if (p.type == SpmPieceType::Unknown && !unk) unk = tokens.size();
    tokens.push_back(p.piece);
    scores.push_back(p.score);
    types.push_back(static_cast<std::int32_t>(p.type));
  }
  if (a.vocab_size > 0 && tokens.size() > static_cast<std::size_t>(a.vocab_size))
    return Error::format(spm.string() + ": " + std::to_string(tokens.size()) + " pieces for a vocabulary of " +
                         std::to_string(a.vocab_size));
  while (a.vocab_size > 0 && tokens.size() < static_cast<std::size_t>(a.vocab_size)) {
    tokens.push_back("[PAD" + std::to_string(tokens.size()) + "]");
    scores.push_back(-1000.0f);
    types.push_back(static_cast<std::int32_t>(SpmPieceType::Unused));
  }
  md.emplace_back("tokenizer.ggml.model", str("llama"));
  md.emplace_back("tokenizer.ggml.pre", str("default"));
  md.emplace_back("tokenizer.ggml.tokens", string_array(tokens, s.keepalive));
  md.emplace_back("tokenizer.ggml.scores", numeric_array(GgufType::F32, scores, s.keepalive));
  md.emplace_back("tokenizer.ggml.token_type", numeric_array(GgufType::I32, types, s.keepalive));
  auto token_id = [&](const char* id_key, const char* token_key) -> std::optional<std::uint64_t> {
    if (auto v = json_uint(*config, id_key)) return v;
    if (tok_config->contains(token_key) && (*tok_config)[token_key].is_string()) {
      const auto it = std::find(tokens.begin(), tokens.end(), (*tok_config)[token_key].get<std::string>());
      if (it != tokens.end()) return static_cast<std::uint64_t>(it - tokens.begin());
    }
    return std::nullopt;
  };
  if (auto v = token_id("bos_token_id", "bos_token")) md.emplace_back("tokenizer.ggml.bos_token_id", u32(*v));
  if (auto v = token_id("eos_token_id", "eos_token")) md.emplace_back("tokenizer.ggml.eos_token_id", u32(*v));
  if (unk) md.emplace_back("tokenizer.ggml.unknown_token_id", u32(*unk));
  if (auto v = token_id("pad_token_id", "pad_token")) md.emplace_back("tokenizer.ggml.padding_token_id", u32(*v));
  if (tok_config->contains("add_bos_token") && (*tok_config)["add_bos_token"].is_boolean())
    md.emplace_back("tokenizer.ggml.add_bos_token", boolean((*tok_config)["add_bos_token"].get<bool>()));
  if (tok_config->contains("add_eos_token") && (*tok_config)["add_eos_token"].is_boolean())
    md.emplace_back("tokenizer.ggml.add_eos_token", boolean((*tok_config)["add_eos_token"].get<bool>()));
  if (tok_config->contains("chat_template") && (*tok_config)["chat_template"].is_string())
    md.emplace_back("tokenizer.chat_template", str((*tok_config)["chat_template"].get<std::string>()));

  for (const TensorInfo& t : model.tensors) {
    auto name = gguf_name(t.name);
    if (!name) return Error::unsupported((t.file ? t.file->path() + ": " : model.path + ": ") + name.error().message);
    if (name->empty()) continue;
    if (t.channels_last || !dtype_is_float_convertible(t.dtype))
      return Error::unsupported(t.name + ": " + std::string(dtype_name(t.dtype)) + " tensors are not exported to GGUF yet");
    GgufSourceTensor g{*name, t.shape, &t, t.shape.size() <= 1 ? DType::F32 : t.dtype, 0};
    const bool q = t.name.ends_with("q_proj.weight") || t.name.ends_with("q_proj.bias");
    const bool k = t.name.ends_with("k_proj.weight") || t.name.ends_with("k_proj.bias");
    if (q || k) {
      g.permute_heads = q ? a.num_heads : kv_heads;
      if (t.shape.empty() || t.shape[0] != g.permute_heads * head_dim || head_dim % 2 != 0)
        return Error::format(t.where() + ": " + std::to_string(t.shape.empty() ? 0 : t.shape[0]) + " rows are not " +
                             std::to_string(g.permute_heads) + " heads of " + std::to_string(head_dim) + " as " +
                             model.architecture_file() + " gives");
    }
    s.tensors.push_back(std::move(g));
  }
  return s;
}

Result<GgufSource> gguf_source_of(const Model& model) {
  if (model.gguf) return gguf_source_of_gguf(model);
  return gguf_source_of_hf(model);
}

}  // namespace qs
