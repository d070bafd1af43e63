// GGUF: the real llama.cpp-written files, ggml's own block decoders as the
// reference, and hand-made broken files.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <map>

#include "alloc_tracker.h"
#include "backend/cpu_backend.h"
#include "gguf_builder.h"
#include "io/gguf.h"
#include "io/open_model.h"
#include "model/convert.h"
#include "test_files.h"

namespace {

using qs::test::GgufBuilder;

std::vector<float> read_f32(const std::string& path) {
  const std::string b = qs::test::read_bytes(path);
  std::vector<float> v(b.size() / 4);
  std::memcpy(v.data(), b.data(), v.size() * 4);
  return v;
}

std::vector<float> decode(const qs::TensorInfo& t) {
  std::vector<float> v(t.numel());
  auto r = qs::convert_to_f32(t.dtype, t.bytes().data(), t.numel(), v.data());
  EXPECT_TRUE(r.ok()) << t.name << ": " << (r.ok() ? "" : r.error().message);
  return v;
}

// --- ggml's own dequantizer as the reference (fixtures in tests/data/ggml_blocks) ---

TEST(GgmlBlocks, DecodersMatchGgmlBitForBit) {
  const std::string dir = std::string(QS_TEST_DATA) + "/ggml_blocks/";
  const std::pair<const char*, qs::DType> types[] = {
      {"q4_0", qs::DType::Q4_0}, {"q4_1", qs::DType::Q4_1}, {"q5_0", qs::DType::Q5_0}, {"q5_1", qs::DType::Q5_1},
      {"q8_0", qs::DType::Q8_0}, {"q2_K", qs::DType::Q2_K}, {"q3_K", qs::DType::Q3_K}, {"q4_K", qs::DType::Q4_K},
      {"q5_K", qs::DType::Q5_K}, {"q6_K", qs::DType::Q6_K}, {"iq4_nl", qs::DType::IQ4_NL}};
  const auto input = read_f32(dir + "input.f32");
  ASSERT_EQ(input.size(), 1024u);
  for (const auto& [name, t] : types) {
    const std::string blocks = qs::test::read_bytes(dir + name + ".blocks");
    const auto want = read_f32(dir + name + ".dequant.f32");
    ASSERT_EQ(blocks.size(), *qs::dtype_bytes(t, 1024)) << name;
    std::vector<float> got(1024);
    ASSERT_TRUE(qs::convert_to_f32(t, reinterpret_cast<const std::byte*>(blocks.data()), 1024, got.data()).ok());
    int mismatches = 0;
    for (std::size_t i = 0; i < 1024; ++i) {
      // ggml-base and this build both run without FMA contraction on x86-64: bit-exact.
      if (std::memcmp(&got[i], &want[i], 4) != 0 && ++mismatches < 5)
        ADD_FAILURE() << name << " element " << i << ": got " << got[i] << ", ggml " << want[i];
    }
    EXPECT_EQ(mismatches, 0) << name;
    // And the decoded values are a quantization of the input, not noise.
    double err = 0, ref = 0;
    for (std::size_t i = 0; i < 1024; ++i) {
      err += (got[i] - input[i]) * (got[i] - input[i]);
      ref += input[i] * input[i];
    }
    EXPECT_LT(err / ref, 0.05) << name;
  }
}

TEST(GgmlBlocks, PartialBlocksAreRefused) {
  std::vector<std::byte> b(18);
  std::vector<float> out(16);
  auto r = qs::convert_to_f32(qs::DType::Q4_0, b.data(), 16, out.data());
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("whole number of Q4_0 blocks"), std::string::npos);
}

// A zero-element tensor (a [0, n] shape is legal in both formats) converts to
// nothing, whatever its type, without touching its (possibly null) pointers —
// UBSan flagged the memcpy(nullptr, nullptr, 0) this used to make.
TEST(GgmlBlocks, ZeroElementsConvertToNothing) {
  for (const qs::DType t : {qs::DType::F32, qs::DType::F16, qs::DType::BF16, qs::DType::Q4_0, qs::DType::Q8_0, qs::DType::Q6_K})
    EXPECT_TRUE(qs::convert_to_f32(t, nullptr, 0, nullptr).ok()) << qs::dtype_name(t);
}

// --- Real files written by llama.cpp ---

std::string gguf_dir(const std::string& shared) { return shared + "/models/stories260K/gguf/"; }

TEST(GgufReal, F32FileOpensWithArchitectureTokenizerAndLayers) {
  QS_REQUIRE_SHARED();
  auto m = qs::open_model(gguf_dir(shared) + "stories260K-f32.gguf");
  ASSERT_TRUE(m.ok()) << m.error().message;
  EXPECT_EQ(m->format, qs::ModelFormat::Gguf);
  EXPECT_EQ(m->arch.model_type, "llama");
  EXPECT_EQ(m->arch.hidden_size, 64);
  EXPECT_EQ(m->arch.intermediate_size, 172);
  EXPECT_EQ(m->arch.num_layers, 5);
  EXPECT_EQ(m->arch.num_heads, 8);
  EXPECT_EQ(m->arch.num_kv_heads, 4);
  EXPECT_EQ(m->arch.head_dim, 8);
  EXPECT_EQ(m->arch.vocab_size, 512);
  EXPECT_EQ(m->arch.max_position, 512);
  EXPECT_FLOAT_EQ(static_cast<float>(m->arch.rms_norm_eps), 1e-5f);
  EXPECT_EQ(m->tensors.size(), 48u);
  EXPECT_EQ(m->layers.size(), 37u);
  EXPECT_EQ(m->block_count(), 5);
  ASSERT_TRUE(m->gguf);
  const qs::GgufValue* tokens = m->gguf->find("tokenizer.ggml.tokens");
  ASSERT_TRUE(tokens && tokens->as_array());
  EXPECT_EQ(tokens->as_array()->count, 512u);
  EXPECT_EQ(tokens->as_array()->strings.size(), 512u);
  const qs::GgufValue* model = m->gguf->find("tokenizer.ggml.model");
  ASSERT_TRUE(model && model->as_string());
  EXPECT_EQ(*model->as_string(), "llama");
  const auto& q = m->tensors[*m->find_tensor("blk.0.attn_q.weight")];
  EXPECT_EQ(q.shape, (std::vector<std::int64_t>{64, 64}));
  const auto& emb = m->tensors[*m->find_tensor("token_embd.weight")];
  EXPECT_EQ(emb.shape, (std::vector<std::int64_t>{512, 64}));  // ne = [64, 512] reversed
  EXPECT_EQ(m->layers.front().role, qs::LayerRole::Embed);
  EXPECT_EQ(m->layers.back().role, qs::LayerRole::LmHead);
}

// HF name of a GGUF llama tensor (docs/formats.md 2.6).
std::string hf_name(const std::string& g) {
  static const std::map<std::string, std::string> block{
      {"attn_norm", "input_layernorm"}, {"attn_q", "self_attn.q_proj"}, {"attn_k", "self_attn.k_proj"},
      {"attn_v", "self_attn.v_proj"}, {"attn_output", "self_attn.o_proj"}, {"ffn_norm", "post_attention_layernorm"},
      {"ffn_gate", "mlp.gate_proj"}, {"ffn_up", "mlp.up_proj"}, {"ffn_down", "mlp.down_proj"}};
  if (g == "token_embd.weight") return "model.embed_tokens.weight";
  if (g == "output_norm.weight") return "model.norm.weight";
  if (g == "output.weight") return "lm_head.weight";
  const auto d1 = g.find('.', 4), d2 = g.rfind('.');
  return "model.layers." + g.substr(4, d1 - 4) + "." + block.at(g.substr(d1 + 1, d2 - d1 - 1)) + ".weight";
}

TEST(GgufReal, F32FileEqualsTheHfCheckpointAfterUndoingTheQKPermutation) {
  QS_REQUIRE_SHARED();
  auto g = qs::open_model(gguf_dir(shared) + "stories260K-f32.gguf");
  auto h = qs::open_model(shared + "/models/stories260K/hf");
  ASSERT_TRUE(g.ok() && h.ok());
  for (const auto& t : g->tensors) {
    const auto hi = h->find_tensor(hf_name(t.name));
    ASSERT_TRUE(hi.has_value()) << t.name;
    const auto& ht = h->tensors[*hi];
    ASSERT_EQ(t.shape, ht.shape) << t.name;
    const auto gv = decode(t), hv = decode(ht);
    const bool q = t.name.find("attn_q") != std::string::npos, k = t.name.find("attn_k") != std::string::npos;
    if (!q && !k) {
      EXPECT_EQ(gv, hv) << t.name;
      continue;
    }
    // gguf_row[h*hd + 2i + s] = hf_row[h*hd + s*hd/2 + i], n = heads (q) or kv heads (k).
    const std::int64_t n = q ? g->arch.num_heads : g->arch.num_kv_heads, rows = t.shape[0], cols = t.shape[1];
    const std::int64_t hd = rows / n;
    EXPECT_NE(gv, hv) << t.name << " should be stored permuted";
    for (std::int64_t head = 0; head < n; ++head)
      for (std::int64_t s = 0; s < 2; ++s)
        for (std::int64_t i = 0; i < hd / 2; ++i)
          for (std::int64_t c = 0; c < cols; ++c)
            ASSERT_EQ(gv[static_cast<std::size_t>((head * hd + 2 * i + s) * cols + c)],
                      hv[static_cast<std::size_t>((head * hd + s * hd / 2 + i) * cols + c)])
                << t.name;
  }
}

// Worst |decoded - f32| over a block, as a fraction of the block's abs-max, that each
// format allows (32-element blocks; F16 per value):
//   F16    half an ulp:                                  2^-11                    = 0.000489
//   Q8_0   half a step amax/127, plus the f16 scale:     (0.5 + 127*2^-11)/127    = 0.00443
//   Q4_0   one step amax/8 (the opposite extreme clamps from 16 to 15)            = 0.125 (+f16)
//   Q5_0   one step amax/16 (same clamp)                                          = 0.0625 (+f16)
//   Q5_1   half a step (max-min)/31 <= amax/31, plus f16 of d and m               = 0.0338
//   IQ4_NL the scale search keeps d in [amax/134, amax/120]; the far end of the
//          grid (113 vs 127) then clamps by at most 1 - 113/134                   = 0.157
double allowed_error(qs::DType t) {
  switch (t) {
    case qs::DType::F32: return 0;
    case qs::DType::F16: return std::ldexp(1.0, -11);
    case qs::DType::Q8_0: return (0.5 + 127 * std::ldexp(1.0, -11)) / 127;
    case qs::DType::Q4_0: return 0.125 * (1 + std::ldexp(1.0, -10));
    case qs::DType::Q5_0: return 0.0625 * (1 + std::ldexp(1.0, -9));
    case qs::DType::Q5_1: return 1.0 / 31 + 3 * std::ldexp(1.0, -11);
    case qs::DType::IQ4_NL: return 1.0 - 113.0 / 134.0;
    default: return -1;
  }
}

TEST(GgufReal, QuantizedFilesDecodeWithinEachFormatsErrorBound) {
  QS_REQUIRE_SHARED();
  auto ref = qs::open_model(gguf_dir(shared) + "stories260K-f32.gguf");
  ASSERT_TRUE(ref.ok());
  // What llama-quantize actually wrote (shared/models/README.md), plus the 11 F32 norms.
  const std::map<std::string, std::map<qs::DType, int>> expected{
      {"stories260K-F16.gguf", {{qs::DType::F16, 37}}},
      {"stories260K-Q6_K.gguf", {{qs::DType::Q8_0, 32}, {qs::DType::F16, 5}}},
      {"stories260K-Q5_K_M.gguf", {{qs::DType::Q5_1, 29}, {qs::DType::Q8_0, 3}, {qs::DType::F16, 5}}},
      {"stories260K-Q4_K_M.gguf", {{qs::DType::Q5_0, 29}, {qs::DType::Q8_0, 3}, {qs::DType::F16, 5}}},
      {"stories260K-Q3_K_M.gguf",
       {{qs::DType::IQ4_NL, 21}, {qs::DType::Q5_0, 8}, {qs::DType::Q5_1, 2}, {qs::DType::Q8_0, 1}, {qs::DType::F16, 5}}},
      {"stories260K-Q2_K.gguf", {{qs::DType::IQ4_NL, 31}, {qs::DType::Q8_0, 1}, {qs::DType::F16, 5}}},
      {"stories260K-Q8_0-ffndownF16.gguf", {{qs::DType::Q8_0, 32}, {qs::DType::F16, 5}}},
      {"stories260K-Q4_0-ffndownF16.gguf", {{qs::DType::Q4_0, 32}, {qs::DType::F16, 5}}},
  };
  for (const auto& [file, types] : expected) {
    auto m = qs::open_model(gguf_dir(shared) + file);
    ASSERT_TRUE(m.ok()) << m.error().message;
    std::map<qs::DType, int> seen;
    for (const auto& t : m->tensors) {
      ++seen[t.dtype];
      const auto& r = ref->tensors[*ref->find_tensor(t.name)];
      ASSERT_EQ(t.shape, r.shape) << file << " " << t.name;
      const double bound = allowed_error(t.dtype);
      ASSERT_GE(bound, 0) << "no bound stated for " << qs::dtype_name(t.dtype);
      const auto got = decode(t), want = decode(r);
      for (std::size_t b = 0; b < want.size(); b += 32) {
        float amax = 0, err = 0;
        for (std::size_t i = b; i < std::min(want.size(), b + 32); ++i) {
          amax = std::max(amax, std::fabs(want[i]));
          err = std::max(err, std::fabs(got[i] - want[i]));
        }
        ASSERT_LE(err, bound * amax) << file << " " << t.name << " block " << b / 32 << " (" << qs::dtype_name(t.dtype) << ")";
      }
    }
    EXPECT_EQ(seen[qs::DType::F32], 11) << file;
    seen.erase(qs::DType::F32);
    EXPECT_EQ(seen, types) << file;
  }
}

TEST(GgufReal, StatisticsOfAQuantizedTensorAreThoseOfItsDecodedValues) {
  QS_REQUIRE_SHARED();
  auto m = qs::open_model(gguf_dir(shared) + "stories260K-Q3_K_M.gguf");
  ASSERT_TRUE(m.ok());
  const auto& t = m->tensors[*m->find_tensor("blk.2.ffn_up.weight")];
  ASSERT_EQ(t.dtype, qs::DType::IQ4_NL);
  const auto v = decode(t);
  auto s = qs::cpu_backend()->tensor_stats(qs::TensorData::of(t), {}, qs::OpContext::none());
  ASSERT_TRUE(s.ok()) << s.error().message;
  EXPECT_EQ(s->count, v.size());
  EXPECT_EQ(s->min, *std::min_element(v.begin(), v.end()));
  EXPECT_EQ(s->max, *std::max_element(v.begin(), v.end()));
  auto ch = qs::cpu_backend()->channel_absmax(qs::TensorData::of(t), qs::OpContext::none());
  ASSERT_TRUE(ch.ok());
  EXPECT_EQ(ch->rows.size(), 172u);
  EXPECT_EQ(ch->cols.size(), 64u);
}

// --- Hand-made broken files ---

struct BadGguf {
  const char* what;
  std::string bytes;
  const char* expect;
};

std::string valid_prefix_with_one_tensor(std::uint64_t offset, std::vector<std::int64_t> ne, std::uint32_t type) {
  return GgufBuilder().counts(1, 1).kv_str("general.architecture", "llama").tensor("t.weight", ne, type, offset).align().bytes();
}

std::vector<BadGguf> bad_ggufs() {
  return {
      {"empty", "", "file is empty"},
      {"bad magic", "GGML" + std::string(20, '\0'), "not a GGUF file"},
      {"version 1", GgufBuilder(1).counts(0, 0).bytes(), "version 1 is obsolete"},
      {"version 4", GgufBuilder(4).counts(0, 0).bytes(), "newer than this reader"},
      {"byte-swapped version", GgufBuilder(0x03000000).counts(0, 0).bytes(), "byte-swapped"},
      {"truncated counts", GgufBuilder().u32(1).bytes(), "truncated while reading the tensor count"},
      {"absurd tensor count", GgufBuilder().counts(1ll << 40, 0).bytes(), "tensor count 1099511627776 is impossible"},
      {"negative kv count", GgufBuilder().counts(0, -1).bytes(), "metadata count -1 is impossible"},
      {"key string past EOF", GgufBuilder().counts(0, 1).u64(1000).raw("abc").zeros(20).bytes(), "runs past the end of the file"},
      {"huge string length", GgufBuilder().counts(0, 1).u64(1ull << 40).zeros(16).bytes(), "exceeds 1 GiB"},
      {"empty key", GgufBuilder().counts(0, 1).str("").u32(4).u32(1).bytes(), "is empty"},
      {"duplicate key", GgufBuilder().counts(0, 2).kv_u32("a.b", 1).kv_u32("a.b", 2).bytes(), "duplicate metadata key \"a.b\""},
      {"unknown value type", GgufBuilder().counts(0, 1).str("k").u32(13).bytes(), "unknown type 13"},
      {"nested array", GgufBuilder().counts(0, 1).str("k").u32(9).u32(9).u64(1).bytes(), "nested arrays"},
      {"string array count past EOF", GgufBuilder().counts(0, 1).str("k").u32(9).u32(8).u64(1ull << 29).zeros(16).bytes(),
       "strings runs past the end of the file"},
      {"array past EOF", GgufBuilder().counts(0, 1).str("k").u32(9).u32(4).u64(1000).bytes(), "runs past the end of the file"},
      {"alignment wrong type", GgufBuilder().counts(0, 1).kv_str("general.alignment", "32").bytes(), "general.alignment must be a UINT32 power of two"},
      {"alignment not a power of two", GgufBuilder().counts(0, 1).kv_u32("general.alignment", 24).bytes(), "power of two"},
      {"tensor name too long", GgufBuilder().counts(1, 0).tensor(std::string(64, 'x'), {32}, 0, 0).align().zeros(128).bytes(), "longer than 63 bytes"},
      {"five dimensions", GgufBuilder().counts(1, 0).tensor("t", {1, 1, 1, 1, 1}, 0, 0).bytes(), "has 5 dimensions"},
      {"negative dimension", GgufBuilder().counts(1, 0).tensor("t", {-4}, 0, 0).bytes(), "negative dimension"},
      {"element count overflow", GgufBuilder().counts(1, 0).tensor("t", {1ll << 40, 1ll << 40}, 0, 0).bytes(), "element count overflows"},
      {"invalid type id", valid_prefix_with_one_tensor(0, {32}, 4) + std::string(64, '\0'), "invalid ggml type id 4"},
      {"row not whole blocks", valid_prefix_with_one_tensor(0, {48, 2}, 2) + std::string(64, '\0'), "row length 48 is not a multiple of the Q4_0 block size 32"},
      {"offset not consecutive", valid_prefix_with_one_tensor(32, {8}, 0) + std::string(96, '\0'), "has data offset 32, expected 0"},
      {"data past EOF", valid_prefix_with_one_tensor(0, {64, 64}, 0) + std::string(100, '\0'), "runs past the end of the file"},
      {"duplicate tensor",
       GgufBuilder().counts(2, 0).tensor("t", {8}, 0, 0).tensor("t", {8}, 0, 32).align().zeros(64).bytes(), "duplicate tensor \"t\""},
      {"metadata of the wrong type", GgufBuilder().counts(0, 2).kv_str("general.architecture", "llama").kv_str("llama.block_count", "five").bytes(),
       "llama.block_count must be a positive integer"},
  };
}

class MalformedGguf : public ::testing::TestWithParam<BadGguf> {};

TEST_P(MalformedGguf, FailsWithASpecificMessageNamingTheFile) {
  const BadGguf& bad = GetParam();
  qs::test::TempDir dir;
  const std::string path = dir.file("bad.gguf");
  qs::test::write_bytes(path, bad.bytes);
  qs::test::alloc_tracker_reset();
  auto m = qs::open_model(path);
  // Nothing sized by a lying count: string-array indexes are capped at 2 bytes per file byte.
  EXPECT_LE(qs::test::alloc_tracker_largest(), std::max<std::size_t>(2 * bad.bytes.size(), 4096)) << bad.what;
  ASSERT_FALSE(m.ok()) << bad.what;
  EXPECT_NE(m.error().message.find(path), std::string::npos) << m.error().message;
  EXPECT_NE(m.error().message.find(bad.expect), std::string::npos) << bad.what << ": expected \"" << bad.expect << "\" in: " << m.error().message;
}

INSTANTIATE_TEST_SUITE_P(BadFiles, MalformedGguf, ::testing::ValuesIn(bad_ggufs()),
                         [](const ::testing::TestParamInfo<BadGguf>& param_info) { return qs::test::test_name_of(param_info.param.what); });

TEST(Gguf, UndecodableTypeStillOpensAndSaysWhy) {
  qs::test::TempDir dir;
  const std::string path = dir.file("iq2.gguf");
  // One IQ2_XXS tensor (id 16, 66 bytes per 256) next to an F32 one.
  const std::string bytes = GgufBuilder()
                                .counts(2, 1)
                                .kv_str("general.architecture", "llama")
                                .tensor("blk.0.attn_q.weight", {256, 2}, 16, 0)
                                .tensor("blk.0.attn_norm.weight", {8}, 0, 160)
                                .align()
                                .zeros(160 + 32)
                                .bytes();
  qs::test::write_bytes(path, bytes);
  auto m = qs::open_model(path);
  ASSERT_TRUE(m.ok()) << m.error().message;
  const auto& t = m->tensors[0];
  EXPECT_EQ(t.dtype, qs::DType::IQ2_XXS);
  EXPECT_EQ(t.nbytes, 132u);
  auto s = qs::cpu_backend()->tensor_stats(qs::TensorData::of(t), {}, qs::OpContext::none());
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().message.find("type IQ2_XXS: not decodable yet"), std::string::npos) << s.error().message;
  auto norm = qs::cpu_backend()->tensor_stats(qs::TensorData::of(m->tensors[1]), {}, qs::OpContext::none());
  EXPECT_TRUE(norm.ok());
}

}  // namespace

namespace {

TEST(Gguf, Version2FilesOpenLikeVersion3) {
  qs::test::TempDir dir;
  for (std::uint32_t version : {2u, 3u}) {
    const std::string path = dir.file(std::string("v").append(std::to_string(version)).append(".gguf"));
    std::string data(32 * 4, '\0');
    const float one = 1.0f;
    std::memcpy(&data[4], &one, 4);  // element 1 of the first row
    qs::test::write_bytes(path, GgufBuilder(version)
                                    .counts(1, 2)
                                    .kv_str("general.architecture", "llama")
                                    .kv_u32("llama.block_count", 1)
                                    .tensor("blk.0.attn_q.weight", {32, 1}, 0, 0)
                                    .align()
                                    .raw(data)
                                    .bytes());
    auto m = qs::open_model(path);
    ASSERT_TRUE(m.ok()) << m.error().message;
    EXPECT_EQ(m->gguf->version, version);
    EXPECT_EQ(m->arch.num_layers, 1);
    EXPECT_EQ(m->tensors[0].shape, (std::vector<std::int64_t>{1, 32}));
    EXPECT_EQ(decode(m->tensors[0])[1], 1.0f);
  }
}

}  // namespace
