// Quantization choices by name, and their measured cost on one weight.
#include <gtest/gtest.h>

#include <cstring>
#include <random>

#include "quant/measure.h"

namespace {

qs::TensorInfo f32_tensor(const std::vector<float>& v, std::int64_t rows, std::int64_t cols) {
  qs::TensorInfo t;
  t.name.assign("weight");  // (not operator=: GCC 12 raises a false -Wrestrict on it here)
  t.shape = {rows, cols};
  t.dtype = qs::DType::F32;
  std::vector<std::byte> bytes(v.size() * 4);
  std::memcpy(bytes.data(), v.data(), bytes.size());
  t.file = qs::MappedFile::from_buffer(std::move(bytes), "test");
  t.nbytes = v.size() * 4;
  return t;
}

TEST(Measure, ParsesFormatNames) {
  auto q = qs::parse_quant_choice("q4_k");
  ASSERT_TRUE(q.ok());
  EXPECT_EQ(q->kind, qs::QuantChoice::Kind::Ggml);
  EXPECT_EQ(q->ggml_type, qs::DType::Q4_K);
  auto i = qs::parse_quant_choice("int3-g64-sym");
  ASSERT_TRUE(i.ok()) << i.error().message;
  EXPECT_EQ(i->grid.bits, 3);
  EXPECT_EQ(i->grid.group_size, 64);
  EXPECT_TRUE(i->grid.symmetric);
  auto ch = qs::parse_quant_choice("int8-ch");
  ASSERT_TRUE(ch.ok());
  EXPECT_EQ(ch->grid.group_size, 0);
  EXPECT_FALSE(ch->grid.symmetric);
  for (const char* bad : {"q3_k", "int", "int9", "int4-g0", "int4-x", "fp8", ""}) {
    auto r = qs::parse_quant_choice(bad);
    EXPECT_FALSE(r.ok()) << bad;
  }
}

TEST(Measure, BitsPerWeightCountScalesAndZeros) {
  EXPECT_DOUBLE_EQ(qs::parse_quant_choice("q8_0")->bits_per_weight(8, 256), 8.5);
  EXPECT_DOUBLE_EQ(qs::parse_quant_choice("q4_k")->bits_per_weight(8, 256), 4.5);
  EXPECT_DOUBLE_EQ(qs::parse_quant_choice("q6_k")->bits_per_weight(8, 256), 6.5625);
  EXPECT_DOUBLE_EQ(qs::parse_quant_choice("int4-g128")->bits_per_weight(8, 256), 4.25);    // F16 scale + zero per 128
  EXPECT_DOUBLE_EQ(qs::parse_quant_choice("int4-g32-sym")->bits_per_weight(8, 256), 4.5);  // F16 scale per 32
  EXPECT_DOUBLE_EQ(qs::parse_quant_choice("int8-ch")->bits_per_weight(8, 256), 8.125);     // per row of 256
}

TEST(Measure, MoreBitsLessErrorAndShapesThatDoNotFitAreNamed) {
  std::mt19937 rng(1);
  std::normal_distribution<float> nd(0.0f, 0.02f);
  std::vector<float> w(64 * 512);
  for (auto& v : w) v = nd(rng);
  const auto t = f32_tensor(w, 64, 512);
  double last = 1e9;
  for (const char* f : {"q8_0", "q6_k", "q5_k", "q4_k", "int3-g128"}) {
    auto m = qs::measure_quantization(t, *qs::parse_quant_choice(f), qs::OpContext::none());
    ASSERT_TRUE(m.ok()) << f << ": " << m.error().message;
    EXPECT_LT(m->error.sqnr_db, last) << f;
    last = m->error.sqnr_db;
  }
  // Q8_0 on Gaussian data: a step of ~2.1 sigma / 127 per block gives roughly 45 dB.
  auto q8 = qs::measure_quantization(t, *qs::parse_quant_choice("q8_0"), qs::OpContext::none());
  EXPECT_GT(q8->error.sqnr_db, 40.0);
  EXPECT_LT(q8->error.sqnr_db, 50.0);
  const auto narrow = f32_tensor(std::vector<float>(8 * 172, 0.5f), 8, 172);
  auto k = qs::measure_quantization(narrow, *qs::parse_quant_choice("q4_k"), qs::OpContext::none());
  ASSERT_FALSE(k.ok());
  EXPECT_EQ(k.error().code, qs::ErrorCode::Unsupported);
  EXPECT_NE(k.error().message.find("row length 172 is not a multiple of the Q4_K block (256)"), std::string::npos)
      << k.error().message;
}

}  // namespace
