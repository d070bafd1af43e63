// The engine's tables: every format and method known in one row, the one
// capability query, and the GGUF size account equal to the file to the byte.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <random>
#include <set>

#include "export/gguf_export.h"
#include "export/gptq_export.h"
#include "io/open_model.h"
#include "quant/capability.h"
#include "quant/format_table.h"
#include "quant/layer_method.h"
#include "quant/method_table.h"
#include "quant/mxfp6.h"
#include "quant/plan.h"
#include "test_files.h"

namespace {

std::vector<float> random_weights(std::int64_t n, unsigned seed) {
  std::mt19937 rng(seed);
  std::student_t_distribution<float> t(4.0f);  // heavy tails, as trained weights have
  std::vector<float> w(static_cast<std::size_t>(n));
  for (float& v : w) v = 0.02f * t(rng);
  return w;
}

TEST(FormatTable, EveryNameAndAliasParsesToItsRowAndNamesAreUnique) {
  std::set<std::string> seen;
  for (const qs::FormatRow& r : qs::format_table()) {
    if (r.kind == qs::FormatKind::IntGrid) continue;
    EXPECT_TRUE(seen.insert(std::string(r.name)).second) << r.name;
    auto c = qs::parse_quant_choice(r.name);
    ASSERT_TRUE(c.ok()) << r.name;
    EXPECT_EQ(c->row, &r);
    EXPECT_EQ(c->name, r.name);
    auto upper = std::string(r.name);
    for (char& ch : upper) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
    EXPECT_EQ(qs::parse_quant_choice(upper)->row, &r) << upper;
    for (std::size_t s = 0; s < r.aliases.size();) {
      const std::size_t e = std::min(r.aliases.find(' ', s), r.aliases.size());
      const std::string alias(r.aliases.substr(s, e - s));
      EXPECT_TRUE(seen.insert(alias).second) << alias;
      EXPECT_EQ(qs::parse_quant_choice(alias)->row, &r) << alias;
      s = e + 1;
    }
  }
  auto g = qs::parse_quant_choice("int4");
  ASSERT_TRUE(g.ok());
  EXPECT_EQ(g->name, "int4-g128");  // canonical spelling of the default group
  EXPECT_EQ(g->kind, qs::FormatKind::IntGrid);
  EXPECT_EQ(qs::parse_quant_choice("int3-ch-sym")->name, "int3-ch-sym");
  EXPECT_FALSE(qs::parse_quant_choice("int").ok());
  EXPECT_FALSE(qs::parse_quant_choice("q4_z").ok());
}

// Storage per weight from ggml's block sizes (ggml-common.h: bytes per block / weights per block).
TEST(FormatTable, BitsPerWeightAreTheFormatsExactStorage) {
  const std::pair<const char*, double> ggml[] = {
      {"q8_0", 34.0 * 8 / 32},   {"q6_k", 210.0 * 8 / 256}, {"q5_k", 176.0 * 8 / 256}, {"q5_1", 24.0 * 8 / 32},
      {"q5_0", 22.0 * 8 / 32},   {"q4_k", 144.0 * 8 / 256}, {"q4_1", 20.0 * 8 / 32},  {"q4_0", 18.0 * 8 / 32},
      {"iq4_nl", 18.0 * 8 / 32}, {"q3_k", 110.0 * 8 / 256}, {"q2_k", 84.0 * 8 / 256}};
  for (const auto& [name, bits] : ggml) EXPECT_DOUBLE_EQ(qs::parse_quant_choice(name)->bits_per_weight(64, 4096), bits) << name;
  // MXFP4/MXFP6: 4 or 6 bits plus an 8-bit scale per 32; NVFP4: + an E4M3 per 16 and one F32 per tensor.
  EXPECT_DOUBLE_EQ(qs::parse_quant_choice("mxfp4")->bits_per_weight(64, 4096), 4.25);
  EXPECT_DOUBLE_EQ(qs::parse_quant_choice("mxfp6")->bits_per_weight(64, 4096), 6.25);
  EXPECT_DOUBLE_EQ(qs::parse_quant_choice("nvfp4")->bits_per_weight(64, 4096), 4.5 + 32.0 / (64 * 4096));
  // int4-g128 asymmetric: 4 + (16-bit scale + 16-bit zero) / 128.
  EXPECT_DOUBLE_EQ(qs::parse_quant_choice("int4-g128")->bits_per_weight(64, 4096), 4.0 + 32.0 / 128);
  EXPECT_DOUBLE_EQ(qs::parse_quant_choice("f16")->bits_per_weight(64, 4096), 16.0);
  EXPECT_DOUBLE_EQ(qs::parse_quant_choice("f32")->bits_per_weight(64, 4096), 32.0);
}

// Every row with a quantizer quantizes a shape it fits, refuses one it does not
// (naming the format), and gives a finite image no worse than 2-bit noise.
TEST(FormatTable, EveryQuantizerRowQuantizesAndRefusesShapesItCannotTake) {
  const std::int64_t rows = 8, cols = 256;
  const auto w = random_weights(rows * cols, 7);
  for (const qs::FormatRow& r : qs::format_table()) {
    const std::string name = r.kind == qs::FormatKind::IntGrid ? "int4-g64" : std::string(r.name);
    auto c = qs::parse_quant_choice(name);
    ASSERT_TRUE(c.ok()) << name;
    std::vector<float> out(w.size());
    auto q = c->fake_quantize(w.data(), rows, cols, out.data());
    if (!r.fake_quant) {
      ASSERT_FALSE(q.ok()) << name;
      EXPECT_EQ(q.error().code, qs::ErrorCode::Unsupported);
      continue;
    }
    ASSERT_TRUE(q.ok()) << name << ": " << q.error().message;
    double err = 0, ref = 0;
    for (std::size_t i = 0; i < w.size(); ++i) {
      ASSERT_TRUE(std::isfinite(out[i])) << name;
      err += (out[i] - w[i]) * (out[i] - w[i]);
      ref += w[i] * w[i];
    }
    // Grids under 3 bits/weight (Q2_K 0.119, IQ2_S 0.122 measured here) lose more than the others (< 0.1).
    EXPECT_LT(err, (c->bits_per_weight(rows, cols) < 3 ? 0.13 : 0.1) * ref) << name;
    if (r.block > 1) {
      auto bad = c->fits(r.block + 1);
      ASSERT_FALSE(bad.ok()) << name;
      EXPECT_NE(bad.error().message.find(std::to_string(r.block)), std::string::npos) << bad.error().message;
    }
  }
}

// MXFP6 E3M2 (OCP MX v1.0): the value grid by hand, then a block quantized by hand.
TEST(FormatTable, Mxfp6MatchesTheOcpE3M2GridByHand) {
  // Bias 3, 2 mantissa bits: subnormals k/16, the largest normal 1.75 * 2^4 = 28, no Inf/NaN.
  EXPECT_EQ(qs::e3m2_to_f32(0x01), 0.0625f);
  EXPECT_EQ(qs::e3m2_to_f32(0x03), 0.1875f);
  EXPECT_EQ(qs::e3m2_to_f32(0x04), 0.25f);
  EXPECT_EQ(qs::e3m2_to_f32(0x1F), 28.0f);
  EXPECT_EQ(qs::e3m2_to_f32(0x3F), -28.0f);
  for (std::uint8_t code = 0; code < 64; ++code) {
    EXPECT_EQ(qs::f32_to_e3m2(qs::e3m2_to_f32(code)), code) << int(code);
  }
  EXPECT_EQ(qs::e3m2_to_f32(qs::f32_to_e3m2(100.0f)), 28.0f);  // saturates
  EXPECT_EQ(qs::e3m2_to_f32(qs::f32_to_e3m2(4.5f)), 4.0f);     // tie between 4 and 5: even mantissa
  EXPECT_EQ(qs::e3m2_to_f32(qs::f32_to_e3m2(5.5f)), 6.0f);
  // A block with amax 1: scale 2^(0 - 4) = 1/16, so x/16 ... values land on the grid times 1/16.
  std::vector<float> w(32, 0.0f), out(32);
  w[0] = 1.0f;    // 16 -> 16 exactly
  w[1] = 0.3f;    // 4.8 -> 5 (step 1 in [4, 8)) -> 0.3125
  w[2] = -0.7f;   // -11.2 -> -12 (step 2 in [8, 16)) -> -0.75
  w[3] = 0.001f;  // 0.016 -> 0 (below half the smallest subnormal 1/16)
  ASSERT_TRUE(qs::fake_quantize_mxfp6(w.data(), 1, 32, out.data()).ok());
  EXPECT_EQ(out[0], 1.0f);
  EXPECT_EQ(out[1], 0.3125f);
  EXPECT_EQ(out[2], -0.75f);
  EXPECT_EQ(out[3], 0.0f);
  // The table's row is that quantizer.
  std::vector<float> via_row(32);
  ASSERT_TRUE(qs::parse_quant_choice("fp6-e3m2-g32")->fake_quantize(w.data(), 1, 32, via_row.data()).ok());
  EXPECT_EQ(via_row, out);
}

TEST(MethodTable, ParamsHaveRangesAndPlansRefuseWhatNoMethodTakes) {
  const qs::MethodRow* awq = qs::find_method("awq");
  ASSERT_NE(awq, nullptr);
  EXPECT_TRUE(awq->needs & qs::kNeedsHessian);
  EXPECT_FALSE(qs::check_method_params(*awq, {{"alpha_points", 1e9}}).ok());  // was a bad_alloc abort
  EXPECT_TRUE(qs::check_method_params(*awq, {{"alpha_points", 40}}).ok());
  EXPECT_FALSE(qs::check_method_params(*qs::find_method("gptq"), {{"act_order", 0.5}}).ok());
  EXPECT_DOUBLE_EQ(qs::find_method("gptq")->param({}, "percdamp"), 0.01);
  EXPECT_EQ(qs::find_method("nope"), nullptr);
  auto typo = qs::parse_plan(R"({"version":1,"default":{"format":"q4_k","method":"clip","params":{"ratio_steps":5}}})", "p");
  ASSERT_FALSE(typo.ok());
  EXPECT_NE(typo.error().message.find("ratio_steps"), std::string::npos);
  auto range = qs::parse_plan(R"({"version":1,"default":{"format":"q4_k","method":"awq","params":{"alpha_points":1e9}}})", "p");
  ASSERT_FALSE(range.ok());
  EXPECT_NE(range.error().message.find("alpha_points"), std::string::npos);
}

struct CapabilityCase {
  qs::Consumer consumer;
  const char* format;
  const char* method;
  std::int64_t cols;
  const char* refusal;  // nullptr: supported; else a word the reason must hold
};

TEST(Capability, AnswersFromTheRowsWithTheReason) {
  using C = qs::Consumer;
  const CapabilityCase cases[] = {
      {C::GgufExport, "q4_k", "rtn", 256, nullptr},
      {C::GgufExport, "q4_k", "gptq", 256, nullptr},
      {C::GgufExport, "q4_k", "clip", 256, nullptr},
      {C::GgufExport, "q4_k", "gptq", 172, nullptr},  // written as F16 (llama.cpp's fallback): nothing to refuse
      {C::GgufExport, "q4_k", "awq", 256, "not applied by gguf"},
      {C::GgufExport, "q4_0", "outliers", 256, "not applied by gguf"},
      {C::GgufExport, "nf4", "rtn", 256, "GGUF"},
      {C::GgufExport, "iq4_nl", "gptq", 256, "IQ4_NL"},
      {C::GgufExport, "q3_k", "rtn", 256, nullptr},
      {C::GgufExport, "q3_k", "gptq", 256, "Q3_K"},  // GPTQ has no Q3_K grid (its sub-scales are fitted jointly)
      {C::Measure, "iq4_nl", "gptq", 256, "IQ4_NL"},
      {C::Measure, "f16", "gptq", 256, nullptr},  // a copy: the method does not reach it
      {C::GgufExport, "q3_k", "rtn", 172, nullptr},  // written as F16: no Q3_K quantizer needed
      {C::Measure, "nf4", "clip", 256, "cannot target"},
      {C::Measure, "mxfp6", "awq", 256, nullptr},
      {C::Measure, "mxfp6", "rtn", 40, "MXFP6"},
      {C::Measure, "q4_k", "smoothquant", 256, "not applied by measure"},
      {C::Evaluate, "int8-ch-sym", "smoothquant", 256, nullptr},
      {C::Hdf5Export, "mxfp6", "rtn", 256, "HDF5"},
      {C::Hdf5Export, "f32", "rtn", 256, nullptr},  // a copy
      {C::GptqExport, "f16", "gptq", 256, nullptr},  // kept: left in F16
      {C::Hdf5Export, "nf4", "outliers", 256, nullptr},
      {C::Hdf5Export, "int4-g64", "gptq", 256, "not applied by hdf5"},
      {C::FakeQuantExport, "mxfp6", "rtn", 256, nullptr},
      {C::GptqExport, "int4-g128", "rtn", 256, nullptr},
      {C::GptqExport, "int4-g128", "gptq", 256, nullptr},
      {C::GptqExport, "int4-g128", "awq", 256, "not applied by gptq"},
      {C::GptqExport, "int4-g32", "rtn", 40, "multiple of 32"},
      {C::GptqExport, "int5-g128", "rtn", 256, "2, 3, 4 or 8"},
      {C::GptqExport, "int4-tensor", "rtn", 256, "per-tensor"},
      {C::GptqExport, "q4_0", "rtn", 256, "does not pack"},
  };
  for (const auto& c : cases) {
    auto f = qs::parse_quant_choice(c.format);
    ASSERT_TRUE(f.ok()) << c.format;
    const auto r = qs::supports(c.consumer, *f, *qs::find_method(c.method), c.cols);
    const std::string what = std::string(qs::consumer_name(c.consumer)) + " " + c.format + "+" + c.method;
    if (!c.refusal) {
      EXPECT_TRUE(r.ok()) << what << ": " << r.error().message;
    } else {
      ASSERT_FALSE(r.ok()) << what;
      EXPECT_NE(r.error().message.find(c.refusal), std::string::npos) << what << ": " << r.error().message;
    }
  }
  EXPECT_EQ(qs::gguf_storage_of(*qs::parse_quant_choice("q4_k"), 160)->name, "q5_0");
  EXPECT_EQ(qs::gguf_storage_of(*qs::parse_quant_choice("q6_k"), 160)->name, "q8_0");
  EXPECT_EQ(qs::gguf_storage_of(*qs::parse_quant_choice("q4_k"), 172)->name, "f16");
}

// The plan editor's and `measure`'s apply (quantize_with_method) accepts
// exactly what the query says, for every format row × method, given statistics.
TEST(Capability, MeasurementAcceptsExactlyWhatTheQuerySays) {
  const std::int64_t rows = 16, cols = 256;
  const auto w = random_weights(rows * cols, 3);
  std::vector<float> h(static_cast<std::size_t>(cols * cols), 0.0f), mean(static_cast<std::size_t>(cols), 0.5f);
  for (std::int64_t i = 0; i < cols; ++i) h[static_cast<std::size_t>(i * cols + i)] = 1.0f + 0.01f * static_cast<float>(i);
  const qs::LayerInputStats stats{h.data(), mean.data()};
  for (const qs::FormatRow& r : qs::format_table()) {
    const std::string name = r.kind == qs::FormatKind::IntGrid ? "int4-g64" : std::string(r.name);
    const auto f = *qs::parse_quant_choice(name);
    for (const qs::MethodRow& m : qs::method_table()) {
      qs::LayerConfig config{name, std::string(m.name), {}};
      if (m.id == qs::MethodId::Awq) config.params["alpha_points"] = 4;  // fast; the answer is the same
      const bool said = qs::supports(qs::Consumer::Measure, f, m, cols).ok();
      auto got = qs::quantize_with_method(w.data(), rows, cols, f, config, stats, qs::OpContext::none());
      EXPECT_EQ(got.ok(), said) << name << "+" << m.name << ": " << (got ? std::string("accepted") : got.error().message);
    }
  }
}

// The size account is the export's own decision: predicted bytes are the
// file's bytes exactly, for a uniform, a mixed and a fallback-heavy plan.
TEST(SizeAccount, GgufPredictionIsTheWrittenFileToTheByte) {
  QS_REQUIRE_SHARED();
  auto model = qs::open_model(shared + "/models/stories260K/hf");
  ASSERT_TRUE(model.ok()) << model.error().message;
  qs::test::TempDir tmp;
  for (const char* preset : {"q8_0", "q4_k_m", "q4_k", "nf4"}) {
    auto plan = qs::plan_preset(preset, *model);
    ASSERT_TRUE(plan.ok());
    qs::GgufExportOptions o;
    o.plan = &*plan;
    auto predicted = qs::predict_gguf(*model, o);
    if (std::string(preset) == "nf4") {  // NF4 has no GGUF type: refused before anything is read
      ASSERT_FALSE(predicted.ok());
      EXPECT_NE(predicted.error().message.find("GGUF"), std::string::npos) << predicted.error().message;
      continue;
    }
    ASSERT_TRUE(predicted.ok()) << predicted.error().message;
    const std::string out = tmp.file(std::string(preset) + ".gguf");
    auto written = qs::export_gguf(*model, out, o, qs::OpContext::none());
    ASSERT_TRUE(written.ok()) << written.error().message;
    EXPECT_EQ(predicted->bytes, std::filesystem::file_size(out)) << preset;
    EXPECT_EQ(predicted->bytes, written->bytes) << preset;
    EXPECT_DOUBLE_EQ(predicted->bits_per_weight(), written->bits_per_weight()) << preset;
    // bits/weight over every tensor the file holds: recomputed from the file's own tensor list.
    auto back = qs::open_model(out);
    ASSERT_TRUE(back.ok());
    std::uint64_t bytes = 0, elements = 0;
    for (const auto& t : back->tensors) {
      bytes += t.nbytes;
      elements += static_cast<std::uint64_t>(t.numel());
    }
    EXPECT_DOUBLE_EQ(predicted->bits_per_weight(), 8.0 * static_cast<double>(bytes) / static_cast<double>(elements)) << preset;
  }
}

// The GPTQ checkpoint's model.safetensors, predicted from headers alone, is the written file to the byte.
TEST(SizeAccount, GptqPredictionIsTheWrittenFile) {
  qs::test::TempDir tmp;
  auto demo = qs::open_model(qs::test::write_small_demo(tmp.path() / "demo", 2, 256, 512));
  ASSERT_TRUE(demo.ok()) << demo.error().message;
  struct Setting {
    int bits, group;
    bool sym;
  };
  int n = 0;
  for (const Setting s : {Setting{4, 128, true}, Setting{8, -1, false}, Setting{3, 64, false}, Setting{2, 32, true}}) {
    qs::GptqExportOptions o;
    o.bits = s.bits;
    o.group_size = s.group;
    o.sym = s.sym;
    auto predicted = qs::predict_gptq(*demo, o);
    ASSERT_TRUE(predicted.ok()) << predicted.error().message;
    std::string name = "gptq";
    name += std::to_string(n++);  // (GCC 12 warns falsely on "literal" + std::string here)
    const auto dir = tmp.path() / name;
    auto written = qs::export_gptq(*demo, dir.string(), o, qs::OpContext::none());
    ASSERT_TRUE(written.ok()) << written.error().message;
    EXPECT_EQ(predicted->bytes, std::filesystem::file_size(dir / "model.safetensors")) << s.bits << "/" << s.group;
    EXPECT_EQ(predicted->bytes, written->bytes);
    int quantized = 0;
    for (const auto& m : written->modules) quantized += m.quantized;
    EXPECT_EQ(predicted->quantized_modules, static_cast<std::size_t>(quantized));
    EXPECT_GT(predicted->bits_per_weight(), 0.0);
    EXPECT_LT(predicted->bits_per_weight(), 16.0);
  }
}

}  // namespace
