// Real checkpoints nobody on this project wrote (../shared/models). Expected
// values were read from the raw bytes with Python's struct module.
#include <gtest/gtest.h>

#include <cstring>

#include "backend/cpu_backend.h"
#include "io/open_model.h"
#include "test_files.h"

namespace {

float at(const qs::TensorInfo& t, std::size_t i) {
  float v;
  std::memcpy(&v, t.bytes().data() + 4 * i, 4);
  return v;
}

TEST(RealModels, Stories260KHfDirectory) {
  QS_REQUIRE_SHARED();
  auto m = qs::open_model(shared + "/models/stories260K/hf");
  ASSERT_TRUE(m.ok()) << m.error().message;
  EXPECT_EQ(m->format, qs::ModelFormat::HfDirectory);
  EXPECT_EQ(m->tensors.size(), 48u);
  EXPECT_EQ(m->arch.hidden_size, 64);
  EXPECT_EQ(m->arch.intermediate_size, 172);
  EXPECT_EQ(m->arch.num_layers, 5);
  EXPECT_EQ(m->arch.num_heads, 8);
  EXPECT_EQ(m->arch.num_kv_heads, 4);
  EXPECT_EQ(m->arch.head_dim, 8);
  EXPECT_EQ(m->arch.vocab_size, 512);
  EXPECT_DOUBLE_EQ(m->arch.rms_norm_eps, 1e-5);
  EXPECT_DOUBLE_EQ(m->arch.rope.theta, 10000.0);
  EXPECT_FALSE(m->arch.tie_word_embeddings);
  EXPECT_EQ(m->layers.size(), 37u);  // 5 blocks x 7 + embed + lm_head
  EXPECT_EQ(m->block_count(), 5);
  for (const auto& t : m->tensors) EXPECT_EQ(t.dtype, qs::DType::F32) << t.name;

  auto down = m->find_tensor("model.layers.3.mlp.down_proj.weight");
  ASSERT_TRUE(down.has_value());
  const auto& d = m->tensors[*down];
  EXPECT_EQ(d.shape, (std::vector<std::int64_t>{64, 172}));
  EXPECT_EQ(d.offset, 8u + 4992u + 770048u);  // 8 + header length + data_offsets[0]
  EXPECT_EQ(at(d, 0), -0.14322075247764587f);
  EXPECT_EQ(at(d, 1), 0.10114148259162903f);
  EXPECT_EQ(at(d, 2), 0.17087917029857635f);
  EXPECT_EQ(at(d, 64 * 172 - 1), -0.0631706714630127f);

  const auto& lm = m->tensors[*m->find_tensor("lm_head.weight")];
  EXPECT_EQ(lm.shape, (std::vector<std::int64_t>{512, 64}));
  EXPECT_EQ(at(lm, 0), -0.29474878311157227f);
  EXPECT_EQ(at(lm, 512 * 64 - 1), -0.424032598733902f);
  const auto& norm = m->tensors[*m->find_tensor("model.norm.weight")];
  EXPECT_EQ(norm.shape, (std::vector<std::int64_t>{64}));
  EXPECT_EQ(at(norm, 0), 2.4583089351654053f);
}

TEST(RealModels, TinygradMlpWithoutMetadata) {
  QS_REQUIRE_SHARED();
  auto m = qs::open_model(shared + "/models/tinygrad-mnist-mlp/model.safetensors");
  ASSERT_TRUE(m.ok()) << m.error().message;
  EXPECT_EQ(m->format, qs::ModelFormat::Safetensors);
  EXPECT_FALSE(m->arch.known());
  ASSERT_EQ(m->tensors.size(), 2u);
  const auto& l1 = m->tensors[*m->find_tensor("l1.weight")];
  const auto& l2 = m->tensors[*m->find_tensor("l2.weight")];
  EXPECT_EQ(l1.shape, (std::vector<std::int64_t>{128, 784}));
  EXPECT_EQ(l2.shape, (std::vector<std::int64_t>{10, 128}));
  EXPECT_EQ(at(l1, 0), 0.019083436578512192f);
  EXPECT_EQ(at(l1, 2), 0.007989815436303616f);
  EXPECT_EQ(at(l2, 1), 0.07952425628900528f);
  EXPECT_EQ(at(l2, 1279), -0.047899890691041946f);
  ASSERT_EQ(m->layers.size(), 2u);
  EXPECT_EQ(m->layers[0].block, -1);
}

TEST(RealModels, TinygradHistogramAndMomentsMatchPython) {
  QS_REQUIRE_SHARED();
  auto m = qs::open_model(shared + "/models/tinygrad-mnist-mlp/model.safetensors");
  ASSERT_TRUE(m.ok());
  const auto& l1 = m->tensors[*m->find_tensor("l1.weight")];
  auto s = qs::cpu_backend()->tensor_stats(qs::TensorData::of(l1), {}, qs::OpContext::none());
  ASSERT_TRUE(s.ok()) << s.error().message;
  // Python: math.fsum over the 100352 values; bins by int((x-lo)*(64/(hi-lo))).
  EXPECT_EQ(s->count, 100352u);
  EXPECT_EQ(s->min, -0.050462089478969574);
  EXPECT_EQ(s->max, 0.04517444968223572);
  EXPECT_NEAR(s->mean, -0.0007083051260912563, 1e-15);
  EXPECT_NEAR(s->std, 0.020496285399041057, 1e-12);
  EXPECT_NEAR(s->kurtosis, -1.1685330729965326, 1e-9);
  const std::vector<std::uint64_t> python{
      1,    0,    1,    5,    11,   19,   46,   117,  293,  711,  1889, 1966, 1987, 2101, 2158, 2200,
      2113, 2003, 2082, 2113, 2124, 2192, 2096, 2070, 2207, 2187, 2146, 2123, 2151, 2143, 2181, 2187,
      2080, 2191, 2114, 2103, 2136, 2120, 2125, 2048, 2133, 2088, 2118, 2120, 1981, 2156, 2088, 2144,
      2129, 2140, 2075, 2129, 2065, 2043, 1906, 1724, 1568, 937,  148,  83,   21,   9,    6,    1};
  EXPECT_EQ(s->hist.counts, python);
}

}  // namespace
