#include "quant/plan.h"

#include <algorithm>
#include <map>
#include <optional>
#include <nlohmann/json.hpp>

#include "quant/llama_ftype.h"
#include "quant/measure.h"
#include "quant/method_table.h"
#include "util/atomic_file.h"
#include "util/json_depth.h"
#include "util/name_regex.h"
#include "util/read_text_file.h"

namespace qs {
namespace {

using json = nlohmann::ordered_json;

constexpr std::string_view kRoles[] = {"q", "k", "v", "o", "gate", "up", "down", "embed", "lm_head", "other"};

bool known_format(const std::string& f) { return parse_quant_choice(f).ok(); }

// Reads objects field by field so that every unknown key is an error with its place.
class Reader {
 public:
  explicit Reader(const std::string& label) : label_(label) {}
  const std::string& label() const { return label_; }
  Error bad(const std::string& where, const std::string& what) const { return Error::format(label_ + ": " + where + ": " + what); }

  Result<void> only_keys(const json& obj, const std::string& where, std::initializer_list<std::string_view> keys) const {
    if (!obj.is_object()) return bad(where, "must be an object");
    for (const auto& [k, v] : obj.items())
      if (std::find(keys.begin(), keys.end(), k) == keys.end()) return bad(where, "unknown key \"" + k + "\"");
    return {};
  }
  Result<std::string> string(const json& obj, const std::string& where, const char* key) const {
    // (operator[] of a const object with a missing key is undefined: a plan
    // whose "default" had no "format" crashed here)
    const auto it = obj.find(key);
    if (it == obj.end()) return bad(where + "." + key, "missing");
    if (!it->is_string()) return bad(where + "." + key, "must be a string");
    return it->get<std::string>();
  }
  Result<std::string> format(const json& obj, const std::string& where) const {
    auto f = string(obj, where, "format");
    if (!f) return f.error();
    if (!known_format(*f)) return bad(where + ".format", "unknown format \"" + *f + "\"");
    return f;
  }
  Result<std::string> method(const json& obj, const std::string& where) const {
    auto m = string(obj, where, "method");
    if (!m) return m.error();
    if (!find_method(*m)) return bad(where + ".method", "unknown method \"" + *m + "\" (" + method_names() + ")");
    return m;
  }
  Result<std::map<std::string, double>> params(const json& obj, const std::string& where) const {
    std::map<std::string, double> out;
    if (!obj.contains("params")) return out;
    const json& p = obj["params"];
    if (!p.is_object()) return bad(where + ".params", "must be an object of numbers");
    for (const auto& [k, v] : p.items()) {
      if (!v.is_number()) return bad(where + ".params." + k, "must be a number");
      if (!known_method_param(k)) return bad(where + ".params." + k, "no method takes a param \"" + k + "\"");
      out[k] = v.get<double>();
    }
    return out;
  }

 private:
  const std::string& label_;
};

Result<LayerSelector> parse_selector(const Reader& rd, const json& m, const std::string& where) {
  if (auto r = rd.only_keys(m, where, {"name", "role", "blocks", "regex"}); !r) return r.error();
  if (m.empty()) return rd.bad(where, "selects nothing: give name, role, blocks or regex");
  LayerSelector s;
  if (m.contains("name")) {
    auto v = rd.string(m, where, "name");
    if (!v) return v.error();
    s.name = *v;
  }
  if (m.contains("role")) {
    auto v = rd.string(m, where, "role");
    if (!v) return v.error();
    if (std::find(std::begin(kRoles), std::end(kRoles), *v) == std::end(kRoles))
      return rd.bad(where + ".role", "unknown role \"" + *v + "\"");
    s.role = *v;
  }
  if (m.contains("blocks")) {
    const json& b = m["blocks"];
    if (!b.is_array() || b.size() != 2 || !b[0].is_number_integer() || !b[1].is_number_integer() || b[0].get<int>() < 0 ||
        b[1].get<int>() < b[0].get<int>())
      return rd.bad(where + ".blocks", "must be [first, last] with 0 <= first <= last");
    s.first_block = b[0].get<int>();
    s.last_block = b[1].get<int>();
  }
  if (m.contains("regex")) {
    auto v = rd.string(m, where, "regex");
    if (!v) return v.error();
    if (auto re = NameRegex::compile(*v, rd.label() + ": " + where + ".regex"); !re) return re.error();
    s.regex = *v;
  }
  return s;
}

json selector_json(const LayerSelector& s) {
  json m = json::object();
  if (!s.name.empty()) m["name"] = s.name;
  if (!s.role.empty()) m["role"] = s.role;
  if (s.first_block >= 0) m["blocks"] = {s.first_block, s.last_block};
  if (!s.regex.empty()) m["regex"] = s.regex;
  return m;
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// The GGUF name llama.cpp's rules look for, from a layer's role and block.
std::string llama_rule_name(const Layer& l) {
  const std::string b = "blk." + std::to_string(l.block) + ".";
  switch (l.role) {
    case LayerRole::Q: return b + "attn_q.weight";
    case LayerRole::K: return b + "attn_k.weight";
    case LayerRole::V: return b + "attn_v.weight";
    case LayerRole::O: return b + "attn_output.weight";
    case LayerRole::Gate: return b + "ffn_gate.weight";
    case LayerRole::Up: return b + "ffn_up.weight";
    case LayerRole::Down: return b + "ffn_down.weight";
    case LayerRole::Embed: return "token_embd.weight";
    case LayerRole::LmHead: return "output.weight";
    case LayerRole::Other: break;
  }
  return l.name;
}

// llama.cpp's per-tensor choices for a file type, as a plan with one override per layer it changes.
Result<Plan> llama_mix_plan(LlamaFtype ftype, const std::string& preset, const Model& model) {
  std::vector<FtypeTensor> tensors;
  std::vector<std::size_t> layer_of;
  for (std::size_t i = 0; i < model.layers.size(); ++i) {
    const Layer& l = model.layers[i];
    const TensorInfo& t = model.tensors[l.weight];
    tensors.push_back({llama_rule_name(l), t.shape, DType::F32});
    layer_of.push_back(i);
  }
  std::vector<std::size_t> order(tensors.size());
  for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(),
                   [&](std::size_t a, std::size_t b) { return llama_quantize_order(tensors[a].name, tensors[b].name); });
  std::vector<FtypeTensor> sorted;
  for (std::size_t i : order) sorted.push_back(tensors[i]);
  FtypeModelFacts facts{model.arch.num_layers > 0 ? model.arch.num_layers : model.block_count(), model.arch.num_heads,
                        model.arch.num_kv_heads};
  const auto choices = llama_ftype_choices(sorted, ftype, facts);
  Plan p;
  p.preset = preset;
  p.base.format = lower(dtype_name(llama_ftype_base_type(ftype)));
  for (std::size_t k = 0; k < order.size(); ++k) {
    const std::string f = lower(dtype_name(choices[k].type));
    if (f == p.base.format) continue;
    PlanOverride o;
    o.match.name = model.layers[layer_of[order[k]]].name;
    o.format = f;
    p.overrides.push_back(std::move(o));
  }
  return p;
}

}  // namespace

Result<Plan> parse_plan(std::string_view text, const std::string& label) {
  json j;
  if (auto r = check_json_depth(text, label); !r) return r.error();
  try {
    j = json::parse(text);
  } catch (const json::exception& e) {
    return Error::format(label + ": invalid JSON: " + e.what());
  }
  Reader rd(label);
  if (auto r = rd.only_keys(j, "plan", {"version", "preset", "default", "overrides"}); !r) return r.error();
  if (!j.contains("version") || !j["version"].is_number_integer()) return rd.bad("plan.version", "missing or not an integer");
  Plan p;
  p.version = j["version"].get<int>();
  if (p.version < 1 || p.version > kPlanVersion)
    return rd.bad("plan.version", "version " + std::to_string(p.version) + " is not supported (this build reads 1.." +
                                      std::to_string(kPlanVersion) + ")");
  if (j.contains("preset")) {
    auto v = rd.string(j, "plan", "preset");
    if (!v) return v.error();
    p.preset = *v;
  }
  if (!j.contains("default")) return rd.bad("plan.default", "missing");
  const json& d = j["default"];
  if (auto r = rd.only_keys(d, "plan.default", {"format", "method", "params"}); !r) return r.error();
  auto f = rd.format(d, "plan.default");
  if (!f) return f.error();
  p.base.format = *f;
  if (d.contains("method")) {
    auto m = rd.method(d, "plan.default");
    if (!m) return m.error();
    p.base.method = *m;
  }
  auto params = rd.params(d, "plan.default");
  if (!params) return params.error();
  p.base.params = *params;
  if (auto r = check_method_params(*find_method(p.base.method), p.base.params); !r)
    return rd.bad("plan.default.params", r.error().message);
  if (j.contains("overrides")) {
    if (!j["overrides"].is_array()) return rd.bad("plan.overrides", "must be an array");
    for (std::size_t i = 0; i < j["overrides"].size(); ++i) {
      const json& o = j["overrides"][i];
      const std::string where = "plan.overrides[" + std::to_string(i) + "]";
      if (auto r = rd.only_keys(o, where, {"match", "format", "method", "params"}); !r) return r.error();
      if (!o.contains("match")) return rd.bad(where + ".match", "missing");
      PlanOverride po;
      auto sel = parse_selector(rd, o["match"], where + ".match");
      if (!sel) return sel.error();
      po.match = *sel;
      if (o.contains("format")) {
        auto v = rd.format(o, where);
        if (!v) return v.error();
        po.format = *v;
      }
      if (o.contains("method")) {
        auto v = rd.method(o, where);
        if (!v) return v.error();
        po.method = *v;
      }
      auto pp = rd.params(o, where);
      if (!pp) return pp.error();
      po.params = *pp;
      if (auto r = check_method_params(*find_method(po.method.value_or(p.base.method)), po.params); !r)
        return rd.bad(where + ".params", r.error().message);
      if (!po.format && !po.method && po.params.empty()) return rd.bad(where, "changes nothing: give format, method or params");
      p.overrides.push_back(std::move(po));
    }
  }
  return p;
}

std::string plan_to_json(const Plan& p) {
  json j = json::object();
  j["version"] = p.version;
  if (!p.preset.empty()) j["preset"] = p.preset;
  json d = {{"format", p.base.format}, {"method", p.base.method}};
  if (!p.base.params.empty()) d["params"] = p.base.params;
  j["default"] = d;
  j["overrides"] = json::array();
  for (const auto& o : p.overrides) {
    json oj = {{"match", selector_json(o.match)}};
    if (o.format) oj["format"] = *o.format;
    if (o.method) oj["method"] = *o.method;
    if (!o.params.empty()) oj["params"] = o.params;
    j["overrides"].push_back(std::move(oj));
  }
  return j.dump(2) + "\n";
}

Result<Plan> read_plan(const std::string& path) {
  auto text = read_text_file(path, std::size_t{64} << 20);
  if (!text) return text.error();
  return parse_plan(*text, path);
}

Result<void> write_plan(const std::string& path, const Plan& plan) {
  const std::string text = plan_to_json(plan);
  auto f = AtomicFile::create(path);
  if (!f) return f.error();
  if (auto r = f->write(text.data(), text.size()); !r) return r;
  return f->commit();
}

Result<bool> selector_matches(const LayerSelector& s, const Layer& l, const Model& model) {
  if (!s.name.empty() && s.name != l.name && s.name != model.tensors[l.weight].name) return false;
  if (!s.role.empty() && s.role != layer_role_name(l.role)) return false;
  if (s.first_block >= 0 && (l.block < s.first_block || l.block > s.last_block)) return false;
  if (!s.regex.empty()) {
    auto re = NameRegex::compile(s.regex, "plan: match.regex");
    if (!re) return re.error();
    return re->search(l.name);
  }
  return true;
}

Plan plan_from_configs(const Model& model, const std::vector<LayerConfig>& configs, const std::string& preset) {
  Plan p;
  p.preset = preset;
  const std::size_t n = std::min(configs.size(), model.layers.size());
  if (n == 0) return p;
  std::map<std::pair<std::string, std::string>, int> count;
  std::size_t best = 0;
  int best_count = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const int k = ++count[{configs[i].format, configs[i].method}];
    if (k > best_count) {
      best = i;
      best_count = k;
    }
  }
  p.base = configs[best];
  for (std::size_t i = 0; i < n; ++i) {
    const LayerConfig& c = configs[i];
    if (c == p.base) continue;
    PlanOverride o;
    o.match.name = model.layers[i].name;
    if (c.format != p.base.format) o.format = c.format;
    if (c.method != p.base.method) o.method = c.method;
    for (const auto& [key, v] : c.params) {
      auto it = p.base.params.find(key);
      if (it == p.base.params.end() || it->second != v) o.params[key] = v;
    }
    if (!o.format && !o.method && o.params.empty()) o.format = c.format;  // params the default has but this lacks
    p.overrides.push_back(std::move(o));
  }
  return p;
}

Result<std::vector<LayerConfig>> resolve_plan(const Plan& plan, const Model& model) {
  std::vector<LayerConfig> out(model.layers.size(), plan.base);
  std::vector<std::optional<NameRegex>> compiled;  // compile each regex once, not once per layer
  for (std::size_t k = 0; k < plan.overrides.size(); ++k) {
    const auto& o = plan.overrides[k];
    compiled.emplace_back();
    if (o.match.regex.empty()) continue;
    auto re = NameRegex::compile(o.match.regex, "plan: overrides[" + std::to_string(k) + "].match.regex");
    if (!re) return re.error();
    compiled.back() = std::move(*re);
  }
  for (std::size_t i = 0; i < model.layers.size(); ++i) {
    const Layer& l = model.layers[i];
    for (std::size_t k = 0; k < plan.overrides.size(); ++k) {
      const PlanOverride& o = plan.overrides[k];
      LayerSelector without_regex = o.match;
      without_regex.regex.clear();
      auto m = selector_matches(without_regex, l, model);
      if (!m) return m.error();
      if (!*m) continue;
      if (compiled[k]) {
        auto hit = compiled[k]->search(l.name);
        if (!hit) return hit.error();
        if (!*hit) continue;
      }
      if (o.format) out[i].format = *o.format;
      if (o.method) out[i].method = *o.method;
      for (const auto& [key, v] : o.params) out[i].params[key] = v;
    }
  }
  return out;
}

std::vector<std::string> plan_preset_names() {
  return {"q8_0", "q6_k", "q5_k", "q4_k", "q5_1", "q5_0", "q4_1", "q4_0", "f16",
          "q5_k_m", "q4_k_m", "q3_k_m", "gptq-w4g128", "nf4", "w8a8-smoothquant"};
}

Result<Plan> plan_preset(std::string_view name, const Model& model) {
  const std::string n = lower(name);
  if (n == "q4_k_m") return llama_mix_plan(LlamaFtype::Q4_K_M, n, model);
  if (n == "q5_k_m") return llama_mix_plan(LlamaFtype::Q5_K_M, n, model);
  if (n == "q3_k_m") return llama_mix_plan(LlamaFtype::Q3_K_M, n, model);
  Plan p;
  p.preset = n;
  if (n == "gptq-w4g128") {
    p.base = {"int4-g128", "gptq", {{"percdamp", 0.01}, {"block_size", 128}}};
  } else if (n == "nf4") {
    p.base = {"nf4", "rtn", {}};
  } else if (n == "w8a8-smoothquant") {
    p.base = {"int8-ch-sym", "smoothquant", {{"alpha", 0.5}}};
  } else {
    const auto names = plan_preset_names();
    if (std::find(names.begin(), names.end(), n) == names.end()) {
      std::string all;
      for (const auto& s : names) all.append(all.empty() ? "" : ", ").append(s);
      return Error::invalid("unknown preset \"" + n + "\" (" + all + ")");
    }
    p.base = {n, "rtn", {}};
  }
  // Embeddings and the output head stay as they are in every uniform preset but
  // the ggml ones, as GPTQ/NF4/SmoothQuant tooling does.
  if (find_method(p.base.method)->id != MethodId::Rtn || n == "nf4") {
    for (const char* role : {"embed", "lm_head"}) {
      PlanOverride o;
      o.match.role = role;
      o.format = "f16";
      o.method = "rtn";
      p.overrides.push_back(std::move(o));
    }
  }
  return p;
}

}  // namespace qs
