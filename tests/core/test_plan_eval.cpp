// Evaluation of a plan: the KL divergence against a direct computation, the
// model against itself (exactly 0), and on stories260K a q4_k_m plan applied
// in memory to the F32 model against llama-quantize's own Q4_K_M file
// (the same weights, so the same perplexity).
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <memory>
#include <random>
#include <stdexcept>

#include "calib/kl_divergence.h"
#include "calib/llama_forward.h"
#include "calib/perplexity.h"
#include "calib/plan_model.h"
#include "calib/spm_tokenizer.h"
#include "io/open_model.h"
#include "model/convert.h"
#include "quant/plan.h"
#include "test_files.h"

namespace {

// KL(P || Q) straight from the definition, in long double: p = e^l / Σ e^l.
long double direct_kl(const float* a, const float* b, int n) {
  long double za = 0, zb = 0;
  for (int i = 0; i < n; ++i) {
    za += std::exp(static_cast<long double>(a[i]));
    zb += std::exp(static_cast<long double>(b[i]));
  }
  long double kl = 0;
  for (int i = 0; i < n; ++i) {
    const long double p = std::exp(static_cast<long double>(a[i])) / za, q = std::exp(static_cast<long double>(b[i])) / zb;
    kl += p * std::log(p / q);
  }
  return kl;
}

TEST(KlDivergence, MatchesTheDefinition) {
  std::mt19937 rng(5);
  std::normal_distribution<float> g(0.0f, 3.0f);
  for (int trial = 0; trial < 20; ++trial) {
    std::vector<float> a(512), b(512);
    for (std::size_t i = 0; i < a.size(); ++i) {
      a[i] = g(rng);
      b[i] = a[i] + 0.1f * static_cast<float>(trial) * g(rng);
    }
    const double got = qs::kl_divergence(a.data(), b.data(), 512);
    const auto want = static_cast<double>(direct_kl(a.data(), b.data(), 512));
    EXPECT_NEAR(got, want, 1e-12 + 1e-9 * want) << trial;
    EXPECT_EQ(qs::kl_divergence(a.data(), a.data(), 512), 0.0);
  }
  // Shifting all logits changes nothing.
  std::vector<float> a{1, 2, 3}, b{1.5f, 2, 2.5f}, shifted{101.5f, 102, 102.5f};
  EXPECT_NEAR(qs::kl_divergence(a.data(), b.data(), 3), qs::kl_divergence(a.data(), shifted.data(), 3), 1e-12);
}

struct Stories {
  qs::Model model;
  std::unique_ptr<qs::LlamaModel> lm;
  std::vector<std::int32_t> ids;
  qs::PerplexityOptions opt;
};

Stories load_stories(const std::string& shared, const std::string& rel) {
  Stories s;
  auto m = qs::open_model(shared + "/models/stories260K/" + rel);
  if (!m) throw std::runtime_error(m.error().message);
  s.model = std::move(*m);
  auto lm = qs::LlamaModel::load(s.model);
  if (!lm) throw std::runtime_error(lm.error().message);
  s.lm = std::make_unique<qs::LlamaModel>(std::move(*lm));
  auto tok = qs::SpmTokenizer::for_model(s.model);
  if (!tok) throw std::runtime_error(tok.error().message);
  s.ids = tok->encode(qs::test::read_bytes(shared + "/models/stories260K/eval/tiny_stories_eval.txt"), true);
  s.opt.n_ctx = 256;
  s.opt.bos = tok->bos_id();
  return s;
}

TEST(PlanEval, ModelAgainstItselfHasZeroKldAndPerplexityAsPerplexity) {
  QS_REQUIRE_SHARED();
  Stories s = load_stories(shared, "gguf/stories260K-f32.gguf");
  auto cmp = qs::compare_models(*s.lm, *s.lm, s.ids, s.opt);
  ASSERT_TRUE(cmp.ok()) << cmp.error().message;
  EXPECT_EQ(cmp->mean_kld, 0.0);
  EXPECT_EQ(cmp->max_kld, 0.0);
  EXPECT_EQ(cmp->top1_agreement, 1.0);
  EXPECT_EQ(cmp->positions, 8 * 127);
  auto ppl = qs::perplexity(*s.lm, s.ids, s.opt);
  ASSERT_TRUE(ppl.ok());
  EXPECT_EQ(cmp->quantized.ppl, ppl->ppl);
  EXPECT_EQ(cmp->reference.ppl, ppl->ppl);
  EXPECT_EQ(cmp->quantized.running_ppl, ppl->running_ppl);
  EXPECT_NEAR(ppl->ppl, 4.6578, 4.6578 * 1e-3);
}

// The q4_k_m plan on the F32 GGUF gives llama-quantize's Q4_K_M weights (29 Q5_0,
// 3 Q8_0 after llama.cpp's fallbacks, and the 172-wide down rows in f16, as the preset says), hence its perplexity.
TEST(PlanEval, Q4KMPlanInMemoryEqualsLlamaQuantizeFile) {
  QS_REQUIRE_SHARED();
  Stories f32 = load_stories(shared, "gguf/stories260K-f32.gguf");
  Stories q4 = load_stories(shared, "gguf/stories260K-Q4_K_M.gguf");
  auto plan = qs::plan_preset("q4_k_m", f32.model);
  ASSERT_TRUE(plan.ok()) << plan.error().message;
  std::vector<qs::PlannedWeight> applied;
  auto fq = qs::load_llama_with_plan(f32.model, *plan, &applied);
  ASSERT_TRUE(fq.ok()) << fq.error().message;
  std::map<std::string, int> counts;
  for (const auto& w : applied) ++counts[w.applied];
  EXPECT_EQ(counts, (std::map<std::string, int>{{"Q5_0", 29}, {"Q8_0", 3}, {"f16", 5}}));
  // Weight for weight.
  EXPECT_EQ(fq->embedding(), q4.lm->embedding());
  EXPECT_EQ(fq->lm_head(), q4.lm->lm_head());
  for (std::size_t b = 0; b < fq->blocks().size(); ++b) {
    const auto &x = fq->blocks()[b], &y = q4.lm->blocks()[b];
    EXPECT_EQ(x.wq, y.wq) << b;
    EXPECT_EQ(x.wk, y.wk) << b;
    EXPECT_EQ(x.wv, y.wv) << b;
    EXPECT_EQ(x.wo, y.wo) << b;
    EXPECT_EQ(x.w_gate, y.w_gate) << b;
    EXPECT_EQ(x.w_up, y.w_up) << b;
    EXPECT_EQ(x.w_down, y.w_down) << b;
  }
  auto cmp = qs::compare_models(*f32.lm, *fq, f32.ids, f32.opt);
  ASSERT_TRUE(cmp.ok()) << cmp.error().message;
  auto file_ppl = qs::perplexity(*q4.lm, q4.ids, q4.opt);
  ASSERT_TRUE(file_ppl.ok());
  std::printf("  q4_k_m in memory: ppl %.6f, file %.6f (llama.cpp 4.8044), mean KLD %.6f\n", cmp->quantized.ppl, file_ppl->ppl,
              cmp->mean_kld);
  EXPECT_NEAR(cmp->quantized.ppl, file_ppl->ppl, 1e-4);
  EXPECT_NEAR(cmp->quantized.ppl, 4.8044, 4.8044 * 0.01);
  EXPECT_GT(cmp->mean_kld, 0.0);

  // The mean KLD over the first chunk, recomputed here from both models' logits.
  qs::PerplexityOptions one = f32.opt;
  one.max_chunks = 1;
  auto c1 = qs::compare_models(*f32.lm, *fq, f32.ids, one);
  ASSERT_TRUE(c1.ok());
  std::vector<std::int32_t> chunk(f32.ids.begin(), f32.ids.begin() + 256);
  chunk[0] = f32.opt.bos;
  std::vector<float> la, lb;
  qs::LlamaRunner ra(*f32.lm), rb(*fq);
  qs::LlamaCache ca(f32.lm->config(), 256), cb(f32.lm->config(), 256);
  ASSERT_TRUE(ra.forward(ca, chunk, la).ok());
  ASSERT_TRUE(rb.forward(cb, chunk, lb).ok());
  long double sum = 0;
  for (int i = 128; i < 255; ++i) sum += direct_kl(la.data() + i * 512, lb.data() + i * 512, 512);
  const auto want = static_cast<double>(sum / 127);
  EXPECT_NEAR(c1->mean_kld, want, 1e-6 * want);
}

TEST(PlanEval, KldGrowsFromQ8ToQ4AndRefusesCalibratedMethods) {
  QS_REQUIRE_SHARED();
  Stories s = load_stories(shared, "hf");
  double kld[2] = {0, 0};
  int k = 0;
  for (const char* preset : {"q8_0", "q4_0"}) {
    auto plan = qs::plan_preset(preset, s.model);
    ASSERT_TRUE(plan.ok()) << plan.error().message;
    auto fq = qs::load_llama_with_plan(s.model, *plan);
    ASSERT_TRUE(fq.ok()) << fq.error().message;
    auto cmp = qs::compare_models(*s.lm, *fq, s.ids, s.opt);
    ASSERT_TRUE(cmp.ok()) << cmp.error().message;
    std::printf("  %s: ppl %.4f, mean KLD %.6f, same top token %.1f %%\n", preset, cmp->quantized.ppl, cmp->mean_kld,
                100 * cmp->top1_agreement);
    kld[k++] = cmp->mean_kld;
  }
  EXPECT_GT(kld[0], 0.0);
  EXPECT_GT(kld[1], 3 * kld[0]);

  auto gptq = qs::plan_preset("gptq-w4g128", s.model);
  ASSERT_TRUE(gptq.ok());
  auto refused = qs::load_llama_with_plan(s.model, *gptq);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.error().message.find("gptq"), std::string::npos) << refused.error().message;

  // An integer grid that does not divide the 172-wide rows keeps those layers, and says so.
  qs::Plan g;
  g.base.format = "int4-g32";
  std::vector<qs::PlannedWeight> applied;
  auto fq = qs::load_llama_with_plan(s.model, g, &applied);
  ASSERT_TRUE(fq.ok()) << fq.error().message;
  int kept = 0;
  for (const auto& w : applied) kept += w.applied == "kept" && !w.note.empty();
  EXPECT_EQ(kept, 5);  // the 172-wide down rows
  EXPECT_EQ(static_cast<int>(applied.size()) - kept, 32);

  // Outlier keeping (no calibration needed) on top of Q4_0: 2 % of the weights
  // in F16 bring the model closer to the unquantized one than plain Q4_0.
  auto kld_of = [&](const qs::LayerConfig& base, std::vector<qs::PlannedWeight>& report) {
    qs::Plan p;
    p.base = base;
    auto m = qs::load_llama_with_plan(s.model, p, &report);
    EXPECT_TRUE(m.ok()) << (m.ok() ? "" : m.error().message);
    if (!m.ok()) return -1.0;
    auto c = qs::compare_models(*s.lm, *m, s.ids, s.opt);
    EXPECT_TRUE(c.ok());
    return c.ok() ? c->mean_kld : -1.0;
  };
  std::vector<qs::PlannedWeight> plain_report, kept_report;
  const double plain = kld_of({"q4_0", "rtn", {}}, plain_report);
  const double with_outliers = kld_of({"q4_0", "outliers", {{"fraction", 0.02}}}, kept_report);
  std::printf("  q4_0: mean KLD %.6f; with 2 %% outliers kept %.6f\n", plain, with_outliers);
  EXPECT_GT(plain, 0.0);
  EXPECT_GT(with_outliers, 0.0);
  EXPECT_LT(with_outliers, 0.9 * plain);  // measured 0.0883 vs 0.1059
  int marked = 0;
  for (const auto& w : kept_report) marked += w.applied.find("(outliers)") != std::string::npos;
  EXPECT_GT(marked, 0);
}

}  // namespace

#include "calib/calibrate.h"

namespace {

// SmoothQuant W8A8 in evaluation. The identity first: with the weights kept in
// F32 and no activation quantization the smoothed model (W diag(s), x / s) is
// the model, so its KL divergence from it is rounding noise; then 8-bit
// activations per token cost little and 4-bit ones much more; a plan that
// smooths only q of q/k/v, or a smoothed plan without calibration, is refused.
TEST(PlanEval, SmoothQuantW8A8IsAppliedOnBothSides) {
  QS_REQUIRE_SHARED();
  Stories s = load_stories(shared, "hf");
  qs::CalibrationSettings set;
  set.text_files = {shared + "/models/stories260K/eval/tiny_stories_eval.txt"};
  set.sequences = 8;
  set.seq_len = 128;
  auto run = qs::calibrate(s.model, set);
  ASSERT_TRUE(run.ok()) << run.error().message;
  auto kld_of = [&](const std::string& json, const qs::ActivationCapture* calib) -> double {
    auto plan = qs::parse_plan(json, "t");
    EXPECT_TRUE(plan.ok()) << (plan.ok() ? "" : plan.error().message);
    if (!plan.ok()) return -1;
    auto m = qs::load_llama_with_plan(s.model, *plan, nullptr, qs::OpContext::none(), calib);
    EXPECT_TRUE(m.ok()) << (m.ok() ? "" : m.error().message);
    if (!m.ok()) return -1;
    EXPECT_TRUE(m->quantizes_inputs());
    auto c = qs::compare_models(*s.lm, *m, s.ids, s.opt);
    EXPECT_TRUE(c.ok());
    return c.ok() ? c->mean_kld : -1;
  };
  const char* base = R"({"version":1,"default":{"format":"f32"},"overrides":[{"match":{"regex":"layers"},"format":"%s",)"
                     R"("method":"smoothquant","params":{"act_bits":%d,"smooth":%d}}]})";
  auto plan_text = [&](const char* format, int act_bits, int smooth) {
    char buf[512];
    std::snprintf(buf, sizeof buf, base, format, act_bits, smooth);
    return std::string(buf);
  };
  const double identity = kld_of(plan_text("f32", 16, 1), &run->capture);
  const double w8a8 = kld_of(plan_text("int8-ch-sym", 8, 1), &run->capture);
  const double w8a8_plain = kld_of(plan_text("int8-ch-sym", 8, 0), &run->capture);
  const double w8a4 = kld_of(plan_text("int8-ch-sym", 4, 1), &run->capture);
  std::printf("  mean KLD: smoothed F32 with 16-bit inputs %.2e; W8A8 smoothed %.6f, unsmoothed %.6f; W8A4 smoothed %.6f\n",
              identity, w8a8, w8a8_plain, w8a4);
  EXPECT_GE(identity, 0.0);
  EXPECT_LT(identity, 1e-5);
  EXPECT_GT(w8a8, 10 * identity);
  EXPECT_LT(w8a8, 0.02);
  EXPECT_GT(w8a4, 5 * w8a8);

  auto partial = qs::parse_plan(R"({"version":1,"default":{"format":"f32"},"overrides":[
      {"match":{"role":"q"},"format":"int8-ch-sym","method":"smoothquant"}]})", "t");
  ASSERT_TRUE(partial.ok());
  auto refused = qs::load_llama_with_plan(s.model, *partial, nullptr, qs::OpContext::none(), &run->capture);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.error().message.find("give all of them method \"smoothquant\""), std::string::npos) << refused.error().message;
  auto preset = qs::plan_preset("w8a8-smoothquant", s.model);
  ASSERT_TRUE(preset.ok());
  auto uncalibrated = qs::load_llama_with_plan(s.model, *preset);
  ASSERT_FALSE(uncalibrated.ok());
  EXPECT_NE(uncalibrated.error().message.find("give a calibration file"), std::string::npos) << uncalibrated.error().message;
}

}  // namespace
