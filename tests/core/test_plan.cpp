// Quantization plans: JSON round trip, errors that name the place, selector
// semantics on the demo model, and the q4_k_m preset against the types
// llama-quantize really wrote into stories260K-Q4_K_M.gguf.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <random>
#include <set>

#include "demo/demo_model.h"
#include "io/gguf.h"
#include "io/open_model.h"
#include "quant/allocate.h"
#include "quant/measure.h"
#include "quant/metrics.h"
#include "quant/layer_method.h"
#include "quant/plan.h"
#include "test_files.h"

namespace {

namespace fs = std::filesystem;

const qs::Model& demo() {
  // Removed at exit: constructed before the model, so destroyed after it (the model maps its files).
  static const qs::test::TempDir dir;
  static const qs::Model model = [] {
    EXPECT_TRUE(qs::write_demo_model(dir.path().string()).ok());
    auto m = qs::open_model(dir.path().string());
    EXPECT_TRUE(m.ok());
    return std::move(*m);
  }();
  return model;
}

TEST(Plan, JsonRoundTripKeepsEverything) {
  qs::Plan p;
  p.preset = "custom";
  p.base = {"q4_k", "rtn", {}};
  qs::PlanOverride a;
  a.match.role = "down";
  a.format = "q6_k";
  qs::PlanOverride b;
  b.match.first_block = 0;
  b.match.last_block = 1;
  b.match.regex = "self_attn\\.(q|k)_proj";
  b.method = "gptq";
  b.params = {{"percdamp", 0.05}};
  p.overrides = {a, b};
  auto back = qs::parse_plan(qs::plan_to_json(p), "mem");
  ASSERT_TRUE(back.ok()) << back.error().message;
  EXPECT_EQ(*back, p);
}

TEST(Plan, BadPlansAreErrorsThatNameThePlace) {
  struct Case {
    const char* json;
    const char* expect;
  } cases[] = {
      {R"({"version":1,"default":{"format":"q4_k"},"extra":1})", "plan: unknown key \"extra\""},
      {R"({"version":2,"default":{"format":"q4_k"}})", "plan.version: version 2 is not supported"},
      {R"({"default":{"format":"q4_k"}})", "plan.version: missing"},
      {R"({"version":1,"default":{"format":"q9_z"}})", "plan.default.format: unknown format \"q9_z\""},
      {R"({"version":1,"default":{"format":"q4_k","method":"magic"}})", "plan.default.method: unknown method \"magic\""},
      {R"({"version":1,"default":{"format":"q4_k"},"overrides":[{"match":{"rol":"down"},"format":"q6_k"}]})",
       "plan.overrides[0].match: unknown key \"rol\""},
      {R"({"version":1,"default":{"format":"q4_k"},"overrides":[{"match":{"role":"mlp"},"format":"q6_k"}]})",
       "plan.overrides[0].match.role: unknown role \"mlp\""},
      {R"({"version":1,"default":{"format":"q4_k"},"overrides":[{"match":{"regex":"(("},"format":"q6_k"}]})",
       "plan.overrides[0].match.regex: invalid regular expression"},
      {R"({"version":1,"default":{"format":"q4_k"},"overrides":[{"match":{"blocks":[3,1]},"format":"q6_k"}]})",
       "plan.overrides[0].match.blocks: must be [first, last]"},
      {R"({"version":1,"default":{"format":"q4_k"},"overrides":[{"match":{"role":"q"}}]})",
       "plan.overrides[0]: changes nothing"},
      {R"({"version":1,"default":{"format":"q4_k","params":{"alpha":"high"}}})", "plan.default.params.alpha: must be a number"},
      {R"({"version":1,"default":)", "invalid JSON"},
      {R"({"version":1,"default":{"method":"rtn"}})", "plan.default.format: missing"},  // crashed (#17)
      {R"({"version":1,"default":{"format":7}})", "plan.default.format: must be a string"},
      {R"({"version":1,"default":{"format":"q4_k","method":"awq","params":{"alpha_points":1e9}}})",
       "alpha_points"},  // a bad_alloc abort before the method table's ranges (#17)
  };
  for (const auto& c : cases) {
    auto p = qs::parse_plan(c.json, "my_plan.json");
    ASSERT_FALSE(p.ok()) << c.json;
    EXPECT_NE(p.error().message.find("my_plan.json: "), std::string::npos) << p.error().message;
    EXPECT_NE(p.error().message.find(c.expect), std::string::npos) << p.error().message;
  }
}

TEST(Plan, OverridesApplyInOrderBySelector) {
  const qs::Model& m = demo();
  auto plan = qs::parse_plan(R"({
    "version": 1,
    "default": {"format": "q4_k", "method": "rtn", "params": {"alpha": 0.5}},
    "overrides": [
      {"match": {"role": "down"}, "format": "q6_k"},
      {"match": {"blocks": [4, 5], "role": "down"}, "format": "q8_0"},
      {"match": {"regex": "layers\\.0\\.self_attn\\.[qk]_proj"}, "method": "clip", "params": {"step": 0.02}},
      {"match": {"name": "model.layers.2.mlp.up_proj.weight"}, "format": "int4-g128"}
    ]})", "t");
  ASSERT_TRUE(plan.ok()) << plan.error().message;
  auto cfg = qs::resolve_plan(*plan, m);
  ASSERT_TRUE(cfg.ok()) << cfg.error().message;
  ASSERT_EQ(cfg->size(), m.layers.size());
  int checked = 0;
  for (std::size_t i = 0; i < m.layers.size(); ++i) {
    const qs::Layer& l = m.layers[i];
    const qs::LayerConfig& c = (*cfg)[i];
    std::string want_format = "q4_k", want_method = "rtn";
    if (l.role == qs::LayerRole::Down) want_format = l.block >= 4 ? "q8_0" : "q6_k";
    if (l.name == "model.layers.2.mlp.up_proj") want_format = "int4-g128";
    const bool qk0 = l.block == 0 && (l.role == qs::LayerRole::Q || l.role == qs::LayerRole::K);
    if (qk0) want_method = "clip";
    EXPECT_EQ(c.format, want_format) << l.name;
    EXPECT_EQ(c.method, want_method) << l.name;
    EXPECT_EQ(c.params.at("alpha"), 0.5) << l.name;  // merged, not replaced
    EXPECT_EQ(c.params.count("step"), qk0 ? 1u : 0u) << l.name;
    ++checked;
  }
  EXPECT_EQ(checked, 44);
}

// plan_from_configs is resolve_plan's inverse: the configs the plan editor
// holds become a plan (the most common config the default, one override per
// layer that differs) that resolves to exactly those configs.
TEST(Plan, PlanFromConfigsResolvesToThem) {
  const qs::Model& m = demo();
  auto plan = qs::parse_plan(R"({"version": 1, "default": {"format": "q4_k", "method": "rtn", "params": {"alpha": 0.5}},
    "overrides": [{"match": {"role": "down"}, "format": "q6_k"},
                  {"match": {"regex": "layers\\.0\\.self_attn\\.[qk]_proj"}, "method": "clip", "params": {"step": 0.02}},
                  {"match": {"name": "model.layers.3.mlp.gate_proj"}, "params": {"alpha": 0.25}}]})", "t");
  ASSERT_TRUE(plan.ok()) << plan.error().message;
  auto configs = qs::resolve_plan(*plan, m);
  ASSERT_TRUE(configs.ok()) << configs.error().message;
  const qs::Plan back = qs::plan_from_configs(m, *configs, "edited");
  EXPECT_EQ(back.preset, "edited");
  EXPECT_EQ(back.base.format, "q4_k");
  EXPECT_EQ(back.overrides.size(), 6u + 2u + 1u);  // the downs, q/k of block 0, one gate's params
  auto again = qs::resolve_plan(back, m);
  ASSERT_TRUE(again.ok()) << again.error().message;
  EXPECT_EQ(*again, *configs);
  // Through JSON too (what Save Plan writes).
  auto reread = qs::parse_plan(qs::plan_to_json(back), "t");
  ASSERT_TRUE(reread.ok()) << reread.error().message;
  auto third = qs::resolve_plan(*reread, m);
  ASSERT_TRUE(third.ok());
  EXPECT_EQ(*third, *configs);
}

TEST(Plan, PresetsAndSaveLoad) {
  const qs::Model& m = demo();
  auto bad = qs::plan_preset("q9_k", m);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message.find("q4_k_m"), std::string::npos) << bad.error().message;  // lists the presets
  auto gptq = qs::plan_preset("gptq-w4g128", m);
  ASSERT_TRUE(gptq.ok());
  auto cfg = qs::resolve_plan(*gptq, m);
  ASSERT_TRUE(cfg.ok());
  for (std::size_t i = 0; i < m.layers.size(); ++i) {
    const bool edge = m.layers[i].role == qs::LayerRole::Embed || m.layers[i].role == qs::LayerRole::LmHead;
    EXPECT_EQ((*cfg)[i].format, edge ? "f16" : "int4-g128") << m.layers[i].name;
  }
  const fs::path file = fs::temp_directory_path() / ("qs_plan_" + std::to_string(::getpid()) + ".json");
  ASSERT_TRUE(qs::write_plan(file.string(), *gptq).ok());
  auto back = qs::read_plan(file.string());
  ASSERT_TRUE(back.ok()) << back.error().message;
  EXPECT_EQ(*back, *gptq);
  fs::remove(file);
}

// The q4_k_m preset on the HF stories260K must give every layer the type that
// llama-quantize gave the same tensor in its Q4_K_M file.
TEST(Plan, Q4KMPresetMatchesLlamaQuantizeOnStories260K) {
  QS_REQUIRE_SHARED();
  auto hf = qs::open_model(shared + "/models/stories260K/hf");
  ASSERT_TRUE(hf.ok()) << hf.error().message;
  auto gguf = qs::read_gguf(shared + "/models/stories260K/gguf/stories260K-Q4_K_M.gguf");
  ASSERT_TRUE(gguf.ok());
  auto plan = qs::plan_preset("q4_k_m", *hf);
  ASSERT_TRUE(plan.ok()) << plan.error().message;
  auto cfg = qs::resolve_plan(*plan, *hf);
  ASSERT_TRUE(cfg.ok());
  const std::map<std::string, std::string> gguf_of = {
      {"self_attn.q_proj", "attn_q"}, {"self_attn.k_proj", "attn_k"}, {"self_attn.v_proj", "attn_v"},
      {"self_attn.o_proj", "attn_output"}, {"mlp.gate_proj", "ffn_gate"}, {"mlp.up_proj", "ffn_up"},
      {"mlp.down_proj", "ffn_down"}};
  int compared = 0;
  for (std::size_t i = 0; i < hf->layers.size(); ++i) {
    const qs::Layer& l = hf->layers[i];
    std::string name;
    if (l.role == qs::LayerRole::Embed) name = "token_embd.weight";
    else if (l.role == qs::LayerRole::LmHead) name = "output.weight";
    else
      for (const auto& [hf_part, g] : gguf_of)
        if (l.name.ends_with(hf_part)) name = "blk." + std::to_string(l.block) + "." + g + ".weight";
    ASSERT_FALSE(name.empty()) << l.name;
    const auto it = std::find_if(gguf->tensors.begin(), gguf->tensors.end(), [&](const auto& t) { return t.name == name; });
    ASSERT_NE(it, gguf->tensors.end()) << name;
    std::string type(qs::dtype_name(it->dtype));
    for (char& c : type) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    EXPECT_EQ((*cfg)[i].format, type) << l.name << " (" << name << ")";
    ++compared;
  }
  EXPECT_EQ(compared, 37);
}

}  // namespace

namespace {

// The Lagrangian choice is optimal among all assignments that use no more bits
// (checked by brute force over every assignment of a small model).
TEST(Allocate, BudgetChoiceBeatsEveryAssignmentWithNoMoreBits) {
  const qs::Model& m = demo();
  auto costs = qs::measure_candidates(m, {"q4_0", "q5_1", "q8_0", "int3-g32"}, qs::OpContext::none());
  ASSERT_TRUE(costs.ok()) << costs.error().message;
  // Brute force on the first 6 layers that have candidates: restrict the model's costs to those.
  std::vector<std::vector<qs::CandidateCost>> small(costs->size());
  std::vector<std::size_t> picked;
  for (std::size_t l = 0; l < costs->size() && picked.size() < 6; ++l)
    if (!(*costs)[l].empty()) {
      small[l] = (*costs)[l];
      picked.push_back(l);
    }
  ASSERT_EQ(picked.size(), 6u);
  auto a = qs::allocate_to_budget(m, small, 5.0);
  ASSERT_TRUE(a.ok()) << a.error().message;
  EXPECT_LE(a->bits_per_weight, 5.0 + 1e-9);
  double weights = 0;
  for (std::size_t l : picked) weights += static_cast<double>(m.tensors[m.layers[l].weight].numel());
  std::vector<std::size_t> idx(6, 0);
  int assignments = 0;
  while (true) {
    double bits = 0, err = 0;
    for (std::size_t k = 0; k < 6; ++k) {
      const auto& c = small[picked[k]][idx[k]];
      bits += c.bits_per_weight * static_cast<double>(m.tensors[m.layers[picked[k]].weight].numel());
      err += c.squared_error;
    }
    ++assignments;
    if (bits / weights <= a->bits_per_weight + 1e-12) {
      EXPECT_GE(err, a->squared_error * (1 - 1e-12));
    }
    std::size_t k = 0;
    while (k < 6 && ++idx[k] == small[picked[k]].size()) idx[k++] = 0;
    if (k == 6) break;
  }
  EXPECT_GT(assignments, 100);
  // The Pareto front runs from most bits to fewest with error rising.
  for (std::size_t i = 1; i < a->pareto.size(); ++i) {
    EXPECT_LT(a->pareto[i].bits_per_weight, a->pareto[i - 1].bits_per_weight);
    EXPECT_GE(a->pareto[i].squared_error, a->pareto[i - 1].squared_error);
  }
  // The plan it returns resolves to the chosen formats.
  auto cfg = qs::resolve_plan(a->plan, m);
  ASSERT_TRUE(cfg.ok());
  double bits = 0;
  for (std::size_t l : picked) {
    const auto it = std::find_if(small[l].begin(), small[l].end(), [&](const auto& c) { return c.format == (*cfg)[l].format; });
    ASSERT_NE(it, small[l].end()) << m.layers[l].name;
    bits += it->bits_per_weight * static_cast<double>(m.tensors[m.layers[l].weight].numel());
  }
  EXPECT_NEAR(bits / weights, a->bits_per_weight, 1e-9);
  EXPECT_FALSE(qs::allocate_to_budget(m, small, 2.0).ok());  // below every candidate
}

}  // namespace

namespace {

// With Hessians the costs are relative errors: the output error on H where a
// layer has one (checked against relative_output_error_h here), the relative
// weight error 10^(-SQNR/10) where it has none; a wrong-sized list is refused.
TEST(Allocate, CalibratedCostsAreRelativeOutputErrors) {
  const qs::Model& m = demo();
  std::vector<std::vector<float>> h(m.layers.size());
  std::vector<const float*> ptrs(m.layers.size(), nullptr);
  std::mt19937 rng(5);
  std::normal_distribution<float> n(0.0f, 1.0f);
  for (std::size_t l = 0; l < m.layers.size(); l += 2) {  // every other layer "calibrated"
    const std::int64_t cols = m.tensors[m.layers[l].weight].cols();
    const std::int64_t tokens = 64;
    std::vector<float> x(static_cast<std::size_t>(tokens * cols));
    for (auto& v : x) v = n(rng);
    h[l].assign(static_cast<std::size_t>(cols * cols), 0.0f);
    for (std::int64_t t = 0; t < tokens; ++t)
      for (std::int64_t i = 0; i < cols; ++i)
        for (std::int64_t j = 0; j < cols; ++j)
          h[l][static_cast<std::size_t>(i * cols + j)] += x[static_cast<std::size_t>(t * cols + i)] * x[static_cast<std::size_t>(t * cols + j)];
    ptrs[l] = h[l].data();
    if (l >= 6) break;  // a few are enough (cols^2 * tokens each)
  }
  auto costs = qs::measure_candidates(m, {"q8_0", "int4-g64"}, qs::OpContext::none(), &ptrs);
  ASSERT_TRUE(costs.ok()) << costs.error().message;
  int with_h = 0, without = 0;
  for (std::size_t l = 0; l < m.layers.size(); ++l) {
    const qs::TensorInfo& t = m.tensors[m.layers[l].weight];
    for (const qs::CandidateCost& c : (*costs)[l]) {
      auto choice = qs::parse_quant_choice(c.format);
      ASSERT_TRUE(choice.ok());
      std::vector<float> w, deq;
      ASSERT_TRUE(qs::quantize_dequantize(t, *choice, w, deq, qs::OpContext::none()).ok());
      if (ptrs[l]) {
        EXPECT_DOUBLE_EQ(c.squared_error, qs::relative_output_error_h(w.data(), deq.data(), t.rows(), t.cols(), ptrs[l]));
        ++with_h;
      } else {
        double e = 0, s = 0;
        for (std::size_t i = 0; i < w.size(); ++i) {
          e += (static_cast<double>(w[i]) - deq[i]) * (static_cast<double>(w[i]) - deq[i]);
          s += static_cast<double>(w[i]) * w[i];
        }
        EXPECT_NEAR(c.squared_error, e / s, 1e-9 * e / s) << m.layers[l].name << " " << c.format;
        ++without;
      }
      EXPECT_GT(c.squared_error, 0.0);
      EXPECT_LT(c.squared_error, 1.0);
    }
  }
  EXPECT_GT(with_h, 0);
  EXPECT_GT(without, 0);
  std::vector<const float*> wrong(3, nullptr);
  EXPECT_FALSE(qs::measure_candidates(m, {"q8_0"}, qs::OpContext::none(), &wrong).ok());
}

// Methods with params as candidates: the plan the allocation writes resolves,
// layer by layer, to exactly the candidate it chose (an override's params
// merge over the default's, so the default carries none), and each cost is
// that candidate's measurement.
TEST(Allocate, MethodCandidatesResolveToWhatWasChosen) {
  const qs::Model& m = demo();
  const std::vector<std::string> candidates = {"q8_0", "int4-g64+clip(step=0.05)", "int4-g64+outliers(fraction=0.02)"};
  auto costs = qs::measure_candidates(m, candidates, qs::OpContext::none());
  ASSERT_TRUE(costs.ok()) << costs.error().message;
  for (const double budget : {5.0, 6.5, 8.0}) {
    auto a = qs::allocate_to_budget(m, *costs, budget);
    ASSERT_TRUE(a.ok()) << a.error().message;
    EXPECT_TRUE(a->plan.base.params.empty()) << qs::layer_config_key(a->plan.base);
    auto resolved = qs::resolve_plan(a->plan, m);
    ASSERT_TRUE(resolved.ok());
    ASSERT_EQ(a->chosen.size(), m.layers.size());
    std::set<std::string> used;
    for (std::size_t l = 0; l < m.layers.size(); ++l) {
      if (a->chosen[l].empty()) continue;
      EXPECT_EQ(qs::layer_config_key((*resolved)[l]), a->chosen[l]) << m.layers[l].name << " at " << budget;
      used.insert(a->chosen[l]);
    }
    if (budget == 6.5) {
      EXPECT_GE(used.size(), 2u);  // a real mix, not one candidate everywhere
    }
  }
  // A cost is the candidate's own measurement (outlier keeping's side table in its bits).
  const qs::TensorInfo& t = m.tensors[m.layers[1].weight];
  std::vector<float> w(static_cast<std::size_t>(t.numel()));
  ASSERT_TRUE(qs::tensor_to_f32(t, w.data()).ok());
  auto config = qs::parse_layer_config_key("int4-g64+outliers(fraction=0.02)");
  auto r = qs::quantize_with_method(w.data(), t.rows(), t.cols(), *qs::parse_quant_choice("int4-g64"), *config, {},
                                    qs::OpContext::none());
  ASSERT_TRUE(r.ok());
  bool found = false;
  for (const qs::CandidateCost& c : (*costs)[1])
    if (c.format == "int4-g64+outliers(fraction=0.02)") {
      found = true;
      EXPECT_DOUBLE_EQ(c.bits_per_weight, r->figures.bits_per_weight);
      EXPECT_GT(c.bits_per_weight, 4.5);
      EXPECT_DOUBLE_EQ(c.squared_error, r->figures.error.mse * static_cast<double>(t.numel()));
    }
  EXPECT_TRUE(found);
}

}  // namespace
