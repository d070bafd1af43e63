// Quantization choices by name, and their measured cost on one weight.
#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <tuple>

#include <algorithm>
#include <cmath>

#include "quant/ggml_dequant.h"
#include "quant/ggml_quantize.h"
#include "quant/measure.h"
#include "quant/quant_error_histogram.h"

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
  for (const char* bad : {"int", "int9", "int4-g0", "int4-x", "nf4-g32", "fp8-e4m3-tensor", "mxfp8", ""}) {
    auto r = qs::parse_quant_choice(bad);
    EXPECT_FALSE(r.ok()) << bad;
  }
}

TEST(Measure, ParsesTheNamedFormatsAndIq4Nl) {
  const std::pair<const char*, qs::NamedFormat> named[] = {
      {"nf4", qs::NamedFormat::Nf4},           {"nf4-dq", qs::NamedFormat::Nf4Dq},       {"fp8-e4m3", qs::NamedFormat::Fp8E4M3},
      {"fp8-e4m3-ch", qs::NamedFormat::Fp8E4M3Ch}, {"fp8-e5m2", qs::NamedFormat::Fp8E5M2}, {"fp8-e5m2-ch", qs::NamedFormat::Fp8E5M2Ch},
      {"mxfp4", qs::NamedFormat::Mxfp4},       {"nvfp4", qs::NamedFormat::Nvfp4},        {"f16", qs::NamedFormat::F16},
      {"bf16", qs::NamedFormat::BF16}};
  for (const auto& [name, f] : named) {
    auto c = qs::parse_quant_choice(name);
    ASSERT_TRUE(c.ok()) << name;
    EXPECT_EQ(c->kind, qs::QuantChoice::Kind::Named) << name;
    EXPECT_EQ(c->named, f) << name;
    EXPECT_EQ(c->name, name);
  }
  auto iq = qs::parse_quant_choice("iq4_nl");
  ASSERT_TRUE(iq.ok());
  EXPECT_EQ(iq->kind, qs::QuantChoice::Kind::Ggml);
  EXPECT_EQ(iq->ggml_type, qs::DType::IQ4_NL);
  EXPECT_NE(qs::parse_quant_choice("fp4").error().message.find("mxfp4, nvfp4"), std::string::npos);
}

TEST(Measure, BitsPerWeightCountScalesAndZeros) {
  const auto bpw = [](const char* f, std::int64_t rows, std::int64_t cols) { return qs::parse_quant_choice(f)->bits_per_weight(rows, cols); };
  EXPECT_DOUBLE_EQ(bpw("iq4_nl", 8, 256), 4.5);                                   // 18 bytes / 32
  EXPECT_DOUBLE_EQ(bpw("nf4", 8, 256), 4.5);                                      // F32 absmax / 64
  EXPECT_DOUBLE_EQ(bpw("nf4-dq", 256, 256), 4.0 + (8.0 * 1024 + 32 * 4 + 32) / 65536);  // 4.1274
  EXPECT_DOUBLE_EQ(bpw("fp8-e4m3", 8, 256), 8.0 + 32.0 / 2048);                   // one F32 per tensor
  EXPECT_DOUBLE_EQ(bpw("fp8-e5m2-ch", 8, 256), 8.125);                            // one F32 per row of 256
  EXPECT_DOUBLE_EQ(bpw("mxfp4", 8, 256), 4.25);                                   // E8M0 / 32
  EXPECT_DOUBLE_EQ(bpw("nvfp4", 8, 256), 4.5 + 32.0 / 2048);                      // E4M3 / 16 + F32 per tensor
  EXPECT_DOUBLE_EQ(bpw("bf16", 8, 256), 16.0);
  EXPECT_DOUBLE_EQ(bpw("q8_0", 8, 256), 8.5);
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

TEST(Measure, NamedFormatsOnASmallTensor) {
  std::mt19937 rng(4);
  std::normal_distribution<float> nd(0.0f, 0.02f);
  std::vector<float> w(64 * 512);
  for (auto& v : w) v = nd(rng);
  const auto t = f32_tensor(w, 64, 512);
  // SQNR falls with the bits, and each lies where its step predicts on Gaussian weights.
  const std::tuple<const char*, double, double> expect[] = {
      {"f16", 70, 80}, {"bf16", 50, 60}, {"fp8-e4m3", 28, 33}, {"fp8-e5m2", 22, 27}, {"iq4_nl", 19, 23},
      {"nvfp4", 18, 22}, {"nf4", 18, 22}, {"nf4-dq", 18, 22}, {"mxfp4", 15, 19.5}};
  for (const auto& [f, lo, hi] : expect) {
    auto m = qs::measure_quantization(t, *qs::parse_quant_choice(f), qs::OpContext::none());
    ASSERT_TRUE(m.ok()) << f << ": " << m.error().message;
    EXPECT_GT(m->error.sqnr_db, lo) << f;
    EXPECT_LT(m->error.sqnr_db, hi) << f;
    EXPECT_DOUBLE_EQ(m->bits_per_weight, qs::parse_quant_choice(f)->bits_per_weight(64, 512)) << f;
  }
  const auto narrow = f32_tensor(std::vector<float>(8 * 48, 0.5f), 8, 48);
  auto n = qs::measure_quantization(narrow, *qs::parse_quant_choice("nf4"), qs::OpContext::none());
  ASSERT_FALSE(n.ok());
  EXPECT_EQ(n.error().code, qs::ErrorCode::Unsupported);
  // The message names where the tensor's bytes are (here, the test's buffer "test").
  EXPECT_EQ(n.error().message, "test: weight: row length 48 is not a multiple of the NF4 block (64)");
  EXPECT_TRUE(qs::measure_quantization(narrow, *qs::parse_quant_choice("nvfp4"), qs::OpContext::none()).ok());
  EXPECT_FALSE(qs::measure_quantization(narrow, *qs::parse_quant_choice("mxfp4"), qs::OpContext::none()).ok());
  std::vector<float> bad(8 * 64, 0.1f);
  bad[100] = NAN;
  auto b = qs::measure_quantization(f32_tensor(bad, 8, 64), *qs::parse_quant_choice("fp8-e4m3"), qs::OpContext::none());
  ASSERT_FALSE(b.ok());
  EXPECT_EQ(b.error().code, qs::ErrorCode::InvalidArgument);
  EXPECT_NE(b.error().message.find("weight 100 is not finite (row 1, column 36)"), std::string::npos) << b.error().message;
}

}  // namespace

namespace {

std::vector<float> normal_weights(std::size_t n, unsigned seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 0.02f);
  std::vector<float> v(n);
  for (auto& x : v) x = normal(rng);
  return v;
}

}  // namespace

// The ggml path quantizes in slices on the thread pool; the result must be that
// of one call over all blocks (blocks are independent), for every type.
TEST(Measure, SlicedGgmlQuantizationEqualsOneCall) {
  const std::int64_t rows = 48, cols = 8192;  // 12288 Q4_0 blocks: several slices of 2048
  const auto v = normal_weights(static_cast<std::size_t>(rows * cols), 11);
  const auto t = f32_tensor(v, rows, cols);
  for (const char* name : {"q4_0", "q8_0", "q4_k", "q6_k", "iq4_nl"}) {
    auto c = qs::parse_quant_choice(name);
    ASSERT_TRUE(c.ok());
    std::vector<float> w, deq;
    qs::OpContext ctx;
    ASSERT_TRUE(qs::quantize_dequantize(t, *c, w, deq, ctx).ok()) << name;
    ASSERT_EQ(w, v);
    const std::size_t blocks = v.size() / qs::dtype_block_elems(c->ggml_type);
    std::vector<std::byte> packed(blocks * qs::dtype_block_bytes(c->ggml_type));
    ASSERT_TRUE(qs::quantize_ggml_blocks(c->ggml_type, v.data(), blocks, packed.data()).ok());
    std::vector<float> expect(v.size());
    ASSERT_TRUE(qs::dequantize_ggml_blocks(c->ggml_type, packed.data(), blocks, expect.data()));
    EXPECT_EQ(std::memcmp(deq.data(), expect.data(), expect.size() * sizeof(float)), 0) << name;
  }
}

// Before/after/error histograms against counts made here from an independent
// round trip (rtn_int + dequantize_int_into).
TEST(Measure, ErrorHistogramsCountTheRoundTrip) {
  const std::int64_t rows = 64, cols = 256;
  auto v = normal_weights(static_cast<std::size_t>(rows * cols), 5);
  v[3 * cols + 17] = 0.4f;  // an outlier widens the range and its group's step
  const auto t = f32_tensor(v, rows, cols);
  auto c = qs::parse_quant_choice("int4-g128");
  ASSERT_TRUE(c.ok());
  qs::OpContext ctx;
  const int bins = 97;
  auto h = qs::quant_error_histograms(t, *c, bins, ctx);
  ASSERT_TRUE(h.ok()) << h.error().message;

  auto q = qs::rtn_int(v.data(), rows, cols, c->grid);
  ASSERT_TRUE(q.ok());
  std::vector<float> deq(v.size());
  qs::dequantize_int_into(*q, deq.data());
  float lo = v[0], hi = v[0], m = 0;
  for (std::size_t i = 0; i < v.size(); ++i) {
    lo = std::min({lo, v[i], deq[i]});
    hi = std::max({hi, v[i], deq[i]});
    m = std::max(m, std::fabs(deq[i] - v[i]));
  }
  EXPECT_DOUBLE_EQ(h->before.lo, lo);
  EXPECT_DOUBLE_EQ(h->before.hi, hi);
  EXPECT_DOUBLE_EQ(h->error.hi, m);
  EXPECT_DOUBLE_EQ(h->error.lo, -static_cast<double>(m));
  std::vector<std::uint64_t> before(bins, 0), after(bins, 0), error(bins, 0);
  const auto index = [&](double x, double a, double b) {
    return std::min<std::size_t>(static_cast<std::size_t>((x - a) / (b - a) * bins), bins - 1);
  };
  for (std::size_t i = 0; i < v.size(); ++i) {
    ++before[index(v[i], lo, hi)];
    ++after[index(deq[i], lo, hi)];
    ++error[index(static_cast<double>(deq[i] - v[i]), -m, m)];
  }
  EXPECT_EQ(h->before.counts, before);
  EXPECT_EQ(h->after.counts, after);
  EXPECT_EQ(h->error.counts, error);
  // The outlier's group has the largest step, so the range ends are its half-steps;
  // the other groups' errors stay well inside: the middle bins hold most counts.
  EXPECT_GT(error[bins / 2] + error[bins / 2 - 1], error[0] + error[bins - 1]);
  auto measured = qs::measure_quantization(t, *c, ctx);
  ASSERT_TRUE(measured.ok());
  EXPECT_DOUBLE_EQ(h->figures.sqnr_db, measured->error.sqnr_db);
  EXPECT_DOUBLE_EQ(h->figures.max_abs, m);
}

TEST(Measure, ErrorHistogramsRejectBadBinsAndUnfitShapes) {
  const auto t = f32_tensor(normal_weights(4 * 100, 1), 4, 100);
  qs::OpContext ctx;
  auto c = qs::parse_quant_choice("q4_0");
  ASSERT_TRUE(c.ok());
  auto unfit = qs::quant_error_histograms(t, *c, 64, ctx);
  ASSERT_FALSE(unfit.ok());
  EXPECT_NE(unfit.error().message.find("not a multiple of the Q4_0 block"), std::string::npos) << unfit.error().message;
  auto bad = qs::quant_error_histograms(t, *c, 0, ctx);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message.find("bins"), std::string::npos);
}
