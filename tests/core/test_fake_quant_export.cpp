// Fake-quant export: every planned layer holds exactly dequantize(quantize(W))
// rounded to the output type (checked against RTN computed here), everything
// else is the source rounded to the output type, the plan is in the metadata.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "demo/demo_model.h"
#include "export/fake_quant_export.h"
#include "io/open_model.h"
#include "io/safetensors.h"
#include "model/convert.h"
#include "quant/ggml_dequant.h"
#include "quant/ggml_quantize.h"
#include "quant/int_grid.h"
#include "quant/layer_method.h"
#include "quant/named_format.h"
#include "export_checks.h"
#include "synthetic_calibration.h"
#include "test_files.h"
#include "util/half.h"

namespace {

namespace fs = std::filesystem;

TEST(FakeQuantExport, LayersHoldTheirDequantizedWeights) {
  const fs::path root = fs::temp_directory_path() / ("qs_fq_" + std::to_string(::getpid()));
  fs::remove_all(root);
  auto model = qs::open_model(qs::test::write_small_demo(root / "src", 2, 128, 352));
  ASSERT_TRUE(model.ok()) << model.error().message;
  auto plan = qs::parse_plan(R"({"version":1,"default":{"format":"int4-g64"},
      "overrides":[{"match":{"role":"down"},"format":"q4_0"},{"match":{"role":"embed"},"format":"f16"}]})", "t");
  ASSERT_TRUE(plan.ok()) << plan.error().message;
  auto report = qs::export_fake_quant(*model, *plan, (root / "out").string(), {qs::DType::F16}, qs::OpContext::none());
  ASSERT_TRUE(report.ok()) << report.error().message;
  auto file = qs::read_safetensors((root / "out" / "model.safetensors").string());
  ASSERT_TRUE(file.ok()) << file.error().message;
  ASSERT_EQ(file->tensors.size(), model->tensors.size());
  EXPECT_EQ(qs::parse_plan(file->metadata.at("quantscope_plan"), "meta").value(), *plan);
  const auto config = nlohmann::json::parse(qs::test::read_bytes((root / "out" / "config.json").string()));
  EXPECT_EQ(config["torch_dtype"], "float16");

  int quantized = 0;
  std::map<std::string, double> readback;  // layer -> SQNR of what the file holds, computed here
  for (const auto& out : file->tensors) {
    ASSERT_EQ(out.dtype, qs::DType::F16) << out.name;
    const qs::TensorInfo& src = model->tensors[*model->find_tensor(out.name)];
    std::vector<float> w(src.numel()), expect(src.numel());
    ASSERT_TRUE(qs::convert_to_f32(src.dtype, src.bytes().data(), w.size(), w.data()).ok());
    expect = w;
    const bool linear = out.name.find("_proj") != std::string::npos || out.name == "lm_head.weight";
    if (linear) {
      ++quantized;
      if (out.name.find("down_proj") != std::string::npos) {  // Q4_0 through the ggml reference quantizer
        std::vector<std::byte> blocks(*qs::dtype_bytes(qs::DType::Q4_0, w.size()));
        ASSERT_TRUE(qs::quantize_ggml_blocks(qs::DType::Q4_0, w.data(), w.size() / 32, blocks.data()).ok());
        ASSERT_TRUE(qs::dequantize_ggml_blocks(qs::DType::Q4_0, blocks.data(), w.size() / 32, expect.data()));
      } else {
        auto q = qs::rtn_int(w.data(), src.rows(), src.cols(), {4, false, 64});
        ASSERT_TRUE(q.ok());
        expect = qs::dequantize_int(*q);
      }
    }
    const auto* got = reinterpret_cast<const std::uint16_t*>(out.bytes().data());
    std::size_t same = 0;
    double err = 0, ref = 0;  // of the file's F16 values against the source
    for (std::size_t i = 0; i < expect.size(); ++i) {
      same += got[i] == qs::f32_to_f16(expect[i]);
      const double d = static_cast<double>(w[i]) - qs::f16_to_f32(got[i]);
      err += d * d;
      ref += static_cast<double>(w[i]) * w[i];
    }
    EXPECT_EQ(same, expect.size()) << out.name;
    if (linear) readback[out.name.substr(0, out.name.size() - 7)] = 10.0 * std::log10(ref / err);
  }
  EXPECT_EQ(quantized, 2 * 7 + 1);
  // Verified on read-back, each layer's error re-measured on the file's F16
  // values: the quantizer's error with F16 rounding (~66 dB) on top.
  EXPECT_TRUE(report->verified);
  for (const auto& l : report->layers) {
    if (l.name != "model.embed_tokens") {
      EXPECT_TRUE(l.quantized) << l.name << ": " << l.reason;
      ASSERT_TRUE(readback.count(l.name)) << l.name;
      EXPECT_NEAR(l.readback_sqnr_db, readback[l.name], 1e-6) << l.name;
      EXPECT_NEAR(l.readback_sqnr_db, l.sqnr_db, 0.01) << l.name;
      EXPECT_NE(l.readback_sqnr_db, l.sqnr_db) << l.name << ": not measured on the F16 file";
    } else {
      EXPECT_TRUE(std::isnan(l.readback_sqnr_db)) << l.name;
    }
  }
  fs::remove_all(root);
}

// A byte of the written file changed between the write and the read-back
// check (the test hook): the export fails naming the file and the tensor, and
// neither the destination nor the staging directory is left.
TEST(FakeQuantExport, ACorruptedTensorFailsTheExportAndLeavesNothing) {
  qs::test::TempDir dir;
  auto model = qs::open_model(qs::test::write_small_demo(dir.path() / "src", 1, 64, 96));
  ASSERT_TRUE(model.ok()) << model.error().message;
  auto plan = qs::parse_plan(R"({"version":1,"default":{"format":"int4-g32"}})", "t");
  ASSERT_TRUE(plan.ok()) << plan.error().message;
  const std::string victim = "model.layers.0.mlp.up_proj.weight";
  std::string staged;
  qs::FakeQuantOptions o;
  o.after_write = [&](const std::string& path) {
    staged = path;
    EXPECT_TRUE(qs::test::flip_safetensors_byte(path, victim)) << victim;
  };
  const fs::path out = dir.path() / "out";
  auto r = qs::export_fake_quant(*model, *plan, out.string(), o, qs::OpContext::none());
  ASSERT_FALSE(r.ok());
  qs::test::expect_verification_failure(r.error().message, out, staged, victim);
  for (const auto& e : fs::directory_iterator(dir.path())) EXPECT_EQ(e.path().filename(), "src") << e.path();

  // The same export without the corruption goes through, verified.
  auto ok = qs::export_fake_quant(*model, *plan, out.string(), {}, qs::OpContext::none());
  ASSERT_TRUE(ok.ok()) << ok.error().message;
  EXPECT_TRUE(ok->verified);
}

TEST(FakeQuantExport, RefusesMethodsThatNeedCalibrationAndLeavesNothing) {
  const fs::path root = fs::temp_directory_path() / ("qs_fq_refuse_" + std::to_string(::getpid()));
  fs::remove_all(root);
  auto model = qs::open_model(qs::test::write_small_demo(root / "src", 1, 128, 256));
  ASSERT_TRUE(model.ok());
  auto plan = qs::plan_preset("gptq-w4g128", *model);
  ASSERT_TRUE(plan.ok());
  auto r = qs::export_fake_quant(*model, *plan, (root / "out").string(), {}, qs::OpContext::none());
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("method \"gptq\" needs the layer input's Hessian: give calibration"), std::string::npos)
      << r.error().message;
  EXPECT_FALSE(fs::exists(root / "out"));
  fs::remove_all(root);
}

// With calibration every layer holds its method's result: GPTQ on the H of
// its input (quantize_with_method, called here with the same H), outlier
// keeping ranked by it; the embedding and the head, whose inputs have no H,
// fall back to RTN and say so.
TEST(FakeQuantExport, CalibratedMethodsGiveTheirOwnResult) {
  qs::test::TempDir dir;
  const int hidden = 128, inter = 256;
  auto model = qs::open_model(qs::test::write_small_demo(dir.path() / "src", 1, hidden, inter));
  ASSERT_TRUE(model.ok()) << model.error().message;
  const qs::ActivationCapture hs = qs::test::synthetic_capture(1, hidden, inter);
  auto plan = qs::parse_plan(R"({"version":1,"default":{"format":"int4-g64","method":"gptq"},
      "overrides":[{"match":{"role":"down"},"format":"q4_0","method":"outliers","params":{"fraction":0.02}}]})", "t");
  ASSERT_TRUE(plan.ok()) << plan.error().message;
  qs::FakeQuantOptions options;
  options.dtype = qs::DType::F32;  // the method's values exactly
  options.capture = &hs;
  const fs::path out = dir.path() / "out";
  auto report = qs::export_fake_quant(*model, *plan, out.string(), options, qs::OpContext::none());
  ASSERT_TRUE(report.ok()) << report.error().message;
  auto file = qs::read_safetensors((out / "model.safetensors").string());
  ASSERT_TRUE(file.ok()) << file.error().message;
  int checked = 0;
  for (const qs::FakeQuantLayer& l : report->layers) {
    ASSERT_TRUE(l.quantized) << l.name << ": " << l.reason;
    const qs::Layer& layer = model->layers[static_cast<std::size_t>(&l - report->layers.data())];
    const qs::TensorInfo& src = model->tensors[layer.weight];
    const std::vector<float>* h = hs.hessian_for(layer.role, layer.block);
    const bool head_or_embed = layer.role == qs::LayerRole::Embed || layer.role == qs::LayerRole::LmHead;
    EXPECT_EQ(l.method, layer.role == qs::LayerRole::Down ? "outliers" : head_or_embed ? "rtn" : "gptq") << l.name;
    std::vector<float> w(src.numel());
    ASSERT_TRUE(qs::convert_to_f32(src.dtype, src.bytes().data(), w.size(), w.data()).ok());
    const qs::QuantChoice choice = qs::parse_quant_choice(l.format).value();
    const qs::LayerConfig cfg{l.format, l.method, l.method == "outliers" ? std::map<std::string, double>{{"fraction", 0.02}}
                                                                         : std::map<std::string, double>{}};
    auto expect = qs::quantize_with_method(w.data(), src.rows(), src.cols(), choice, cfg,
                                           {head_or_embed ? nullptr : h->data(), nullptr}, qs::OpContext::none());
    ASSERT_TRUE(expect.ok()) << expect.error().message;
    const auto it = std::find_if(file->tensors.begin(), file->tensors.end(), [&](const qs::TensorInfo& x) { return x.name == src.name; });
    ASSERT_NE(it, file->tensors.end()) << src.name;
    const qs::TensorInfo& t = *it;
    std::vector<float> got(src.numel());
    ASSERT_TRUE(qs::convert_to_f32(qs::DType::F32, t.bytes().data(), got.size(), got.data()).ok());
    EXPECT_EQ(std::memcmp(got.data(), expect->dequantized.data(), got.size() * 4), 0) << l.name;
    ++checked;
  }
  EXPECT_EQ(checked, 7 + 2);  // q k v o gate up down, the embedding and the head
}

}  // namespace

namespace {

// NF4, FP8 and MXFP4 layers in a fake-quant export: each layer holds
// rtn_named_format's dequantized weight (the element formats' own reference,
// checked against bitsandbytes/OCP levels in test_formats), rounded to F32 exactly.
TEST(FakeQuantExport, NamedFormatsAreExported) {
  const fs::path root = fs::temp_directory_path() / ("qs_fq_named_" + std::to_string(::getpid()));
  fs::remove_all(root);
  auto model = qs::open_model(qs::test::write_small_demo(root / "src", 1, 128, 352));
  ASSERT_TRUE(model.ok()) << model.error().message;
  auto plan = qs::parse_plan(R"({"version":1,"default":{"format":"nf4"},
      "overrides":[{"match":{"role":"down"},"format":"fp8-e4m3-ch"},{"match":{"role":"q"},"format":"mxfp4"},
                   {"match":{"role":"embed"},"format":"f16"}]})", "t");
  ASSERT_TRUE(plan.ok()) << plan.error().message;
  auto report = qs::export_fake_quant(*model, *plan, (root / "out").string(), {qs::DType::F32}, qs::OpContext::none());
  ASSERT_TRUE(report.ok()) << report.error().message;
  auto file = qs::read_safetensors((root / "out" / "model.safetensors").string());
  ASSERT_TRUE(file.ok()) << file.error().message;
  int checked = 0;
  for (const auto& out : file->tensors) {
    const bool linear = out.name.find("_proj") != std::string::npos;
    if (!linear) continue;
    const qs::TensorInfo& src = model->tensors[*model->find_tensor(out.name)];
    std::vector<float> w(src.numel()), expect(src.numel());
    ASSERT_TRUE(qs::convert_to_f32(src.dtype, src.bytes().data(), w.size(), w.data()).ok());
    const qs::NamedFormat f = out.name.find("down_proj") != std::string::npos ? qs::NamedFormat::Fp8E4M3Ch
                              : out.name.find("q_proj") != std::string::npos  ? qs::NamedFormat::Mxfp4
                                                                               : qs::NamedFormat::Nf4;
    ASSERT_TRUE(qs::rtn_named_format(f, w.data(), src.rows(), src.cols(), expect.data()).ok());
    ASSERT_EQ(out.bytes().size(), expect.size() * 4);
    EXPECT_EQ(std::memcmp(out.bytes().data(), expect.data(), out.bytes().size()), 0) << out.name;
    EXPECT_NE(std::memcmp(out.bytes().data(), w.data(), out.bytes().size()), 0) << out.name << " was not quantized";
    ++checked;
  }
  EXPECT_EQ(checked, 7);
  EXPECT_TRUE(report->verified);
  for (const auto& l : report->layers)
    if (l.name.find("_proj") != std::string::npos) {
      EXPECT_TRUE(l.quantized) << l.name << ": " << l.reason;
      // F32 output holds the dequantized weight exactly: the same error read back.
      EXPECT_EQ(l.readback_sqnr_db, l.sqnr_db) << l.name;
    }
  fs::remove_all(root);
}

}  // namespace
