// The dtype conversion layer against values computed from the format definitions.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <vector>

#include "model/convert.h"
#include "util/half.h"

namespace {

// IEEE binary16 by its definition: (-1)^s * 2^(e-15) * (1 + m/1024), subnormals 2^-14 * m/1024.
double f16_by_definition(std::uint16_t h) {
  const int s = h >> 15, e = (h >> 10) & 0x1F, m = h & 0x3FF;
  double v;
  if (e == 0) v = std::ldexp(m / 1024.0, -14);
  else if (e == 31) v = m ? NAN : INFINITY;
  else v = std::ldexp(1.0 + m / 1024.0, e - 15);
  return s ? -v : v;
}

TEST(HalfConvert, EveryF16PatternDecodesToItsDefinition) {
  for (std::uint32_t p = 0; p < 65536; ++p) {
    const auto h = static_cast<std::uint16_t>(p);
    const double want = f16_by_definition(h);
    const float got = qs::f16_to_f32(h);
    if (std::isnan(want)) {
      EXPECT_TRUE(std::isnan(got)) << p;
    } else {
      ASSERT_EQ(static_cast<double>(got), want) << "pattern " << p;
      ASSERT_EQ(std::signbit(got), (p >> 15) != 0) << p;
    }
  }
}

TEST(HalfConvert, F32ToF16RoundTripsAndRoundsToNearestEven) {
  for (std::uint32_t p = 0; p < 65536; ++p) {
    const auto h = static_cast<std::uint16_t>(p);
    const float f = qs::f16_to_f32(h);
    if (std::isnan(f)) continue;
    ASSERT_EQ(qs::f32_to_f16(f), h) << p;
  }
  // 1 + 2^-11 is halfway between 1 and 1 + 2^-10: ties to even (1.0).
  EXPECT_EQ(qs::f32_to_f16(1.0f + std::ldexp(1.0f, -11)), 0x3C00);
  // 1 + 3*2^-11 is halfway between 1+2^-10 (odd) and 1+2^-9 (even): rounds up.
  EXPECT_EQ(qs::f32_to_f16(1.0f + 3 * std::ldexp(1.0f, -11)), 0x3C02);
  EXPECT_EQ(qs::f32_to_f16(65504.0f), 0x7BFF);  // max finite
  EXPECT_EQ(qs::f32_to_f16(65520.0f), 0x7C00);  // rounds to inf
  EXPECT_EQ(qs::f32_to_f16(std::ldexp(1.0f, -24)), 0x0001);  // smallest subnormal
  EXPECT_EQ(qs::f32_to_f16(std::ldexp(1.0f, -25)), 0x0000);  // tie -> even (0)
  EXPECT_EQ(qs::f32_to_f16(std::ldexp(1.5f, -25)), 0x0001);
  EXPECT_EQ(qs::f32_to_f16(-0.0f), 0x8000);
}

TEST(HalfConvert, BF16IsTheUpperHalfOfF32) {
  EXPECT_EQ(qs::bf16_to_f32(0x3F80), 1.0f);
  EXPECT_EQ(qs::bf16_to_f32(0xC040), -3.0f);
  EXPECT_EQ(qs::f32_to_bf16(1.0f), 0x3F80);
  // 1 + 2^-8 is halfway between bf16 1.0 and 1 + 2^-7: ties to even.
  EXPECT_EQ(qs::f32_to_bf16(1.0f + std::ldexp(1.0f, -8)), 0x3F80);
  EXPECT_EQ(qs::f32_to_bf16(1.0f + 3 * std::ldexp(1.0f, -8)), 0x3F82);
}

TEST(HalfConvert, BulkF16MatchesScalarIncludingUnalignedInput) {
  std::vector<std::uint16_t> src(65536 + 3);
  for (std::size_t i = 0; i < src.size(); ++i) src[i] = static_cast<std::uint16_t>(i * 40503u);
  std::vector<float> dst(src.size());
  qs::f16_to_f32_n(src.data(), src.size(), dst.data());
  for (std::size_t i = 0; i < src.size(); ++i) {
    const float want = qs::f16_to_f32(src[i]);
    if (std::isnan(want)) ASSERT_TRUE(std::isnan(dst[i]));
    else ASSERT_EQ(dst[i], want) << i;
  }
  // Through convert_to_f32 from an odd address (safetensors gives no alignment guarantee).
  std::vector<std::byte> raw(2 * 1000 + 1);
  std::memcpy(raw.data() + 1, src.data(), 2000);
  std::vector<float> out(1000);
  ASSERT_TRUE(qs::convert_to_f32(qs::DType::F16, raw.data() + 1, 1000, out.data()).ok());
  for (std::size_t i = 0; i < 1000; ++i)
    if (!std::isnan(out[i])) {
      ASSERT_EQ(out[i], qs::f16_to_f32(src[i]));
    }
}

TEST(HalfConvert, Fp8DecodesKnownValues) {
  EXPECT_EQ(qs::fp8_e4m3_to_f32(0x38), 1.0f);        // exp 7, mant 0
  EXPECT_EQ(qs::fp8_e4m3_to_f32(0x7E), 448.0f);      // largest finite
  EXPECT_EQ(qs::fp8_e4m3_to_f32(0x01), std::ldexp(1.0f, -9));  // smallest subnormal
  EXPECT_EQ(qs::fp8_e4m3_to_f32(0xC0), -2.0f);
  EXPECT_TRUE(std::isnan(qs::fp8_e4m3_to_f32(0x7F)));
  EXPECT_EQ(qs::fp8_e5m2_to_f32(0x3C), 1.0f);
  EXPECT_EQ(qs::fp8_e5m2_to_f32(0x7B), 57344.0f);
  EXPECT_TRUE(std::isinf(qs::fp8_e5m2_to_f32(0x7C)));
}

TEST(HalfConvert, UndecodableTypesSayWhich) {
  float out;
  std::byte b{};
  auto r = qs::convert_to_f32(qs::DType::F4, &b, 1, &out);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("F4"), std::string::npos);
}

}  // namespace
