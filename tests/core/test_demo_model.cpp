// The demo model: deterministic, llama-shaped, and its planted outliers are found.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>

#include "backend/cpu_backend.h"
#include "demo/demo_model.h"
#include "io/open_model.h"
#include "stats/layer_summary.h"
#include "test_files.h"

namespace {

TEST(DemoModel, IsDeterministicFromItsSeed) {
  qs::test::TempDir a, b, c;
  ASSERT_TRUE(qs::write_demo_model(a.path().string()).ok());
  ASSERT_TRUE(qs::write_demo_model(b.path().string()).ok());
  qs::DemoSpec other;
  other.seed = 7;
  ASSERT_TRUE(qs::write_demo_model(c.path().string(), other).ok());
  const auto wa = qs::test::read_bytes(a.file("model.safetensors"));
  EXPECT_EQ(wa, qs::test::read_bytes(b.file("model.safetensors")));
  EXPECT_NE(wa, qs::test::read_bytes(c.file("model.safetensors")));
  EXPECT_EQ(qs::test::read_bytes(a.file("config.json")), qs::test::read_bytes(b.file("config.json")));
}

TEST(DemoModel, OpensAsALlamaWithBlocksAndRoles) {
  qs::test::TempDir dir;
  ASSERT_TRUE(qs::write_demo_model(dir.path().string()).ok());
  auto m = qs::open_model(dir.path().string());
  ASSERT_TRUE(m.ok()) << m.error().message;
  EXPECT_EQ(m->arch.model_type, "llama");
  EXPECT_EQ(m->arch.hidden_size, 256);
  EXPECT_EQ(m->arch.num_layers, 6);
  EXPECT_EQ(m->tensors.size(), 57u);  // 6 x 9 + embed + norm + lm_head
  EXPECT_EQ(m->layers.size(), 44u);   // 6 x 7 + embed + lm_head
  EXPECT_EQ(m->block_count(), 6);
  for (const auto& t : m->tensors) EXPECT_EQ(t.dtype, qs::DType::F16);
}

TEST(DemoModel, OutlierDetectorFindsExactlyThePlantedChannels) {
  qs::test::TempDir dir;
  const qs::DemoSpec spec;
  ASSERT_TRUE(qs::write_demo_model(dir.path().string(), spec).ok());
  const auto truth = qs::demo_truth(spec);
  ASSERT_EQ(truth.hidden_outlier_channels.size(), 4u);
  for (float f : truth.hidden_outlier_factors) {
    EXPECT_GE(f, 20.0f);
    EXPECT_LE(f, 100.0f);
  }
  auto m = qs::open_model(dir.path().string());
  ASSERT_TRUE(m.ok());
  auto cpu = qs::cpu_backend();
  int checked = 0;
  for (const auto& layer : m->layers) {
    auto s = qs::summarize_tensor(*cpu, m->tensors[layer.weight], qs::OpContext::none());
    ASSERT_TRUE(s.ok()) << s.error().message;
    std::vector<int> found(s->outlier_in.begin(), s->outlier_in.end());
    using R = qs::LayerRole;
    if (layer.role == R::Q || layer.role == R::K || layer.role == R::V || layer.role == R::Gate || layer.role == R::Up) {
      EXPECT_EQ(found, truth.hidden_outlier_channels) << layer.name;
      EXPECT_GT(s->stats.kurtosis, 20.0) << layer.name;  // the planted columns make it heavy-tailed
      ++checked;
    } else if (layer.role == R::Down) {
      EXPECT_EQ(found, truth.down_outlier_channels[static_cast<std::size_t>(layer.block)]) << layer.name;
      ++checked;
    } else {
      EXPECT_TRUE(found.empty()) << layer.name;  // no false alarms on clean layers
    }
  }
  EXPECT_EQ(checked, 36);
}

TEST(DemoModel, OverviewFiguresPointAtTheOutlierLayers) {
  qs::test::TempDir dir;
  ASSERT_TRUE(qs::write_demo_model(dir.path().string()).ok());
  auto m = qs::open_model(dir.path().string());
  ASSERT_TRUE(m.ok());
  std::atomic<int> progress_calls{0};
  qs::OpContext ctx([&](double) { ++progress_calls; });
  auto figs = qs::summarize_layers(*qs::cpu_backend(), *m, ctx);
  ASSERT_TRUE(figs.ok()) << figs.error().message;
  ASSERT_EQ(figs->size(), m->layers.size());
  EXPECT_EQ(progress_calls.load(), static_cast<int>(m->layers.size()));
  for (std::size_t i = 0; i < figs->size(); ++i) {
    const auto& f = (*figs)[i];
    const auto role = m->layers[i].role;
    ASSERT_TRUE(f.ok);
    const bool reads_hidden = role == qs::LayerRole::Q || role == qs::LayerRole::K || role == qs::LayerRole::V ||
                              role == qs::LayerRole::Gate || role == qs::LayerRole::Up;
    EXPECT_EQ(f.outliers_in, reads_hidden ? 4u : role == qs::LayerRole::Down ? 2u : 0u) << m->layers[i].name;
    if (reads_hidden) EXPECT_GT(f.abs_max, 10.0) << m->layers[i].name;  // 20-100x planted columns
    else EXPECT_LT(f.abs_max, role == qs::LayerRole::Down ? 20.0 : 1.0) << m->layers[i].name;
  }
  qs::OpContext cancelled;
  cancelled.cancel();
  auto c = qs::summarize_layers(*qs::cpu_backend(), *m, cancelled);
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.error().code, qs::ErrorCode::Cancelled);
}

TEST(DemoModel, EnsureReusesAValidCacheAndRepairsABrokenOne) {
  qs::test::TempDir dir;
  const std::string d = (dir.path() / "demo").string();
  auto r = qs::ensure_demo_model(d);
  ASSERT_TRUE(r.ok()) << r.error().message;
  const auto t0 = std::filesystem::last_write_time(d + "/model.safetensors");
  ASSERT_TRUE(qs::ensure_demo_model(d).ok());
  EXPECT_EQ(std::filesystem::last_write_time(d + "/model.safetensors"), t0);
  qs::test::write_bytes(d + "/quantscope_demo.json", "{broken");
  ASSERT_TRUE(qs::ensure_demo_model(d).ok());
  EXPECT_TRUE(qs::open_model(d).ok());
}

}  // namespace
