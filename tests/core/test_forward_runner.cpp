// Host-side pieces of the device forward pass (run everywhere, CI included):
// the runner registry and its CPU fallback, the RoPE tables the device uses
// (against the formula, and against the CPU forward through the HF/GGUF
// pair), and the device memory plan (against the loaded model's own count).
#include <gtest/gtest.h>

#include <cmath>

#include "calib/device_forward_plan.h"
#include "calib/device.h"
#include "calib/forward_runner.h"
#include "test_device.h"
#include "backend/cpu_backend.h"
#include "calib/perplexity.h"
#include "calib/spm_tokenizer.h"
#include "io/open_model.h"
#include "test_files.h"

namespace {

qs::LlamaConfig small_config() {
  qs::LlamaConfig c;
  c.hidden = 16;
  c.layers = 2;
  c.heads = 4;
  c.kv_heads = 2;
  c.head_dim = 4;
  c.ffn = 24;
  c.vocab = 10;
  return c;
}

TEST(DeviceForwardPlan, RopeTablesFollowTheFormula) {
  qs::LlamaConfig c = small_config();
  c.rope_theta = 10000.0;
  auto inv = qs::rope_inv_freq(c);
  ASSERT_EQ(inv.size(), 2u);
  EXPECT_DOUBLE_EQ(inv[0], 1.0);
  EXPECT_DOUBLE_EQ(inv[1], 0.01);  // 10000^(-2/4)
  c.rope_linear_factor = 4.0;      // "linear" scaling: positions / 4
  c.rope_freq_factors = {1.0f, 8.0f};
  inv = qs::rope_inv_freq(c);
  EXPECT_DOUBLE_EQ(inv[0], 0.25);
  EXPECT_DOUBLE_EQ(inv[1], 0.01 / 4.0 / 8.0);

  const qs::RopeTables t = qs::make_rope_tables(c, 5);
  ASSERT_EQ(t.positions, 5);
  ASSERT_EQ(t.half, 2);
  ASSERT_EQ(t.cos.size(), 10u);
  EXPECT_EQ(t.cos[0], 1.0f);  // position 0: no rotation
  EXPECT_EQ(t.sin[1], 0.0f);
  EXPECT_EQ(t.cos[3 * 2 + 0], static_cast<float>(std::cos(3 * 0.25)));
  EXPECT_EQ(t.sin[3 * 2 + 1], static_cast<float>(std::sin(3 * 0.01 / 32.0)));
  EXPECT_TRUE(qs::make_rope_tables(c, 0).cos.empty());
}

TEST(DeviceForwardPlan, MemoryCountsEveryBuffer) {
  qs::LlamaConfig c = small_config();
  // Untied, no bias: embedding + lm_head, final norm, per layer 2 norms, q/o 16x16, k/v 8x16, 3 MLP 24x16.
  const std::uint64_t per_layer = 2 * 16 + 2 * 16 * 16 + 2 * 8 * 16 + 3 * 16 * 24;
  auto m = qs::device_forward_memory(c, 32);
  EXPECT_EQ(m.weights, 4u * (2 * 10 * 16 + 16 + 2 * per_layer));
  EXPECT_EQ(m.kv_cache, 4u * 2 * 2 * 32 * 8);
  EXPECT_EQ(m.activations, 4u * 32 * (16 + 16 + 2 * 16 + 2 * 24) + 4u * 32);
  EXPECT_EQ(m.logits, 4u * 32 * 10);
  EXPECT_EQ(m.rope, 4u * 2 * 32 * 2);
  EXPECT_EQ(m.total(), m.weights + m.kv_cache + m.activations + m.logits + m.rope);
  c.tied_embeddings = true;
  c.qkv_bias = true;
  EXPECT_EQ(qs::device_forward_memory(c, 32).weights, 4u * (10 * 16 + 16 + 2 * (per_layer + 16 + 2 * 8)));
  const std::string s = qs::describe_device_shortfall(m, 1 << 20);
  EXPECT_NE(s.find("1.0 MiB free"), std::string::npos) << s;
  EXPECT_NE(s.find("weights"), std::string::npos) << s;
}

// A registered device runner that fails or works on demand (a CPU runner under another name).
bool g_fake_up = false;
void register_fake_device() {
  qs::test::register_test_device("zz-test", &g_fake_up, [](const qs::LlamaModel& m, int capacity) {
    return qs::make_cpu_forward_runner(m, capacity);
  });
}

struct Stories {
  std::unique_ptr<qs::LlamaModel> lm;
  std::vector<std::int32_t> ids;
  std::int32_t bos = -1;
};

Stories load(const std::string& shared, const std::string& rel) {
  Stories s;
  auto m = qs::open_model(shared + "/models/stories260K/" + rel);
  EXPECT_TRUE(m.ok()) << m.error().message;
  if (!m) return s;
  auto tok = qs::SpmTokenizer::for_model(*m);
  auto lm = qs::LlamaModel::load(*m);
  EXPECT_TRUE(tok.ok() && lm.ok());
  if (!tok || !lm) return s;
  s.lm = std::make_unique<qs::LlamaModel>(std::move(*lm));
  s.ids = tok->encode(qs::test::read_bytes(shared + "/models/stories260K/eval/tiny_stories_eval.txt"), true);
  s.bos = tok->bos_id();
  return s;
}

TEST(ForwardRunnerRegistry, ChoosesFallsBackAndRefuses) {
  QS_REQUIRE_SHARED();
  const Stories s = load(shared, "gguf/stories260K-f32.gguf");
  ASSERT_TRUE(s.lm);
  register_fake_device();

  auto cpu = qs::make_forward_runner(*s.lm, 64, "cpu");
  ASSERT_TRUE(cpu.ok());
  EXPECT_EQ(cpu->runner->description().rfind("CPU (", 0), 0u) << cpu->runner->description();
  EXPECT_TRUE(cpu->fallback_reason.empty());
  EXPECT_EQ(cpu->runner->capacity(), 64);

  g_fake_up = false;
  auto down = qs::make_forward_runner(*s.lm, 64, "zz-test");
  ASSERT_TRUE(down.ok());
  EXPECT_EQ(down->fallback_reason, "zz-test: test device absent");
  EXPECT_EQ(down->runner->description().rfind("CPU (", 0), 0u);

  g_fake_up = true;
  auto up = qs::make_forward_runner(*s.lm, 64, "zz-test");
  ASSERT_TRUE(up.ok());
  EXPECT_TRUE(up->fallback_reason.empty()) << up->fallback_reason;
  g_fake_up = false;

  auto bad = qs::make_forward_runner(*s.lm, 64, "tpu");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message.find("\"tpu\""), std::string::npos) << bad.error().message;
}

// One registry: a choice gives one device, whose backend and forward runner
// go together; the CPU is a device object (never null), and a device asked
// for by name that is down is an error only where the caller is strict.
TEST(DeviceRegistry, OneDeviceGivesBackendAndRunner) {
  register_fake_device();
  auto cpu = qs::choose_device("cpu");
  ASSERT_TRUE(cpu.ok());
  ASSERT_TRUE(cpu->device);
  EXPECT_TRUE(cpu->device->is_host());
  EXPECT_EQ(cpu->device->backend(), qs::cpu_backend());
  EXPECT_TRUE(cpu->device->backend()->is_host());
  EXPECT_EQ(cpu->device, qs::cpu_device());

  g_fake_up = false;
  auto down = qs::choose_device("zz-test");
  ASSERT_TRUE(down.ok());
  EXPECT_EQ(down->device, qs::cpu_device());
  EXPECT_EQ(down->fallback_reason, "zz-test: test device absent");
  auto strict = qs::choose_device("zz-test", true);
  ASSERT_FALSE(strict.ok());
  EXPECT_NE(strict.error().message.find("test device absent"), std::string::npos) << strict.error().message;
  EXPECT_FALSE(qs::make_backend("zz-test").ok());  // a backend asked for by name is strict

  g_fake_up = true;
  auto up = qs::choose_device("zz-test");
  ASSERT_TRUE(up.ok());
  EXPECT_EQ(up->device->name(), "zz-test");
  EXPECT_FALSE(up->device->is_host());
  EXPECT_TRUE(up->fallback_reason.empty());
  auto backend = qs::make_backend("zz-test");
  ASSERT_TRUE(backend.ok());
  EXPECT_EQ(*backend, up->device->backend());
  g_fake_up = false;

  EXPECT_FALSE(qs::choose_device("tpu").ok());
  // "cuda" in a build or registry without it: the CPU, saying why, unless strict.
  auto cuda = qs::choose_device("cuda");
  if (cuda.ok() && cuda->device->is_host()) {
    EXPECT_FALSE(cuda->fallback_reason.empty());
  }
}

// The runner interface gives the CPU forward's own results: perplexity as
// perplexity(model) computes it, greedy decoding token for token, and a
// cache smaller than the context is refused with both figures.
TEST(ForwardRunnerRegistry, CpuRunnerGivesTheModelsResults) {
  QS_REQUIRE_SHARED();
  const Stories s = load(shared, "gguf/stories260K-f32.gguf");
  ASSERT_TRUE(s.lm);
  qs::PerplexityOptions opt;
  opt.bos = s.bos;
  auto direct = qs::perplexity(*s.lm, s.ids, opt);
  auto runner = qs::make_cpu_forward_runner(*s.lm, 256);
  auto through = qs::perplexity(*runner, s.lm->config(), s.ids, opt);
  ASSERT_TRUE(direct.ok() && through.ok());
  std::printf("  perplexity %.6f (model) %.6f (runner)\n", direct->ppl, through->ppl);
  EXPECT_EQ(direct->ppl, through->ppl);
  EXPECT_NEAR(through->ppl, 4.6578, 5e-5);

  auto small = qs::make_cpu_forward_runner(*s.lm, 100);
  auto refused = qs::perplexity(*small, s.lm->config(), s.ids, opt);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.error().message.find("holds 100 positions, fewer than the context of 256"), std::string::npos)
      << refused.error().message;

  const std::vector<std::int32_t> prompt{s.bos};
  auto a = qs::generate_greedy(*s.lm, prompt, 40, s.bos);
  auto runner40 = qs::make_cpu_forward_runner(*s.lm, 41);
  auto b = qs::generate_greedy(*runner40, prompt, 40, s.bos);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(*a, *b);
  auto too_small = qs::make_cpu_forward_runner(*s.lm, 20);
  auto c = qs::generate_greedy(*too_small, prompt, 40, s.bos);
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.error().message.find("41 positions exceed the runner's cache of 20"), std::string::npos) << c.error().message;
}

// On the real model: a table entry against the formula at position 300, and
// the memory plan's weight bytes against what the loaded model holds.
TEST(DeviceForwardPlan, TablesCoverTheCacheOfStories) {
  QS_REQUIRE_SHARED();
  const Stories s = load(shared, "hf");
  ASSERT_TRUE(s.lm);
  const qs::LlamaConfig& c = s.lm->config();
  const auto t = qs::make_rope_tables(c, 512);
  ASSERT_EQ(t.half, c.head_dim / 2);
  ASSERT_EQ(t.cos.size(), static_cast<std::size_t>(512 * t.half));
  const double a = 300.0 * std::pow(10000.0, -2.0 * 1 / c.head_dim);
  EXPECT_EQ(t.cos[static_cast<std::size_t>(300 * t.half + 1)], static_cast<float>(std::cos(a)));
  EXPECT_EQ(t.sin[static_cast<std::size_t>(300 * t.half + 1)], static_cast<float>(std::sin(a)));
  EXPECT_EQ(qs::device_forward_memory(c, 256).weights, s.lm->weight_bytes());
}

}  // namespace
