// GPTQ checkpoint export: the packing against the bit layout of
// docs/formats.md 4.1 (hand-computed words, the 3-bit straddles), and a whole
// export of the demo model read back and dequantized by an independent
// unpacker written here from the format description.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>
#include <memory>
#include <numeric>
#include <tuple>
#include <nlohmann/json.hpp>

#include "calib/calibrate.h"
#include "calib/llama_forward.h"
#include "calib/perplexity.h"
#include "calib/spm_tokenizer.h"
#include "demo/demo_model.h"
#include "export/gptq_export.h"
#include "export/gptq_pack.h"
#include "io/open_model.h"
#include "io/safetensors.h"
#include "model/convert.h"
#include "quant/gptq.h"
#include "export_checks.h"
#include "synthetic_calibration.h"
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
    // core's decoder (what the export's read-back check uses) against the bit-wise one here.
    auto decoded = qs::dequantize_gptq(
        {qwords, static_cast<std::size_t>(qw->numel())}, {zwords, static_cast<std::size_t>(qz->numel())},
        {scales, static_cast<std::size_t>(sc->numel())}, {gidx, static_cast<std::size_t>(gi->numel())}, out, in, groups,
        bits, !sym);
    ASSERT_TRUE(decoded.ok()) << decoded.error().message;
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
        ASSERT_EQ((*decoded)[static_cast<std::size_t>(o * in + i)], deq) << m.name << " " << o << "," << i;
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
    EXPECT_NEAR(m.readback_sqnr_db, 10.0 * std::log10(ref / err), 1e-6) << m.name;
    if (sym && bits == 4) {
      EXPECT_EQ(static_cast<std::uint32_t>(zwords[0]), 0x77777777u);
    }
  }
  EXPECT_GT(quantized, 0);
  EXPECT_TRUE(report->verified);
  for (const auto& m : report->modules)
    if (!m.quantized) {
      EXPECT_TRUE(std::isnan(m.readback_sqnr_db)) << m.name;
    }
  // Everything else is there in F16.
  EXPECT_EQ(ex.find("model.embed_tokens.weight")->dtype, qs::DType::F16);
  EXPECT_EQ(ex.find("model.norm.weight")->dtype, qs::DType::F16);
  fs::remove_all(root);
}

TEST(GptqExport, FourBitSymmetricG128ReadsBackWithinHalfAStep) { check_export(4, 128, true); }
TEST(GptqExport, ThreeBitAsymmetricPerChannelReadsBack) { check_export(3, -1, false); }
TEST(GptqExport, EightBitAsymmetricG32ReadsBack) { check_export(8, 32, false); }

// A byte of a packed tensor changed between the write and the read-back check
// (the test hook): the export fails naming the file and the tensor, and
// neither the destination nor the staging directory is left.
TEST(GptqExport, ACorruptedTensorFailsTheExportAndLeavesNothing) {
  qs::test::TempDir dir;
  auto model = qs::open_model(qs::test::write_small_demo(dir.path() / "src", 1, 64, 96));
  ASSERT_TRUE(model.ok()) << model.error().message;
  for (const std::string victim : {"model.layers.0.self_attn.k_proj.qweight", "model.layers.0.mlp.gate_proj.scales",
                                   "model.layers.0.self_attn.o_proj.g_idx"}) {
    std::string staged;
    qs::GptqExportOptions o{4, 32, true};
    o.after_write = [&](const std::string& path) {
      staged = path;
      EXPECT_TRUE(qs::test::flip_safetensors_byte(path, victim)) << victim;
    };
    const fs::path out = dir.path() / "out";
    auto r = qs::export_gptq(*model, out.string(), o, qs::OpContext::none());
    ASSERT_FALSE(r.ok()) << victim;
    qs::test::expect_verification_failure(r.error().message, out, staged, victim);
  }
  for (const auto& e : fs::directory_iterator(dir.path())) EXPECT_EQ(e.path().filename(), "src") << e.path();
  auto ok = qs::export_gptq(*model, (dir.path() / "out").string(), {4, 32, true}, qs::OpContext::none());
  ASSERT_TRUE(ok.ok()) << ok.error().message;
  EXPECT_TRUE(ok->verified);
}

// core's decoder refuses what a loader could not index.
TEST(GptqPack, DequantizeRefusesAGroupIndexOutOfRangeAndWrongSizes) {
  std::vector<std::uint8_t> codes(8 * 32, 3);
  auto qw = qs::pack_gptq_qweight(codes.data(), 8, 32, 4);
  std::vector<std::uint8_t> z(8, 7);
  auto qz = qs::pack_gptq_qzeros(z.data(), 1, 8, 4);
  ASSERT_TRUE(qw.ok() && qz.ok());
  std::vector<std::uint16_t> scales(8, qs::f32_to_f16(0.5f));
  std::vector<std::int32_t> g_idx(32, 0);
  auto w = qs::dequantize_gptq(*qw, *qz, scales, g_idx, 8, 32, 1, 4, false);
  ASSERT_TRUE(w.ok()) << w.error().message;
  for (float v : *w) EXPECT_EQ(v, 0.5f * (3.0f - 8.0f));  // v1: z stored as 7 means 8
  g_idx[5] = 1;
  w = qs::dequantize_gptq(*qw, *qz, scales, g_idx, 8, 32, 1, 4, false);
  ASSERT_FALSE(w.ok());
  EXPECT_NE(w.error().message.find("g_idx[5] = 1 is not a group"), std::string::npos) << w.error().message;
  g_idx[5] = 0;
  scales.pop_back();
  EXPECT_FALSE(qs::dequantize_gptq(*qw, *qz, scales, g_idx, 8, 32, 1, 4, false).ok());
}

TEST(GptqExport, RefusesANonEmptyOutputAndGgufSources) {
  const fs::path root = fs::temp_directory_path() / ("qs_gptq_refuse_" + std::to_string(::getpid()));
  fs::remove_all(root);
  auto model = qs::open_model(qs::test::write_small_demo(root / "src", 1, 64, 96));
  ASSERT_TRUE(model.ok());
  auto r = qs::export_gptq(*model, (root / "src").string(), {4, 32, true}, qs::OpContext::none());
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("not an empty directory"), std::string::npos) << r.error().message;
  auto bad = qs::export_gptq(*model, (root / "o").string(), {5, 128, true}, qs::OpContext::none());
  ASSERT_FALSE(bad.ok());
  EXPECT_FALSE(fs::exists(root / "o"));
  fs::remove_all(root);
}

// ---- GPTQ proper, with calibration (stories260K) ----

// A quantized module of a written checkpoint decoded by the bit-wise unpacker
// above and the format's formula, scales[g][o] * (code[i][o] - z[g][o]) with
// g = g_idx[i]: [out, in] row-major, and the file's g_idx.
struct Unpacked {
  std::vector<float> w;
  std::vector<std::int32_t> g_idx;
};
Unpacked unpack_module(const Exported& ex, const std::string& m, std::int64_t out, std::int64_t in, int bits, bool v1) {
  const auto* qw = ex.find(m + ".qweight");
  const auto* qz = ex.find(m + ".qzeros");
  const auto* sc = ex.find(m + ".scales");
  const auto* gi = ex.find(m + ".g_idx");
  EXPECT_TRUE(qw && qz && sc && gi) << m;
  if (!qw || !qz || !sc || !gi) return {};
  const auto* qwords = reinterpret_cast<const std::int32_t*>(qw->bytes().data());
  const auto* zwords = reinterpret_cast<const std::int32_t*>(qz->bytes().data());
  const auto* scales = reinterpret_cast<const std::uint16_t*>(sc->bytes().data());
  const auto* gidx = reinterpret_cast<const std::int32_t*>(gi->bytes().data());
  Unpacked u{std::vector<float>(static_cast<std::size_t>(out * in)), std::vector<std::int32_t>(gidx, gidx + in)};
  for (std::int64_t o = 0; o < out; ++o)
    for (std::int64_t i = 0; i < in; ++i) {
      const int g = gidx[i];
      const float s = qs::f16_to_f32(scales[g * out + o]);
      const std::uint32_t z = read_code(zwords + g * (out * bits / 32), 1, o, bits) + (v1 ? 1u : 0u);
      const std::uint32_t code = read_code(qwords + o, out, i, bits);
      u.w[static_cast<std::size_t>(o * in + i)] = s * (static_cast<float>(code) - static_cast<float>(z));
    }
  return u;
}

// tr(dW H dW^T) / tr(W H W^T), in double, straight from the definition.
double relative_output_error(const std::vector<float>& w, const std::vector<float>& q, const std::vector<float>& h,
                             std::int64_t out, std::int64_t in) {
  double num = 0, den = 0;
  std::vector<double> d(static_cast<std::size_t>(in));
  for (std::int64_t o = 0; o < out; ++o) {
    const float* wr = w.data() + o * in;
    const float* qr = q.data() + o * in;
    for (std::int64_t i = 0; i < in; ++i) d[static_cast<std::size_t>(i)] = static_cast<double>(wr[i]) - qr[i];
    for (std::int64_t i = 0; i < in; ++i)
      for (std::int64_t j = 0; j < in; ++j) {
        const double hij = h[static_cast<std::size_t>(i * in + j)];
        num += d[static_cast<std::size_t>(i)] * hij * d[static_cast<std::size_t>(j)];
        den += static_cast<double>(wr[i]) * hij * wr[j];
      }
  }
  return num / den;
}

bool ex_has(const Exported& ex, const std::string& module) { return ex.find(module + ".qweight") != nullptr; }

class GptqCalibrated : public ::testing::Test {
 protected:
  void SetUp() override {
    shared_ = qs::test::shared_dir();
    if (shared_.empty()) GTEST_SKIP() << "../shared is absent (fresh clone): skipping a test on real models/cases";
    const std::string base = shared_ + "/models/stories260K/";
    auto m = qs::open_model(base + "hf");
    ASSERT_TRUE(m.ok()) << m.error().message;
    model_ = std::make_unique<qs::Model>(std::move(*m));
    auto tok = qs::SpmTokenizer::for_model(*model_);
    ASSERT_TRUE(tok.ok()) << tok.error().message;
    bos_ = tok->bos_id();
    ids_ = tok->encode(qs::test::read_bytes(base + "eval/tiny_stories_eval.txt"), true);
    ASSERT_GE(ids_.size(), 2048u);
    auto llama = qs::LlamaModel::load(*model_);
    ASSERT_TRUE(llama.ok()) << llama.error().message;
    auto h = qs::test::hessians_of(*llama, std::span<const std::int32_t>(ids_.data(), 1024), 256, bos_);
    ASSERT_TRUE(h.ok()) << h.error().message;
    hessians_ = std::move(*h);
    root_ = fs::temp_directory_path() / ("qs_gptq_calib_" + std::to_string(::getpid()));
    fs::remove_all(root_);
    fs::create_directories(root_);
  }
  void TearDown() override { fs::remove_all(root_); }

  Exported export_to(const std::string& name, qs::GptqExportOptions o) {
    const fs::path dir = root_ / name;
    auto r = qs::export_gptq(*model_, dir.string(), o, qs::OpContext::none());
    EXPECT_TRUE(r.ok()) << r.error().message;
    if (r.ok()) reports_[name] = *r;
    auto file = qs::read_safetensors((dir / "model.safetensors").string());
    EXPECT_TRUE(file.ok()) << file.error().message;
    return Exported{dir, file.ok() ? std::move(*file) : qs::SafetensorsFile{}};
  }
  std::vector<float> source_weight(const qs::Layer& l) const {
    const qs::TensorInfo& t = model_->tensors[l.weight];
    std::vector<float> w(t.numel());
    EXPECT_TRUE(qs::convert_to_f32(t.dtype, t.bytes().data(), w.size(), w.data()).ok());
    return w;
  }
  // Held-out perplexity of a written checkpoint: every tensor decoded to F32
  // (quantized modules by the unpacker) into an HF directory our forward pass runs.
  double perplexity_of(const Exported& ex, int bits, bool v1) {
    std::vector<std::vector<float>> data;
    std::vector<qs::SafetensorsWriteEntry> entries;
    for (const qs::TensorInfo& t : model_->tensors) {
      std::string module = t.name.size() > 7 ? t.name.substr(0, t.name.size() - 7) : "";
      if (ex.find(t.name)) {
        const qs::TensorInfo& f = *ex.find(t.name);
        data.emplace_back(f.numel());
        EXPECT_TRUE(qs::convert_to_f32(f.dtype, f.bytes().data(), data.back().size(), data.back().data()).ok());
      } else {
        data.push_back(unpack_module(ex, module, t.rows(), t.cols(), bits, v1).w);
      }
      entries.push_back({t.name, qs::DType::F32, t.shape, std::as_bytes(std::span<const float>(data.back()))});
    }
    const fs::path dir = ex.dir.string() + "-f32";
    fs::create_directories(dir);
    EXPECT_TRUE(qs::write_safetensors((dir / "model.safetensors").string(), std::move(entries)).ok());
    fs::copy_file(ex.dir / "config.json", dir / "config.json");
    fs::copy_file(ex.dir / "tokenizer.model", dir / "tokenizer.model");
    auto m = qs::open_model(dir.string());
    EXPECT_TRUE(m.ok()) << m.error().message;
    if (!m.ok()) return 0;
    auto llama = qs::LlamaModel::load(*m);
    EXPECT_TRUE(llama.ok()) << llama.error().message;
    if (!llama.ok()) return 0;
    qs::PerplexityOptions opt;
    opt.bos = bos_;
    auto p = qs::perplexity(*llama, std::span<const std::int32_t>(ids_.data() + 1024, ids_.size() - 1024), opt);
    EXPECT_TRUE(p.ok()) << p.error().message;
    return p.ok() ? p->ppl : 0.0;
  }

  std::string shared_;
  std::unique_ptr<qs::Model> model_;
  std::vector<std::int32_t> ids_;
  std::int32_t bos_ = -1;
  qs::ActivationCapture hessians_;
  fs::path root_;
  std::map<std::string, qs::GptqExportReport> reports_;
};

TEST_F(GptqCalibrated, GptqLowersEveryLayersOutputErrorAndTheFileHoldsExactlyItsResult) {
  const int bits = 4, group = 32;
  const Exported rtn = export_to("rtn", {bits, group, true});
  qs::GptqExportOptions g{bits, group, true};
  g.capture = &hessians_;
  const Exported gp = export_to("gptq", g);
  qs::GptqExportOptions ga = g;
  ga.sym = false;
  ga.act_order = true;  // dynamic groups along the walk: g_idx scatters them
  const Exported act = export_to("gptq-act", ga);
  qs::GptqExportOptions gs = g;
  gs.act_order = gs.static_groups = true;
  const Exported stat = export_to("gptq-act-static", gs);
  ASSERT_EQ(reports_.size(), 4u);
  for (const auto& [name, report] : reports_) {
    EXPECT_TRUE(report.verified) << name;
    for (const auto& m : report.modules)
      if (m.quantized) {
        EXPECT_NEAR(m.readback_sqnr_db, m.sqnr_db, 1e-6) << name << " " << m.name;
      }
  }
  const nlohmann::json qc = nlohmann::json::parse(qs::test::read_bytes((act.dir / "config.json").string()))["quantization_config"];
  EXPECT_EQ(qc["desc_act"], true);
  EXPECT_EQ(qc["static_groups"], false);
  EXPECT_EQ(qc["checkpoint_format"], "gptq_v2");
  EXPECT_EQ(qc["meta"]["method"], "gptq");

  int layers = 0, better = 0, better_act = 0;
  double sum_rtn = 0, sum_gptq = 0, sum_act = 0, sum_static = 0;
  for (const qs::Layer& l : model_->layers) {
    if (!ex_has(rtn, l.name)) continue;
    ++layers;
    const std::vector<float> w = source_weight(l);
    const std::vector<float>& h = *hessians_.hessian_for(l.role, l.block);
    const std::int64_t out = model_->tensors[l.weight].rows(), in = model_->tensors[l.weight].cols();
    const Unpacked u_rtn = unpack_module(rtn, l.name, out, in, bits, true);
    const Unpacked u_gptq = unpack_module(gp, l.name, out, in, bits, true);
    const Unpacked u_act = unpack_module(act, l.name, out, in, bits, false);
    const Unpacked u_static = unpack_module(stat, l.name, out, in, bits, true);
    ASSERT_FALSE(u_gptq.w.empty() || u_act.w.empty() || u_static.w.empty()) << l.name;

    // The file decodes exactly to what GPTQ computed (F16 scales in the walk).
    for (const auto& [u, spec_act, spec_static, sym] : {std::tuple{&u_gptq, false, false, true}, std::tuple{&u_act, true, false, false},
                                                        std::tuple{&u_static, true, true, true}}) {
      qs::GptqSpec spec;
      spec.grid = {bits, sym, group};
      spec.act_order = spec_act;
      spec.static_groups = spec_static;
      spec.f16_scales = true;
      auto q = qs::gptq(w.data(), out, in, h.data(), spec, qs::OpContext::none());
      ASSERT_TRUE(q.ok()) << q.error().message;
      for (std::size_t i = 0; i < w.size(); ++i) ASSERT_EQ(u->w[i], q->dequantized[i]) << l.name << " weight " << i;
    }
    // g_idx: i / gs without act-order or with static groups; with act-order, the
    // groups are runs of gs inputs in descending order of H's diagonal.
    std::vector<std::int64_t> perm(static_cast<std::size_t>(in));
    std::iota(perm.begin(), perm.end(), 0);
    std::stable_sort(perm.begin(), perm.end(), [&](std::int64_t a, std::int64_t b) {
      return h[static_cast<std::size_t>(a * in + a)] > h[static_cast<std::size_t>(b * in + b)];
    });
    std::vector<int> members(static_cast<std::size_t>(in / group));
    for (std::int64_t p = 0; p < in; ++p) {
      const auto c = static_cast<std::size_t>(perm[static_cast<std::size_t>(p)]);
      EXPECT_EQ(u_act.g_idx[c], p / group) << l.name << " input " << c;
      ASSERT_LT(u_act.g_idx[c], in / group);
      ++members[static_cast<std::size_t>(u_act.g_idx[c])];
      EXPECT_EQ(u_gptq.g_idx[static_cast<std::size_t>(p)], p / group);
      EXPECT_EQ(u_static.g_idx[static_cast<std::size_t>(p)], p / group);
    }
    for (int n : members) EXPECT_EQ(n, group) << l.name;
    const bool permuted = !std::is_sorted(perm.begin(), perm.end());
    if (permuted) {
      EXPECT_NE(u_act.g_idx, u_gptq.g_idx) << l.name;
    }

    const double e_rtn = relative_output_error(w, u_rtn.w, h, out, in);
    const double e_gptq = relative_output_error(w, u_gptq.w, h, out, in);
    const double e_act = relative_output_error(w, u_act.w, h, out, in);
    const double e_static = relative_output_error(w, u_static.w, h, out, in);
    std::printf("  %-36s rtn %.5f  gptq %.5f  act-order asym %.5f  act-order static %.5f\n", l.name.c_str(), e_rtn, e_gptq,
                e_act, e_static);
    better += e_gptq < e_rtn;
    better_act += e_static < e_rtn;
    sum_rtn += e_rtn;
    sum_gptq += e_gptq;
    sum_act += e_act;
    sum_static += e_static;
  }
  std::printf("  mean over %d layers: rtn %.5f  gptq %.5f  act-order asym %.5f  act-order static %.5f\n", layers,
              sum_rtn / layers, sum_gptq / layers, sum_act / layers, sum_static / layers);
  ASSERT_EQ(layers, 20);  // q, k, v, o of 5 blocks (172-wide MLP layers do not fit 4-bit packing)
  EXPECT_GE(better, layers - 1);
  EXPECT_GE(better_act, layers - 1);
  EXPECT_LT(sum_gptq, 0.8 * sum_rtn);
  EXPECT_LT(sum_act, 0.8 * sum_rtn);

  const double ppl_rtn = perplexity_of(rtn, bits, true), ppl_gptq = perplexity_of(gp, bits, true),
               ppl_act = perplexity_of(act, bits, false), ppl_static = perplexity_of(stat, bits, true);
  auto f32 = qs::LlamaModel::load(*model_);
  ASSERT_TRUE(f32.ok());
  qs::PerplexityOptions popt;
  popt.bos = bos_;
  auto ppl_f32 = qs::perplexity(*f32, std::span<const std::int32_t>(ids_.data() + 1024, ids_.size() - 1024), popt);
  ASSERT_TRUE(ppl_f32.ok());
  std::printf("  held-out perplexity: F32 %.4f  rtn %.4f  gptq %.4f  act-order asym %.4f  act-order static %.4f\n",
              ppl_f32->ppl, ppl_rtn, ppl_gptq, ppl_act, ppl_static);
  RecordProperty("ppl_rtn", std::to_string(ppl_rtn));
  RecordProperty("ppl_gptq", std::to_string(ppl_gptq));
  EXPECT_LT(ppl_gptq, ppl_rtn);
}

// A calibration run's capture (what the app holds once a calibration file is
// loaded) is read where it is, act-order and all: the file says GPTQ and
// holds exactly its result (checked per layer above for the chunked capture).
TEST_F(GptqCalibrated, ACalibrationRunsCaptureGivesAGptqFile) {
  qs::CalibrationSettings set;
  set.text_files = {shared_ + "/models/stories260K/eval/tiny_stories_eval.txt"};
  set.sequences = 4;
  set.seq_len = 128;
  auto run = qs::calibrate(*model_, set);
  ASSERT_TRUE(run.ok()) << run.error().message;
  qs::GptqExportOptions from_capture{4, 32, true};
  from_capture.capture = &run->capture;
  from_capture.act_order = true;
  export_to("capture", from_capture);
  qs::GptqExportOptions rtn{4, 32, true};
  export_to("rtn", rtn);
  ASSERT_EQ(reports_.size(), 2u);
  EXPECT_TRUE(reports_["capture"].verified);
  const std::string a = qs::test::read_bytes((root_ / "capture" / "model.safetensors").string());
  EXPECT_GT(a.size(), 0u);
  EXPECT_NE(a, qs::test::read_bytes((root_ / "rtn" / "model.safetensors").string()));
  const nlohmann::json qc = nlohmann::json::parse(qs::test::read_bytes((root_ / "capture" / "config.json").string()))["quantization_config"];
  EXPECT_EQ(qc["meta"]["method"], "gptq");
  EXPECT_EQ(qc["desc_act"], true);
}

TEST_F(GptqCalibrated, ActOrderWithoutCalibrationAndHessiansOfTheWrongSizeAreRefused) {
  qs::GptqExportOptions o{4, 32, true};
  o.act_order = true;
  auto r = qs::export_gptq(*model_, (root_ / "x").string(), o, qs::OpContext::none());
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("need calibration"), std::string::npos) << r.error().message;
  qs::ActivationCapture wrong = hessians_;
  for (qs::InputStats& in : wrong.inputs)
    if (in.block == 2 && in.input == qs::LlamaLinearInput::Attention) in.hessian.resize(16);
  o.act_order = false;
  o.capture = &wrong;
  r = qs::export_gptq(*model_, (root_ / "y").string(), o, qs::OpContext::none());
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("model.layers.2.self_attn."), std::string::npos) << r.error().message;
  EXPECT_NE(r.error().message.find(": the calibration Hessian does not match its 64 inputs"), std::string::npos)
      << r.error().message;
  EXPECT_FALSE(fs::exists(root_ / "x"));
  EXPECT_FALSE(fs::exists(root_ / "y"));
}

}  // namespace
