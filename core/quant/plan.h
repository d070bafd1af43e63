#pragma once
// A quantization plan: a default LayerConfig plus per-layer overrides,
// selected by exact layer name, by role (all "down"), by block range, or by
// regular expression (as llama.cpp's --tensor-type). Later overrides win.
// Stored as JSON with a version field (schema: docs/plan-format.md); unknown
// keys and bad values are errors that name the file and the place.
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "model/model.h"
#include "util/result.h"

namespace qs {

inline constexpr int kPlanVersion = 1;

struct LayerConfig {
  std::string format = "q8_0";          // a measure.h format name ("q4_k", "int4-g128", ...) or "f16"/"bf16"/"f32"
  std::string method = "rtn";           // "rtn", "clip", "gptq", "awq"
  std::map<std::string, double> params; // method parameters (e.g. "percdamp", "alpha_points")

  bool operator==(const LayerConfig&) const = default;
};

struct LayerSelector {
  std::string name;     // exact layer name ("model.layers.3.mlp.down_proj") or its weight tensor name
  std::string role;     // "q", "k", "v", "o", "gate", "up", "down", "embed", "lm_head", "other"
  int first_block = -1, last_block = -1;  // inclusive block range; -1: any
  std::string regex;    // PCRE2 (util/name_regex.h), searched in the layer name

  bool operator==(const LayerSelector&) const = default;
};

struct PlanOverride {
  LayerSelector match;
  std::optional<std::string> format, method;
  std::map<std::string, double> params;  // merged over the default's

  bool operator==(const PlanOverride&) const = default;
};

struct Plan {
  int version = kPlanVersion;
  std::string preset;  // informative: the preset it started from, if any
  LayerConfig base;
  std::vector<PlanOverride> overrides;

  bool operator==(const Plan&) const = default;
};

Result<Plan> parse_plan(std::string_view json_text, const std::string& label);
std::string plan_to_json(const Plan& plan);
Result<Plan> read_plan(const std::string& path);
Result<void> write_plan(const std::string& path, const Plan& plan);  // atomic

// True when `sel` picks `layer` (every given criterion must hold).
Result<bool> selector_matches(const LayerSelector& sel, const Layer& layer, const Model& model);
// The config of every layer, in Model::layers order.
Result<std::vector<LayerConfig>> resolve_plan(const Plan& plan, const Model& model);
// The inverse: a plan whose resolve_plan gives `configs` (Model::layers order)
// — the most common config (ties: the first in model order) as the default,
// one override by exact layer name for every layer that differs.
Plan plan_from_configs(const Model& model, const std::vector<LayerConfig>& configs, const std::string& preset = {});

// Presets mirroring known recipes: uniform "q8_0", "q6_k", "q5_k", "q4_k", "q4_0", ..., "f16";
// "q4_k_m" / "q5_k_m" / "q3_k_m" (llama.cpp's mixes, per layer, with its fallbacks);
// "gptq-w4g128"; "nf4"; "w8a8-smoothquant".
Result<Plan> plan_preset(std::string_view name, const Model& model);
std::vector<std::string> plan_preset_names();

}  // namespace qs
