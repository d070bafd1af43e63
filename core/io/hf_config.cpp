#include "io/hf_config.h"

#include <nlohmann/json.hpp>

#include "util/read_text_file.h"
#include "util/json_depth.h"

namespace qs {
namespace {

using json = nlohmann::json;

// Reads an optional field with a type check; a present field of the wrong type
// is an error naming the field (silently ignoring it would hide a broken file).
struct FieldReader {
  const json& obj;
  const std::string& label;
  std::string error;

  const json* find(const json& o, const char* key) {
    auto it = o.find(key);
    return (it == o.end() || it->is_null()) ? nullptr : &*it;
  }
  void positive_int(const json& o, const char* key, std::int64_t& out) {
    const json* v = find(o, key);
    if (!v || !error.empty()) return;
    if (!v->is_number_integer() || v->get<std::int64_t>() <= 0) {
      error = label + ": \"" + key + "\" must be a positive integer, got " + v->dump();
      return;
    }
    out = v->get<std::int64_t>();
  }
  void positive_number(const json& o, const char* key, double& out) {
    const json* v = find(o, key);
    if (!v || !error.empty()) return;
    if (!v->is_number() || !(v->get<double>() > 0)) {
      error = label + ": \"" + key + "\" must be a positive number, got " + v->dump();
      return;
    }
    out = v->get<double>();
  }
  void string(const json& o, const char* key, std::string& out) {
    const json* v = find(o, key);
    if (!v || !error.empty()) return;
    if (!v->is_string()) {
      error = label + ": \"" + key + "\" must be a string, got " + v->dump();
      return;
    }
    out = v->get<std::string>();
  }
  void boolean(const json& o, const char* key, bool& out) {
    const json* v = find(o, key);
    if (!v || !error.empty()) return;
    if (!v->is_boolean()) {
      error = label + ": \"" + key + "\" must be true or false, got " + v->dump();
      return;
    }
    out = v->get<bool>();
  }
  void rope(const json& o, RopeInfo& r) {
    if (const json* s = find(o, "rope_type"); s && s->is_string()) r.scaling_type = s->get<std::string>();
    else if (const json* t = find(o, "type"); t && t->is_string()) r.scaling_type = t->get<std::string>();
    positive_number(o, "factor", r.scaling_factor);
  }
};

}  // namespace

Result<ArchInfo> parse_hf_config(std::string_view text, const std::string& label) {
  json j;
  if (auto r = check_json_depth(text, label); !r) return r.error();
  try {
    j = json::parse(text.begin(), text.end());
  } catch (const json::exception& e) {
    std::string what = e.what();
    // Drop nlohmann's "[json.exception.parse_error.101] " prefix.
    if (auto p = what.find("] "); p != std::string::npos) what = what.substr(p + 2);
    return Error::format(label + ": not valid JSON: " + what);
  }
  if (!j.is_object()) return Error::format(label + ": must hold a JSON object, got " + std::string(j.type_name()));

  ArchInfo a;
  FieldReader f{j, label, {}};
  f.string(j, "model_type", a.model_type);
  if (const json* arch = f.find(j, "architectures")) {
    if (!arch->is_array()) return Error::format(label + ": \"architectures\" must be a list of strings");
    for (const auto& s : *arch) {
      if (!s.is_string()) return Error::format(label + ": \"architectures\" must be a list of strings");
      a.architectures.push_back(s.get<std::string>());
    }
  }
  f.positive_int(j, "hidden_size", a.hidden_size);
  f.positive_int(j, "intermediate_size", a.intermediate_size);
  f.positive_int(j, "num_hidden_layers", a.num_layers);
  f.positive_int(j, "num_attention_heads", a.num_heads);
  f.positive_int(j, "num_key_value_heads", a.num_kv_heads);
  f.positive_int(j, "head_dim", a.head_dim);
  f.positive_int(j, "vocab_size", a.vocab_size);
  f.positive_int(j, "max_position_embeddings", a.max_position);
  f.positive_number(j, "rms_norm_eps", a.rms_norm_eps);
  f.boolean(j, "tie_word_embeddings", a.tie_word_embeddings);
  f.string(j, "torch_dtype", a.torch_dtype);
  if (a.torch_dtype.empty()) f.string(j, "dtype", a.torch_dtype);

  // RoPE: legacy top-level keys, or transformers 5's rope_parameters dict.
  f.positive_number(j, "rope_theta", a.rope.theta);
  for (const char* key : {"rope_scaling", "rope_parameters"}) {
    if (const json* rs = f.find(j, key)) {
      if (!rs->is_object()) return Error::format(label + ": \"" + key + "\" must be an object or null, got " + rs->dump());
      f.rope(*rs, a.rope);
      if (a.rope.theta == 0) f.positive_number(*rs, "rope_theta", a.rope.theta);
    }
  }
  if (!f.error.empty()) return Error::format(f.error);

  // Defaults the model classes apply when a field is absent.
  if (a.num_kv_heads == 0) a.num_kv_heads = a.num_heads;
  if (a.head_dim == 0 && a.num_heads > 0 && a.hidden_size % a.num_heads == 0) a.head_dim = a.hidden_size / a.num_heads;
  if (a.rope.scaling_type == "default") a.rope.scaling_type.clear();
  if (a.num_heads > 0 && a.num_kv_heads > 0 && a.num_heads % a.num_kv_heads != 0)
    return Error::format(label + ": num_attention_heads (" + std::to_string(a.num_heads) +
                         ") is not a multiple of num_key_value_heads (" + std::to_string(a.num_kv_heads) + ")");
  return a;
}

Result<ArchInfo> read_hf_config(const std::string& path) {
  auto text = read_text_file(path, 16u << 20);
  if (!text) return text.error();
  return parse_hf_config(*text, path);
}

}  // namespace qs
