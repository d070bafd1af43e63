// The reference quantizers for the legacy ggml blocks: byte-exact with ggml's
// own output (fixtures) and with the test vectors of docs/formats.md 7.1/7.2.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "quant/ggml_quantize.h"
#include "quant/iq4_nl_quantize.h"
#include "test_files.h"

namespace {

std::string quantize(qs::DType t, const std::vector<float>& x) {
  std::string out(*qs::dtype_bytes(t, x.size()), '\0');
  auto r = qs::quantize_ggml_blocks(t, x.data(), x.size() / qs::dtype_block_elems(t), reinterpret_cast<std::byte*>(out.data()));
  EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message);
  return out;
}

std::string hex(const std::string& b) {
  static const char* d = "0123456789abcdef";
  std::string s;
  for (unsigned char c : b) {
    if (!s.empty()) s += ' ';
    s += d[c >> 4];
    s += d[c & 15];
  }
  return s;
}

TEST(GgmlQuantize, ByteExactWithGgmlOnTheFixtures) {
  const std::string dir = std::string(QS_TEST_DATA) + "/ggml_blocks/";
  const std::string raw = qs::test::read_bytes(dir + "input.f32");
  std::vector<float> x(raw.size() / 4);
  std::memcpy(x.data(), raw.data(), raw.size());
  const std::pair<const char*, qs::DType> types[] = {
      {"q8_0", qs::DType::Q8_0}, {"q4_0", qs::DType::Q4_0}, {"q4_1", qs::DType::Q4_1},
      {"q5_0", qs::DType::Q5_0}, {"q5_1", qs::DType::Q5_1}, {"q4_K", qs::DType::Q4_K},
      {"q5_K", qs::DType::Q5_K}, {"q6_K", qs::DType::Q6_K}, {"iq4_nl", qs::DType::IQ4_NL}};
  for (const bool portable : {false, true}) {  // AVX2 builds where the CPU has them, and the SSE2 ones
    qs::use_portable_quantizers(portable);
    for (const auto& [name, t] : types)
      EXPECT_EQ(quantize(t, x), qs::test::read_bytes(dir + name + ".blocks")) << name << (portable ? " (portable)" : "");
  }
  qs::use_portable_quantizers(false);
}

TEST(GgmlQuantize, KQuantsByteExactOn64VariedSuperBlocks) {
  // Scales from 1e-3 to 1, tails from Gaussian to heavy, some with an offset.
  const std::string dir = std::string(QS_TEST_DATA) + "/ggml_blocks/";
  const std::string raw = qs::test::read_bytes(dir + "kquant_input.f32");
  std::vector<float> x(raw.size() / 4);
  std::memcpy(x.data(), raw.data(), raw.size());
  ASSERT_EQ(x.size(), 64u * 256u);
  const std::pair<const char*, qs::DType> types[] = {
      {"q4_K", qs::DType::Q4_K}, {"q5_K", qs::DType::Q5_K}, {"q6_K", qs::DType::Q6_K}};
  for (const bool portable : {false, true}) {  // the AVX2 build of the scale search (where the CPU has it), and the SSE2 one
    qs::use_portable_quantizers(portable);
    for (const auto& [name, t] : types) {
      const std::string want = qs::test::read_bytes(dir + "kquant_" + name + ".blocks");
      const std::string got = quantize(t, x);
      ASSERT_EQ(got.size(), want.size());
      const std::size_t bb = qs::dtype_block_bytes(t);
      int differing = 0;
      for (std::size_t b = 0; b < got.size() / bb; ++b) differing += got.compare(b * bb, bb, want, b * bb, bb) != 0;
      EXPECT_EQ(differing, 0) << name << (portable ? " (portable)" : "") << ": super-blocks that differ from ggml's";
    }
  }
  qs::use_portable_quantizers(false);
}

std::vector<float> block(std::initializer_list<float> head) {
  std::vector<float> v(32, 0.0f);
  std::copy(head.begin(), head.end(), v.begin());
  return v;
}

TEST(GgmlQuantize, Q8_0TestVectors) {
  for (const bool portable : {false, true}) {  // the AVX2 build where the CPU has it, and the SSE2 one
    qs::use_portable_quantizers(portable);
    EXPECT_EQ(hex(quantize(qs::DType::Q8_0, block({}))), hex(std::string(34, '\0')));
    EXPECT_EQ(hex(quantize(qs::DType::Q8_0, block({1})).substr(0, 3)), "08 20 7f");
    EXPECT_EQ(hex(quantize(qs::DType::Q8_0, block({-1})).substr(0, 3)), "08 20 81");
    // RHAZ rounding: 2.5 -> 3, -2.5 -> -3, 0.5 -> 1, -0.5 -> -1.
    EXPECT_EQ(hex(quantize(qs::DType::Q8_0, block({127, 2.5f, -2.5f, 3.5f, 0.5f, -0.5f})).substr(0, 8)),
              "00 3c 7f 03 fd 04 01 ff");
    std::vector<float> ramp(32);
    for (int i = 0; i < 32; ++i) ramp[static_cast<std::size_t>(i)] = static_cast<float>(i - 16);
    EXPECT_EQ(hex(quantize(qs::DType::Q8_0, ramp)),
              "08 30 81 89 91 99 a1 a9 b1 b9 c0 c8 d0 d8 e0 e8 f0 f8 00 08 10 18 20 28 30 38 40 47 4f 57 5f 67 6f 77");
  }
  qs::use_portable_quantizers(false);
}

TEST(GgmlQuantize, Q4_0TestVectors) {
  for (const bool portable : {false, true}) {  // the AVX2 build where the CPU has it, and the SSE2 one
    qs::use_portable_quantizers(portable);
    std::string zeros = "00 80";  // d = -0.0 (max/-8 with max = +0), every code 8
    for (int i = 0; i < 16; ++i) zeros += " 88";
    EXPECT_EQ(hex(quantize(qs::DType::Q4_0, block({}))), zeros);
    EXPECT_EQ(hex(quantize(qs::DType::Q4_0, block({-0.0f, -0.0f}))), zeros);  // -0 is no larger magnitude: d stays -0.0
    EXPECT_EQ(hex(quantize(qs::DType::Q4_0, block({1})).substr(0, 4)), "00 b0 80 88");
    EXPECT_EQ(hex(quantize(qs::DType::Q4_0, block({-1})).substr(0, 3)), "00 30 80");
    EXPECT_EQ(hex(quantize(qs::DType::Q4_0, block({1, -1})).substr(0, 4)), "00 b0 80 8f");  // first max wins; clamp to 15
    EXPECT_EQ(hex(quantize(qs::DType::Q4_0, block({-1, 1})).substr(0, 4)), "00 30 80 8f");
    std::vector<float> ramp(32);
    for (int i = 0; i < 32; ++i) ramp[static_cast<std::size_t>(i)] = static_cast<float>(i - 16);
    EXPECT_EQ(hex(quantize(qs::DType::Q4_0, ramp)), "00 40 80 91 91 a2 a2 b3 b3 c4 c4 d5 d5 e6 e6 f7 f7 f8");
    // The FMA-sensitive case: without contraction x1*id rounds to -5.5 and gets code 3.
    float a, b;
    const std::uint32_t ab = 0x3fbc49ba, bb = 0x3f8172b0;
    std::memcpy(&a, &ab, 4);
    std::memcpy(&b, &bb, 4);
    EXPECT_EQ(hex(quantize(qs::DType::Q4_0, block({a, b})).substr(0, 4)), "e2 b1 80 83");
  }
  qs::use_portable_quantizers(false);
}

TEST(GgmlQuantize, Q4_KTestVectors) {
  // docs/formats.md 7.3.
  auto q4k = [](const std::vector<float>& x) { return hex(quantize(qs::DType::Q4_K, x)); };
  EXPECT_EQ(q4k(std::vector<float>(256, 0.0f)), hex(std::string(144, '\0')));
  EXPECT_EQ(q4k(std::vector<float>(256, -0.5f)).substr(0, 47), "00 00 10 20 00 00 00 00 ff ff ff ff f0 f0 f0 f0");
  EXPECT_EQ(q4k(std::vector<float>(256, 0.75f)).substr(0, 47), "80 12 00 00 ff ff ff ff 00 00 00 00 0f 0f 0f 0f");
  std::vector<float> one(256, 0.0f);
  one[0] = 1.0f;
  EXPECT_EQ(q4k(one).substr(0, 50), "56 14 00 00 3f 00 00 00 00 00 00 00 00 00 00 00 0f");
  std::vector<float> ramp(256);
  for (int i = 0; i < 256; ++i) ramp[static_cast<std::size_t>(i)] = static_cast<float>(i - 128) / 64.0f;
  EXPECT_EQ(q4k(ramp).substr(0, 95),
            "32 18 0c 28 4f 4f cf cf 3f 2f 1f 10 00 0f 00 0f 00 00 11 11 22 22 33 33 44 44 55 55 66 66 77 77");
}

TEST(GgmlQuantize, NonFiniteInputIsRefusedWithItsIndex) {
  auto x = block({1, 2});
  x[7] = NAN;
  std::string out(34, '\0');
  auto r = qs::quantize_ggml_blocks(qs::DType::Q8_0, x.data(), 1, reinterpret_cast<std::byte*>(out.data()));
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("value 7 is not finite"), std::string::npos) << r.error().message;
  auto k = qs::quantize_ggml_blocks(qs::DType::IQ4_NL, x.data(), 1, reinterpret_cast<std::byte*>(out.data()));
  ASSERT_FALSE(k.ok());
  EXPECT_NE(k.error().message.find("value 7 is not finite"), std::string::npos) << k.error().message;
  auto u = qs::quantize_ggml_blocks(qs::DType::IQ2_XXS, x.data(), 1, reinterpret_cast<std::byte*>(out.data()));
  EXPECT_FALSE(u.ok());  // not implemented: says so
}

// 512 varied blocks (README): ggml's quantize_iq4_nl (the scale search, what
// llama-quantize runs) and quantize_row_iq4_nl_ref (no search) wrote them.
TEST(GgmlQuantize, Iq4NlByteExactOn512VariedBlocks) {
  const std::string dir = std::string(QS_TEST_DATA) + "/ggml_blocks/";
  const std::string raw = qs::test::read_bytes(dir + "iq4_nl_input.f32");
  std::vector<float> x(raw.size() / 4);
  std::memcpy(x.data(), raw.data(), raw.size());
  ASSERT_EQ(x.size(), 512u * 32u);
  const std::string search = qs::test::read_bytes(dir + "iq4_nl_search.blocks");
  const std::string ref = qs::test::read_bytes(dir + "iq4_nl_ref.blocks");
  ASSERT_EQ(search.size(), 512u * 18u);
  ASSERT_EQ(ref.size(), 512u * 18u);
  EXPECT_EQ(quantize(qs::DType::IQ4_NL, x), search);
  int differing = 0, compared = 0;
  for (std::size_t b = 0; b < 512; ++b) {
    float amax = 0;
    for (int j = 0; j < 32; ++j) amax = std::max(amax, std::fabs(x[b * 32 + static_cast<std::size_t>(j)]));
    std::uint8_t out[18];
    qs::iq4nl::quantize_block(x.data() + b * 32, out, -1);
    // Below GROUP_MAX_EPS the reference leaves its codes uninitialised: only d is defined there.
    const std::size_t n = amax < 1e-15f ? 2 : 18;
    differing += ref.compare(b * 18, n, reinterpret_cast<const char*>(out), n) != 0;
    compared += n == 18;
  }
  EXPECT_EQ(differing, 0) << "blocks that differ from quantize_row_iq4_nl_ref";
  EXPECT_EQ(compared, 480);  // 32 blocks are below GROUP_MAX_EPS
}

TEST(GgmlQuantize, Iq4NlZeroAndTinyBlocks) {
  // Below GROUP_MAX_EPS (1e-15) the scale is 0 and every code best_index(0) = 8 (level 1).
  std::string zeros = "00 00";
  for (int i = 0; i < 16; ++i) zeros += " 88";
  EXPECT_EQ(hex(quantize(qs::DType::IQ4_NL, block({}))), zeros);
  EXPECT_EQ(hex(quantize(qs::DType::IQ4_NL, block({1e-16f, -5e-16f}))), zeros);
  // One value 1: the first fit d = 1/113 (level 113 hits it exactly) ties every candidate of the
  // search (level -127 fits as well) and stays: f16(1/113) = 0x2088; code 15 (113), zeros code 8.
  const std::string one = quantize(qs::DType::IQ4_NL, block({1}));
  EXPECT_EQ(hex(one.substr(0, 3)), "88 20 8f");
}

}  // namespace

#include "io/open_model.h"
#include "model/convert.h"

namespace {

// llama-quantize (C, x86-64) wrote the first three files from the f32 GGUF, llama.cpp's
// numpy quantizer the last two: our RTN on the same tensors must reproduce their bytes.
// (The numpy Q4_0 emulates FMA; on this model no block is affected.)
TEST(GgmlQuantize, ByteIdenticalToLlamaQuantizeOnStories260K) {
  QS_REQUIRE_SHARED();
  const std::string dir = shared + "/models/stories260K/gguf/";
  auto f32 = qs::open_model(dir + "stories260K-f32.gguf");
  ASSERT_TRUE(f32.ok());
  int compared = 0;
  for (const char* file : {"stories260K-Q6_K.gguf", "stories260K-Q4_K_M.gguf", "stories260K-Q5_K_M.gguf",
                           "stories260K-Q8_0-ffndownF16.gguf", "stories260K-Q4_0-ffndownF16.gguf"}) {
    auto q = qs::open_model(dir + file);
    ASSERT_TRUE(q.ok());
    for (const auto& t : q->tensors) {
      if (!qs::ggml_quantize_supported(t.dtype)) continue;
      const auto& src = f32->tensors[*f32->find_tensor(t.name)];
      std::vector<float> x(src.numel());
      ASSERT_TRUE(qs::convert_to_f32(src.dtype, src.bytes().data(), x.size(), x.data()).ok());
      std::vector<std::byte> ours(t.nbytes);
      ASSERT_TRUE(qs::quantize_ggml_blocks(t.dtype, x.data(), x.size() / 32, ours.data()).ok());
      EXPECT_EQ(std::memcmp(ours.data(), t.bytes().data(), t.nbytes), 0) << file << " " << t.name << " " << qs::dtype_name(t.dtype);
      ++compared;
    }
  }
  EXPECT_EQ(compared, 5 * 32);  // q8_0 x 32; q5_0 x 29 + q8_0 x 3; q5_1 x 29 + q8_0 x 3; q8_0 x 32; q4_0 x 32
}

}  // namespace

namespace {

// llama-quantize (b4748) gives the tensors that cannot take Q2_K/Q3_K (rows of
// 64, not 256) IQ4_NL: 21 in the Q3_K_M file, 31 in the Q2_K one. Our
// quantizer on the F32 source must write their bytes.
TEST(GgmlQuantize, Iq4NlByteIdenticalToLlamaQuantizeOnStories260K) {
  QS_REQUIRE_SHARED();
  const std::string dir = shared + "/models/stories260K/gguf/";
  auto f32 = qs::open_model(dir + "stories260K-f32.gguf");
  ASSERT_TRUE(f32.ok());
  int compared = 0;
  for (const char* file : {"stories260K-Q3_K_M.gguf", "stories260K-Q2_K.gguf"}) {
    auto q = qs::open_model(dir + file);
    ASSERT_TRUE(q.ok());
    for (const auto& t : q->tensors) {
      if (t.dtype != qs::DType::IQ4_NL) continue;
      const auto& src = f32->tensors[*f32->find_tensor(t.name)];
      std::vector<float> x(src.numel());
      ASSERT_TRUE(qs::convert_to_f32(src.dtype, src.bytes().data(), x.size(), x.data()).ok());
      std::vector<std::byte> ours(t.nbytes);
      ASSERT_TRUE(qs::quantize_ggml_blocks(t.dtype, x.data(), x.size() / 32, ours.data()).ok());
      EXPECT_EQ(std::memcmp(ours.data(), t.bytes().data(), t.nbytes), 0) << file << " " << t.name;
      ++compared;
    }
  }
  EXPECT_EQ(compared, 21 + 31);
}

}  // namespace
