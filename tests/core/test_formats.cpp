// NF4, FP8 (E4M3/E5M2), MXFP4, NVFP4 and F16/BF16: codes of hand-computed
// values and blocks, the encoders against a brute-force nearest search, error
// bounds on random data, all-zero blocks, NaN/Inf refused, exact bits/weight.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "model/convert.h"
#include "quant/format_table.h"
#include "quant/fp4_formats.h"
#include "quant/fp8_quant.h"
#include "quant/named_format.h"
#include "quant/nf4.h"

namespace {

std::vector<float> gaussian(std::size_t n, float sigma, unsigned seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> nd(0.0f, sigma);
  std::vector<float> v(n);
  for (auto& x : v) x = nd(rng);
  return v;
}

// Brute force: the finite code nearest to x, ties to the even code (RNE), saturating.
template <class Decode>
int nearest_code(float x, int codes, Decode decode) {
  int best = -1;
  double bd = 0;
  for (int c = 0; c < codes; ++c) {
    const float v = decode(c);
    if (!std::isfinite(v)) continue;
    if (std::signbit(v) != std::signbit(x)) continue;  // zero keeps the sign: -0 for tiny negatives
    const double d = std::fabs(static_cast<double>(x) - v);
    if (best < 0 || d < bd || (d == bd && (c & 1) == 0 && (best & 1) == 1)) {
      best = c;
      bd = d;
    }
  }
  return best;
}

TEST(Fp8Encode, KnownValues) {
  EXPECT_EQ(qs::f32_to_fp8_e4m3(1.0f), 0x38);
  EXPECT_EQ(qs::f32_to_fp8_e4m3(448.0f), 0x7E);
  EXPECT_EQ(qs::f32_to_fp8_e4m3(-448.0f), 0xFE);
  EXPECT_EQ(qs::f32_to_fp8_e4m3(464.0f), 0x7E);   // midway to 480 (the NaN code): saturates
  EXPECT_EQ(qs::f32_to_fp8_e4m3(1e9f), 0x7E);
  EXPECT_EQ(qs::f32_to_fp8_e4m3(0.001953125f), 0x01);                // 2^-9, smallest subnormal
  EXPECT_EQ(qs::f32_to_fp8_e4m3(std::ldexp(1.0f, -10)), 0x00);      // tie 0 / 2^-9: even
  EXPECT_EQ(qs::f32_to_fp8_e4m3(std::ldexp(1.5f, -9)), 0x02);       // tie 1 / 2 steps: even
  EXPECT_EQ(qs::f32_to_fp8_e4m3(std::ldexp(7.5f, -9)), 0x08);       // largest subnormal + half: to 2^-6
  EXPECT_EQ(qs::f32_to_fp8_e4m3(std::ldexp(1.0f, -6)), 0x08);       // smallest normal
  EXPECT_EQ(qs::f32_to_fp8_e4m3(1.0625f), 0x38);                    // tie 1.0 / 1.125: even mantissa
  EXPECT_EQ(qs::f32_to_fp8_e4m3(1.1875f), 0x3A);                    // tie 1.125 / 1.25: even mantissa
  EXPECT_EQ(qs::f32_to_fp8_e4m3(-0.0f), 0x80);
  EXPECT_EQ(qs::f32_to_fp8_e5m2(1.0f), 0x3C);
  EXPECT_EQ(qs::f32_to_fp8_e5m2(57344.0f), 0x7B);
  EXPECT_EQ(qs::f32_to_fp8_e5m2(61440.0f), 0x7B);  // midway to Inf: saturates
  EXPECT_EQ(qs::f32_to_fp8_e5m2(-1e30f), 0xFB);
  EXPECT_EQ(qs::f32_to_fp8_e5m2(std::ldexp(1.0f, -16)), 0x01);
  EXPECT_EQ(qs::fp8_max_finite(qs::Fp8Type::E4M3), 448.0f);
  EXPECT_EQ(qs::fp8_max_finite(qs::Fp8Type::E5M2), 57344.0f);
}

TEST(Fp8Encode, EveryFiniteCodeRoundTripsAndRandomValuesGoToTheNearest) {
  for (int c = 0; c < 256; ++c) {
    const auto u = static_cast<std::uint8_t>(c);
    if (std::isfinite(qs::fp8_e4m3_to_f32(u))) {
      EXPECT_EQ(qs::f32_to_fp8_e4m3(qs::fp8_e4m3_to_f32(u)), u) << c;
    }
    if (std::isfinite(qs::fp8_e5m2_to_f32(u))) {
      EXPECT_EQ(qs::f32_to_fp8_e5m2(qs::fp8_e5m2_to_f32(u)), u) << c;
    }
  }
  std::mt19937 rng(3);
  std::uniform_real_distribution<float> e(-20.0f, 18.0f);
  for (int i = 0; i < 4000; ++i) {
    const float x = (i & 1 ? -1.0f : 1.0f) * std::exp2(e(rng));
    auto d4 = [](int c) { return qs::fp8_e4m3_to_f32(static_cast<std::uint8_t>(c)); };
    auto d5 = [](int c) { return qs::fp8_e5m2_to_f32(static_cast<std::uint8_t>(c)); };
    ASSERT_EQ(qs::f32_to_fp8_e4m3(x), nearest_code(x, 256, d4)) << x;
    ASSERT_EQ(qs::f32_to_fp8_e5m2(x), nearest_code(x, 256, d5)) << x;
  }
}

TEST(Fp8Quantize, ScalesErrorBoundsAndBits) {
  const std::int64_t rows = 16, cols = 256;
  auto w = gaussian(static_cast<std::size_t>(rows * cols), 0.02f, 5);
  w[37] = 0.5f;  // an outlier sets the tensor scale
  for (bool ch : {false, true})
    for (auto t : {qs::Fp8Type::E4M3, qs::Fp8Type::E5M2}) {
      auto q = qs::quantize_fp8(w.data(), rows, cols, {t, ch});
      ASSERT_TRUE(q.ok());
      ASSERT_EQ(q->scales.size(), ch ? 16u : 1u);
      if (!ch) {
        EXPECT_FLOAT_EQ(q->scales[0], 0.5f / qs::fp8_max_finite(t));
      }
      std::vector<float> d(w.size());
      qs::dequantize_fp8_into(*q, d.data());
      const float rel = t == qs::Fp8Type::E4M3 ? 1.0f / 16 : 1.0f / 8;        // half a mantissa step
      const float sub = t == qs::Fp8Type::E4M3 ? std::ldexp(1.0f, -10) : std::ldexp(1.0f, -17);  // half the subnormal step
      for (std::size_t i = 0; i < w.size(); ++i) {
        const float s = q->scales[ch ? i / cols : 0];
        ASSERT_LE(std::fabs(w[i] - d[i]), (std::fabs(w[i]) * rel + sub * s) * 1.0001f) << i;
      }
      EXPECT_FLOAT_EQ(d[37], 0.5f) << "the absmax maps to max_finite and back";
      EXPECT_DOUBLE_EQ(q->bits_per_weight(), 8.0 + 32.0 * (ch ? 16.0 : 1.0) / (16.0 * 256.0));
    }
  // All zero: scale 1, codes 0, exact.
  std::vector<float> z(64, 0.0f), dz(64, 1.0f);
  auto qz = qs::quantize_fp8(z.data(), 2, 32, {qs::Fp8Type::E4M3, true});
  ASSERT_TRUE(qz.ok());
  qs::dequantize_fp8_into(*qz, dz.data());
  for (float v : dz) EXPECT_EQ(v, 0.0f);
}

TEST(Fp4, E2M1CodesTiesAndSaturation) {
  const float vals[] = {0, 0.5f, 1, 1.5f, 2, 3, 4, 6};
  for (int c = 0; c < 8; ++c) {
    EXPECT_EQ(qs::e2m1_to_f32(static_cast<std::uint8_t>(c)), vals[c]);
    EXPECT_EQ(qs::e2m1_to_f32(static_cast<std::uint8_t>(c | 8)), -vals[c]);
    EXPECT_EQ(qs::f32_to_e2m1(vals[c]), c);
  }
  // Ties go to the even code: 0.25->0, 0.75->1.0, 1.25->1.0, 1.75->2, 2.5->2, 3.5->4, 5->4.
  const std::pair<float, int> ties[] = {{0.25f, 0}, {0.75f, 2}, {1.25f, 2}, {1.75f, 4}, {2.5f, 4}, {3.5f, 6}, {5.0f, 6}};
  for (auto [x, c] : ties) EXPECT_EQ(qs::f32_to_e2m1(x), c) << x;
  EXPECT_EQ(qs::f32_to_e2m1(7.0f), 7);
  EXPECT_EQ(qs::f32_to_e2m1(1e20f), 7);
  EXPECT_EQ(qs::f32_to_e2m1(-3.0f), 0xD);
  std::mt19937 rng(9);
  std::uniform_real_distribution<float> u(-8.0f, 8.0f);
  auto dec = [](int c) { return qs::e2m1_to_f32(static_cast<std::uint8_t>(c)); };
  for (int i = 0; i < 4000; ++i) {
    const float x = u(rng);
    ASSERT_EQ(qs::f32_to_e2m1(x), nearest_code(x, 16, dec)) << x;
  }
}

TEST(Mxfp4, HandComputedBlocks) {
  std::vector<float> w(96, 0.0f);
  // Block 0: amax 7.9 -> floor(log2) = 2 -> X = 2^0 (E8M0 127); 7.9 saturates to 6.
  w[0] = 1.0f, w[1] = -0.5f, w[2] = 3.0f, w[3] = 0.25f, w[4] = 7.9f;
  // Block 1: amax 0.1 -> floor(log2) = -4 -> X = 2^-6 (121); 0.1/X = 6.4 -> 6, 0.03/X = 1.92 -> 2.
  w[32] = 0.1f, w[33] = 0.03f;
  // Block 2: all zero.
  auto q = qs::quantize_mxfp4(w.data(), 1, 96);
  ASSERT_TRUE(q.ok());
  ASSERT_EQ(q->scales.size(), 3u);
  EXPECT_EQ(q->scales[0], 127);
  EXPECT_EQ(q->scales[1], 121);
  EXPECT_EQ(q->scales[2], 0);
  EXPECT_EQ(q->packed[0], 0x92);  // codes 2 (1.0) low, 9 (-0.5) high
  EXPECT_EQ(q->packed[1], 0x05);  // 3.0, 0.25 -> 0 (tie to even)
  EXPECT_EQ(q->packed[2], 0x07);  // 7.9 -> 6
  EXPECT_EQ(q->packed[16], 0x47);
  std::vector<float> d(96);
  qs::dequantize_mxfp4_into(*q, d.data());
  EXPECT_EQ(d[0], 1.0f);
  EXPECT_EQ(d[1], -0.5f);
  EXPECT_EQ(d[3], 0.0f);
  EXPECT_EQ(d[4], 6.0f);
  EXPECT_EQ(d[32], 6.0f / 64);
  EXPECT_EQ(d[33], 2.0f / 64);
  for (int i = 64; i < 96; ++i) EXPECT_EQ(d[static_cast<std::size_t>(i)], 0.0f);
  EXPECT_EQ(q->bits_per_weight(), 4.25);
}

TEST(Mxfp4, ErrorWithinTheSpecsBoundOnRandomData) {
  const std::int64_t rows = 8, cols = 512;
  auto w = gaussian(static_cast<std::size_t>(rows * cols), 0.05f, 11);
  auto q = qs::quantize_mxfp4(w.data(), rows, cols);
  ASSERT_TRUE(q.ok());
  std::vector<float> d(w.size());
  qs::dequantize_mxfp4_into(*q, d.data());
  for (std::size_t i = 0; i < w.size(); ++i) {
    const float X = std::ldexp(1.0f, q->scales[i / 32] - 127);
    // Half the widest step (2 between 4 and 6) below 6X; beyond it the clamp to 6X.
    ASSERT_LE(std::fabs(w[i] - d[i]), std::max(X, std::fabs(w[i]) - 6 * X)) << i;
  }
}

TEST(Nvfp4, HandComputedBlocksAndTensorScale) {
  std::vector<float> w(32, 0.0f);
  // amax 2688 = 6 * 448: g = 1. Block 0 scale 2688/6 = 448 (E4M3 0x7E).
  w[0] = 2688.0f, w[1] = 448.0f, w[2] = -672.0f;
  // Block 1: amax 3 -> scale 0.5 (E4M3 0x30); 1.0/0.5 = 2 (code 4), 0.3/0.5 = 0.6 -> 0.5 (code 1).
  w[16] = 3.0f, w[17] = 1.0f, w[18] = 0.3f;
  auto q = qs::quantize_nvfp4(w.data(), 1, 32);
  ASSERT_TRUE(q.ok());
  EXPECT_EQ(q->tensor_scale, 1.0f);
  ASSERT_EQ(q->scales.size(), 2u);
  EXPECT_EQ(q->scales[0], 0x7E);
  EXPECT_EQ(q->scales[1], 0x30);
  EXPECT_EQ(q->packed[0], 0x27);  // 6 (code 7) low, 1.0 (code 2) high
  EXPECT_EQ(q->packed[1], 0x0B);  // -1.5
  EXPECT_EQ(q->packed[8], 0x47);
  EXPECT_EQ(q->packed[9], 0x01);
  std::vector<float> d(32);
  qs::dequantize_nvfp4_into(*q, d.data());
  EXPECT_EQ(d[0], 2688.0f);
  EXPECT_EQ(d[2], -672.0f);
  EXPECT_EQ(d[17], 1.0f);
  EXPECT_EQ(d[18], 0.25f);
  EXPECT_DOUBLE_EQ(q->bits_per_weight(), 4.5 + 32.0 / 32);
  EXPECT_DOUBLE_EQ(qs::nvfp4_bits_per_weight(4096, 4096), 4.5 + 32.0 / (4096.0 * 4096.0));
}

TEST(Nvfp4, ErrorBoundTinyAndZeroBlocks) {
  const std::int64_t rows = 8, cols = 256;
  auto w = gaussian(static_cast<std::size_t>(rows * cols), 0.05f, 12);
  w[5] = 40.0f;                                                  // the tensor amax
  for (int j = 16; j < 32; ++j) w[static_cast<std::size_t>(j)] = 1e-6f;  // block scale below E4M3's range
  for (int j = 32; j < 48; ++j) w[static_cast<std::size_t>(j)] = 0.0f;
  auto q = qs::quantize_nvfp4(w.data(), rows, cols);
  ASSERT_TRUE(q.ok());
  EXPECT_FLOAT_EQ(q->tensor_scale, 40.0f / (6 * 448));
  EXPECT_EQ(q->scales[1], 0x01);  // bumped to the smallest subnormal
  EXPECT_EQ(q->scales[2], 0x00);
  std::vector<float> d(w.size());
  qs::dequantize_nvfp4_into(*q, d.data());
  for (int j = 32; j < 48; ++j) EXPECT_EQ(d[static_cast<std::size_t>(j)], 0.0f);
  for (std::size_t i = 0; i < w.size(); ++i) {
    const float S = qs::fp8_e4m3_to_f32(q->scales[i / 16]) * q->tensor_scale;
    ASSERT_LE(std::fabs(w[i] - d[i]), std::max(S, std::fabs(w[i]) - 6 * S) * 1.0001f) << i;
  }
}

TEST(Nf4, TableThresholdsAndHandBuiltBlock) {
  EXPECT_EQ(qs::kNf4Values[0], -1.0f);
  EXPECT_EQ(qs::kNf4Values[7], 0.0f);
  EXPECT_EQ(qs::kNf4Values[15], 1.0f);
  for (int i = 0; i < 16; ++i) EXPECT_EQ(qs::nf4_code(qs::kNf4Values[i]), i);
  // bitsandbytes' tree constant between 0 and 0.0796: exactly on it -> lower code.
  EXPECT_EQ(qs::nf4_code(0.03979014977812767f), 7);
  EXPECT_EQ(qs::nf4_code(std::nextafter(0.03979014977812767f, 1.0f)), 8);
  EXPECT_EQ(qs::nf4_code(0.8614784181118011f), 14);
  EXPECT_EQ(qs::nf4_code(-0.8480964004993439f), 0);
  std::mt19937 rng(2);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  for (int i = 0; i < 4000; ++i) {
    const float x = u(rng);
    int best = 0;
    for (int c = 1; c < 16; ++c)
      if (std::fabs(x - qs::kNf4Values[c]) < std::fabs(x - qs::kNf4Values[best])) best = c;
    ASSERT_EQ(qs::nf4_code(x), best) << x;
  }
  std::vector<float> w(128, 0.0f);
  w[0] = 2.0f, w[1] = -2.0f, w[2] = 0.1f, w[3] = 1.0f, w[4] = -0.6f;  // / 2: 1, -1, 0.05, 0.5, -0.3
  // Second block all zero.
  auto q = qs::quantize_nf4(w.data(), 1, 128, false);
  ASSERT_TRUE(q.ok());
  EXPECT_EQ(q->absmax[0], 2.0f);
  EXPECT_EQ(q->absmax[1], 0.0f);
  EXPECT_EQ(q->packed[0], 0xF0);  // first element in the high nibble
  EXPECT_EQ(q->packed[1], 0x8C);  // 0.05 -> 0.0796 (8), 0.5 -> 0.4407 (12)
  EXPECT_EQ(q->packed[2], 0x47);  // -0.3 -> -0.2844 (4), 0 -> 7
  for (int i = 3; i < 64; ++i) EXPECT_EQ(q->packed[static_cast<std::size_t>(i)], 0x77) << i;
  std::vector<float> d(128);
  qs::dequantize_nf4_into(*q, d.data());
  EXPECT_EQ(d[2], 0.07958029955625534f * 2.0f);
  for (int i = 64; i < 128; ++i) EXPECT_EQ(d[static_cast<std::size_t>(i)], 0.0f);
}

TEST(Nf4, DoubleQuantizationMapBitsAndError) {
  const auto& map = qs::bnb_dynamic_map();
  for (std::size_t i = 1; i < 256; ++i) ASSERT_LT(map[i - 1], map[i]) << i;
  EXPECT_EQ(map[255], 1.0f);
  EXPECT_GT(map[0], -1.0f);
  EXPECT_NE(std::find(map.begin(), map.end(), 0.0f), map.end());
  EXPECT_FLOAT_EQ(map[254], 0.99296875f);  // mean of the top two of linspace(0.1, 1, 65)
  EXPECT_EQ(qs::bnb_dynamic_code(0.0f), std::find(map.begin(), map.end(), 0.0f) - map.begin());
  EXPECT_EQ(qs::bnb_dynamic_code(2.0f), 255);

  const std::int64_t rows = 64, cols = 4096;
  auto w = gaussian(static_cast<std::size_t>(rows * cols), 0.02f, 21);
  auto plain = qs::quantize_nf4(w.data(), rows, cols, false);
  auto dq = qs::quantize_nf4(w.data(), rows, cols, true);
  ASSERT_TRUE(plain.ok() && dq.ok());
  EXPECT_DOUBLE_EQ(plain->bits_per_weight(), 4.5);
  // 4096 scales as bytes, 16 second-level F32 absmax, one F32 offset.
  EXPECT_DOUBLE_EQ(dq->bits_per_weight(), 4.0 + (8.0 * 4096 + 32.0 * 16 + 32.0) / (64.0 * 4096));
  EXPECT_NEAR(dq->bits_per_weight(), 4.127, 0.001);
  EXPECT_EQ(dq->absmax_codes.size(), 4096u);
  EXPECT_EQ(dq->absmax2.size(), 16u);
  EXPECT_EQ(dq->packed, plain->packed);  // the codes use the exact absmax, as bitsandbytes
  double se_plain = 0, se_dq = 0, ref = 0;
  std::vector<float> a(w.size()), b(w.size());
  qs::dequantize_nf4_into(*plain, a.data());
  qs::dequantize_nf4_into(*dq, b.data());
  for (std::size_t i = 0; i < w.size(); ++i) {
    const float amax = plain->absmax[i / 64];
    // Half the widest gap between levels (-1 to -0.696).
    ASSERT_LE(std::fabs(w[i] - a[i]), amax * (1.0f - 0.6961928009986877f) / 2 * 1.0001f) << i;
    se_plain += (w[i] - a[i]) * (w[i] - a[i]);
    se_dq += (w[i] - b[i]) * (w[i] - b[i]);
    ref += w[i] * w[i];
  }
  const double sqnr_plain = 10 * std::log10(ref / se_plain), sqnr_dq = 10 * std::log10(ref / se_dq);
  EXPECT_GT(sqnr_plain, 18.0);
  EXPECT_NEAR(sqnr_dq, sqnr_plain, 0.1) << "double quantization costs almost nothing";
  for (std::size_t k = 0; k < dq->absmax.size(); ++k)
    ASSERT_NEAR(dq->absmax[k], plain->absmax[k], 0.01 * plain->absmax[k]) << k;
}

TEST(NamedFormats, NamesBitsShapesAndNonFiniteInput) {
  using F = qs::NamedFormat;
  for (auto [name, f] : {std::pair{"nf4", F::Nf4}, {"nf4-dq", F::Nf4Dq}, {"fp8-e4m3", F::Fp8E4M3}, {"fp8-e4m3-ch", F::Fp8E4M3Ch},
                         {"fp8-e5m2", F::Fp8E5M2}, {"fp8-e5m2-ch", F::Fp8E5M2Ch}, {"mxfp4", F::Mxfp4}, {"nvfp4", F::Nvfp4},
                         {"f16", F::F16}, {"bf16", F::BF16}}) {
    auto c = qs::parse_quant_choice(name);
    ASSERT_TRUE(c.ok()) << name;
    EXPECT_EQ(c->named, f) << name;  // the format table's row is the quantizer's
    EXPECT_EQ(qs::QuantChoice::named_format(f).name, name);
  }
  EXPECT_FALSE(qs::parse_quant_choice("nf3").ok());
  EXPECT_DOUBLE_EQ(qs::named_format_bits_per_weight(F::Mxfp4, 4, 64), 4.25);
  EXPECT_DOUBLE_EQ(qs::named_format_bits_per_weight(F::F16, 4, 64), 16.0);
  EXPECT_DOUBLE_EQ(qs::named_format_bits_per_weight(F::Fp8E4M3Ch, 4, 64), 8.5);
  auto s = qs::check_named_format_shape(F::Nvfp4, 40);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code, qs::ErrorCode::Unsupported);
  EXPECT_EQ(s.error().message, "row length 40 is not a multiple of the NVFP4 block (16)");
  EXPECT_TRUE(qs::check_named_format_shape(F::Fp8E5M2, 41).ok());

  std::vector<float> w(2 * 64, 0.5f), d(w.size());
  for (float bad : {std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity()}) {
    w[70] = bad;
    for (F f : {F::Nf4, F::Nf4Dq, F::Fp8E4M3, F::Fp8E5M2Ch, F::Mxfp4, F::Nvfp4, F::F16, F::BF16}) {
      auto r = qs::rtn_named_format(f, w.data(), 2, 64, d.data());
      ASSERT_FALSE(r.ok()) << qs::QuantChoice::named_format(f).name;
      EXPECT_EQ(r.error().code, qs::ErrorCode::InvalidArgument);
      EXPECT_NE(r.error().message.find("weight 70 is not finite (row 1, column 6)"), std::string::npos) << r.error().message;
    }
  }
  w[70] = 1e5f;  // finite, but past F16's 65504
  auto o = qs::rtn_named_format(F::F16, w.data(), 2, 64, d.data());
  ASSERT_FALSE(o.ok());
  EXPECT_NE(o.error().message.find("overflows F16"), std::string::npos) << o.error().message;
  ASSERT_TRUE(qs::rtn_named_format(F::BF16, w.data(), 2, 64, d.data()).ok());
  EXPECT_EQ(d[70], 99840.0f);  // 1e5 rounded to 8 significant bits
  EXPECT_EQ(d[0], 0.5f);
}

}  // namespace
