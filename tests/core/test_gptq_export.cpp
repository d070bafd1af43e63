// GPTQ checkpoint export: the packing against the bit layout of
// docs/formats.md 4.1 (hand-computed words, the 3-bit straddles), and a whole
// export of the demo model read back and dequantized by an independent
// unpacker written here from the format description.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "demo/demo_model.h"
#include "export/gptq_export.h"
#include "export/gptq_pack.h"
#include "io/open_model.h"
#include "io/safetensors.h"
#include "model/convert.h"
#include "test_files.h"
#include "util/half.h"

namespace {

namespace fs = std::filesystem;

TEST(GptqPack, FourBitWordsHoldInputsLsbFirst) {
  // 8 outputs x 32 inputs; output 0 has codes 0..15, 0..15: input r*8+k sits in bits 4k of row r.
  std::vector<std::uint8_t> codes(8 * 32, 0);
  for (int i = 0; i < 32; ++i) codes[static_cast<std::size_t>(i)] = static_cast<std::uint8_t>(i % 16);
  codes[32 * 5 + 1] = 5;  // output 5, input 1
  auto q = qs::pack_gptq_qweight(codes.data(), 8, 32, 4);
  ASSERT_TRUE(q.ok()) << q.error().message;
  ASSERT_EQ(q->size(), 4u * 8u);  // [in*4/32, out]
  EXPECT_EQ(static_cast<std::uint32_t>((*q)[0 * 8 + 0]), 0x76543210u);
  EXPECT_EQ(static_cast<std::uint32_t>((*q)[1 * 8 + 0]), 0xFEDCBA98u);
  EXPECT_EQ(static_cast<std::uint32_t>((*q)[2 * 8 + 0]), 0x76543210u);
  EXPECT_EQ(static_cast<std::uint32_t>((*q)[0 * 8 + 5]), 0x50u);
  EXPECT_EQ((*q)[1 * 8 + 5], 0);
  EXPECT_FALSE(qs::pack_gptq_qweight(codes.data(), 1, 32, 4).ok());  // 1 output is not a whole word of zeros
}

TEST(GptqPack, ThreeBitCodesTenAndTwentyOneStraddleWords) {
  std::vector<std::uint8_t> codes(32, 0);
  codes[10] = 7;  // bits 30..32: w0 bits 30-31, w1 bit 0
  std::uint32_t w[3];
  qs::pack_bits(codes.data(), 32, 1, 3, w);
  EXPECT_EQ(w[0], 0xC0000000u);
  EXPECT_EQ(w[1], 0x1u);
  EXPECT_EQ(w[2], 0x0u);
  codes[10] = 0;
  codes[21] = 6;  // 0b110 at bits 63..65: w1 bit 31 = 0, w2 bits 0-1 = 0b11
  qs::pack_bits(codes.data(), 32, 1, 3, w);
  EXPECT_EQ(w[1], 0x0u);
  EXPECT_EQ(w[2], 0x3u);
  codes[21] = 5;  // 0b101: w1 bit 31 = 1, w2 bits 0-1 = 0b10
  qs::pack_bits(codes.data(), 32, 1, 3, w);
  EXPECT_EQ(w[1], 0x80000000u);
  EXPECT_EQ(w[2], 0x2u);
  // Round trip of every 3-bit code at every position.
  for (int i = 0; i < 32; ++i) codes[static_cast<std::size_t>(i)] = static_cast<std::uint8_t>((i * 5 + 3) % 8);
  qs::pack_bits(codes.data(), 32, 1, 3, w);
  std::uint8_t back[32];
  qs::unpack_bits(w, 32, 3, back);
  for (int i = 0; i < 32; ++i) EXPECT_EQ(back[i], codes[static_cast<std::size_t>(i)]) << i;
  EXPECT_NE(qs::gptq_shape_problem(64, 48, 4), "");  // inputs not a multiple of 32
  EXPECT_NE(qs::gptq_shape_problem(16, 64, 3), "");  // 3-bit outputs need multiples of 32
  EXPECT_EQ(qs::gptq_shape_problem(8, 64, 4), "");
}

// The value of code i of a little-endian b-bit stream, read bit by bit: an
// unpacker independent of the packer.
std::uint32_t read_code(const std::int32_t* words, std::int64_t stride, std::int64_t i, int bits) {
  std::uint32_t v = 0;
  for (int b = 0; b < bits; ++b) {
    const std::int64_t bit = i * bits + b;
    const auto word = static_cast<std::uint32_t>(words[(bit / 32) * stride]);
    v |= ((word >> (bit % 32)) & 1u) << b;
  }
  return v;
}

struct Exported {
  fs::path dir;
  qs::SafetensorsFile file;
  const qs::TensorInfo* find(const std::string& name) const {
    for (const auto& t : file.tensors)
      if (t.name == name) return &t;
    return nullptr;
  }
};

void check_export(int bits, int group, bool sym) {
  const fs::path root = fs::temp_directory_path() / ("qs_gptq_" + std::to_string(::getpid()) + "_" + std::to_string(bits) + (sym ? "s" : "a"));
  fs::remove_all(root);
  qs::DemoSpec spec;
  spec.layers = 2;
  spec.hidden = 128;
  spec.intermediate = 352;  // down_proj has 352 inputs: a multiple of 32 but not of 128
  ASSERT_TRUE(qs::write_demo_model((root / "src").string(), spec).ok());
  auto model = qs::open_model((root / "src").string());
  ASSERT_TRUE(model.ok()) << model.error().message;
  auto report = qs::export_gptq(*model, (root / "out").string(), {bits, group, sym}, qs::OpContext::none());
  ASSERT_TRUE(report.ok()) << report.error().message;
  EXPECT_EQ(report->checkpoint_format, sym ? "gptq" : "gptq_v2");

  auto file = qs::read_safetensors((root / "out" / "model.safetensors").string());
  ASSERT_TRUE(file.ok()) << file.error().message;
  Exported ex{root / "out", std::move(*file)};
  const nlohmann::json config = nlohmann::json::parse(qs::test::read_bytes((root / "out" / "config.json").string()));
  const auto& qc = config["quantization_config"];
  EXPECT_EQ(qc["bits"], bits);
  EXPECT_EQ(qc["group_size"], group);
  EXPECT_EQ(qc["sym"], sym);
  EXPECT_EQ(qc["desc_act"], false);
  EXPECT_EQ(qc["quant_method"], "gptq");
  EXPECT_EQ(qc["checkpoint_format"], report->checkpoint_format);
  EXPECT_EQ(nlohmann::json::parse(qs::test::read_bytes((root / "out" / "quantize_config.json").string())), qc);

  int quantized = 0;
  for (const auto& m : report->modules) {
    const qs::TensorInfo* src = &model->tensors[*model->find_tensor(m.name + ".weight")];
    const bool fits = group < 0 || src->cols() % group == 0;
    EXPECT_EQ(m.quantized, fits) << m.name;
    if (!m.quantized) {
      EXPECT_TRUE(qc["dynamic"].contains("-:^" + m.name + "$")) << m.name;
      ASSERT_NE(ex.find(m.name + ".weight"), nullptr) << m.name;  // kept, in F16
      EXPECT_EQ(ex.find(m.name + ".weight")->dtype, qs::DType::F16);
      continue;
    }
    ++quantized;
    EXPECT_EQ(ex.find(m.name + ".weight"), nullptr);
    const auto* qw = ex.find(m.name + ".qweight");
    const auto* qz = ex.find(m.name + ".qzeros");
    const auto* sc = ex.find(m.name + ".scales");
    const auto* gi = ex.find(m.name + ".g_idx");
    ASSERT_TRUE(qw && qz && sc && gi) << m.name;
    const std::int64_t out = src->rows(), in = src->cols(), gs = group > 0 ? group : in, groups = in / gs;
    ASSERT_EQ(qw->shape, (std::vector<std::int64_t>{in * bits / 32, out}));
    ASSERT_EQ(qz->shape, (std::vector<std::int64_t>{groups, out * bits / 32}));
    ASSERT_EQ(sc->shape, (std::vector<std::int64_t>{groups, out}));
    ASSERT_EQ(gi->shape, (std::vector<std::int64_t>{in}));
    const auto* qwords = reinterpret_cast<const std::int32_t*>(qw->bytes().data());
    const auto* zwords = reinterpret_cast<const std::int32_t*>(qz->bytes().data());
    const auto* scales = reinterpret_cast<const std::uint16_t*>(sc->bytes().data());
    const auto* gidx = reinterpret_cast<const std::int32_t*>(gi->bytes().data());
    std::vector<float> w(static_cast<std::size_t>(out * in));
    ASSERT_TRUE(qs::convert_to_f32(src->dtype, src->bytes().data(), w.size(), w.data()).ok());
    double err = 0, ref = 0;
    for (std::int64_t o = 0; o < out; ++o)
      for (std::int64_t i = 0; i < in; ++i) {
        const int g = gidx[i];
        ASSERT_EQ(g, i / gs);
        const float s = qs::f16_to_f32(scales[g * out + o]);
        std::uint32_t z = read_code(zwords + g * (out * bits / 32), 1, o, bits);
        if (sym) {
          EXPECT_EQ(z, (1u << (bits - 1)) - 1u);  // v1 stores z - 1: 0x77777777 words at 4 bits
          z += 1;
        }
        const std::uint32_t code = read_code(qwords + o, out, i, bits);
        const float deq = s * (static_cast<float>(code) - static_cast<float>(z));
        const float x = w[static_cast<std::size_t>(o * in + i)];
        // Round to nearest on the stored grid: within half a step, unless clipped at the grid's ends.
        const bool clipped = code == 0 || code == (1u << bits) - 1u;
        if (!clipped) {
          ASSERT_LE(std::fabs(deq - x), 0.5f * s * 1.0001f + 1e-7f) << m.name << " " << o << "," << i;
        }
        err += (static_cast<double>(x) - deq) * (static_cast<double>(x) - deq);
        ref += static_cast<double>(x) * x;
      }
    EXPECT_NEAR(m.sqnr_db, 10.0 * std::log10(ref / err), 1e-6) << m.name;
    if (sym && bits == 4) {
      EXPECT_EQ(static_cast<std::uint32_t>(zwords[0]), 0x77777777u);
    }
  }
  EXPECT_GT(quantized, 0);
  // Everything else is there in F16.
  EXPECT_EQ(ex.find("model.embed_tokens.weight")->dtype, qs::DType::F16);
  EXPECT_EQ(ex.find("model.norm.weight")->dtype, qs::DType::F16);
  fs::remove_all(root);
}

TEST(GptqExport, FourBitSymmetricG128ReadsBackWithinHalfAStep) { check_export(4, 128, true); }
TEST(GptqExport, ThreeBitAsymmetricPerChannelReadsBack) { check_export(3, -1, false); }
TEST(GptqExport, EightBitAsymmetricG32ReadsBack) { check_export(8, 32, false); }

TEST(GptqExport, RefusesANonEmptyOutputAndGgufSources) {
  const fs::path root = fs::temp_directory_path() / ("qs_gptq_refuse_" + std::to_string(::getpid()));
  fs::remove_all(root);
  auto model = qs::open_model(qs::test::write_small_demo(root / "src", 1, 64, 96));
  ASSERT_TRUE(model.ok());
  auto r = qs::export_gptq(*model, (root / "src").string(), {}, qs::OpContext::none());
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("not an empty directory"), std::string::npos) << r.error().message;
  auto bad = qs::export_gptq(*model, (root / "o").string(), {5, 128, true}, qs::OpContext::none());
  ASSERT_FALSE(bad.ok());
  EXPECT_FALSE(fs::exists(root / "o"));
  fs::remove_all(root);
}

}  // namespace
