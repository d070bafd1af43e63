#include "io/gguf_model.h"

namespace qs {

Result<ArchInfo> arch_from_gguf(const GgufFile& g, const std::string& label) {
  ArchInfo a;
  const GgufValue* arch = g.find("general.architecture");
  if (!arch) return a;  // not a model file we can describe; tensors still open
  if (!arch->as_string()) return Error::format(label + ": general.architecture must be a string");
  a.model_type = *arch->as_string();
  const std::string p = a.model_type + ".";
  std::string error;
  auto integer = [&](const std::string& key, std::int64_t& out) {
    const GgufValue* v = g.find(key);
    if (!v || !error.empty()) return;
    const auto i = v->as_int();
    if (!i || *i <= 0) error = label + ": " + key + " must be a positive integer, got " + v->to_display_string();
    else out = *i;
  };
  auto number = [&](const std::string& key, double& out) {
    const GgufValue* v = g.find(key);
    if (!v || !error.empty()) return;
    const auto d = v->as_number();
    if (!d || !(*d > 0)) error = label + ": " + key + " must be a positive number, got " + v->to_display_string();
    else out = *d;
  };
  integer(p + "context_length", a.max_position);
  integer(p + "embedding_length", a.hidden_size);
  integer(p + "block_count", a.num_layers);
  integer(p + "feed_forward_length", a.intermediate_size);
  integer(p + "attention.head_count", a.num_heads);
  integer(p + "attention.head_count_kv", a.num_kv_heads);
  integer(p + "attention.key_length", a.head_dim);
  integer(p + "vocab_size", a.vocab_size);
  number(p + "attention.layer_norm_rms_epsilon", a.rms_norm_eps);
  number(p + "rope.freq_base", a.rope.theta);
  number(p + "rope.scaling.factor", a.rope.scaling_factor);
  if (!error.empty()) return Error::format(error);
  if (const GgufValue* st = g.find(p + "rope.scaling.type"); st && st->as_string() && *st->as_string() != "none")
    a.rope.scaling_type = *st->as_string();
  if (a.vocab_size == 0)
    if (const GgufValue* tok = g.find("tokenizer.ggml.tokens"); tok && tok->as_array())
      a.vocab_size = static_cast<std::int64_t>(tok->as_array()->count);
  if (a.num_kv_heads == 0) a.num_kv_heads = a.num_heads;
  if (a.head_dim == 0 && a.num_heads > 0 && a.hidden_size % a.num_heads == 0) a.head_dim = a.hidden_size / a.num_heads;
  if (a.rope.theta == 0 && a.known()) a.rope.theta = 10000.0;  // llama.cpp's default
  return a;
}

Result<Model> open_gguf_model(const std::string& path) {
  auto g = read_gguf(path);
  if (!g) return g.error();
  Model m;
  m.path = path;
  m.format = ModelFormat::Gguf;
  auto arch = arch_from_gguf(*g, path);
  if (!arch) return arch.error();
  m.arch = std::move(*arch);
  m.tensors = g->tensors;
  m.weight_files.push_back(path);
  m.arch.tie_word_embeddings = m.arch.known() && !m.find_tensor("output.weight") && m.find_tensor("token_embd.weight");
  m.gguf = std::make_shared<const GgufFile>(std::move(*g));
  group_layers(m);
  return m;
}

}  // namespace qs
