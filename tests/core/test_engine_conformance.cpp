// One engine: for the same (tensor, config, calibration) every consumer gets
// the same dequantized weights, bit for bit — the plan editor's measurement
// (quantize_with_method on what is stored), `measure --plan` and `eval` (the
// per-layer apply, fake_quantize_planned), the fake-quant export read back
// from its file, and the GGUF export read back and decoded. Every consumer
// accepts exactly what the capability query says.
#include <gtest/gtest.h>

#include <cstring>
#include <map>

#include "calib/layer_input_stats.h"
#include "calib/plan_model.h"
#include "export/fake_quant_export.h"
#include "export/gguf_export.h"
#include "io/open_model.h"
#include "quant/capability.h"
#include "quant/layer_method.h"
#include "quant/measure.h"
#include "quant/method_table.h"
#include "synthetic_calibration.h"
#include "test_files.h"

namespace {

std::vector<float> f32_of(const qs::TensorInfo& t) {
  std::vector<float> w(static_cast<std::size_t>(t.numel()));
  EXPECT_TRUE(qs::tensor_to_f32(t, w.data()).ok()) << t.name;
  return w;
}

const qs::TensorInfo* find_tensor(const qs::Model& m, const std::string& name) {
  for (const auto& t : m.tensors)
    if (t.name == name) return &t;
  return nullptr;
}

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

// Exactly equal values: ggml's decoder gives -0 for a zero code under a negative
// block scale where GPTQ's walk gives +0 (the same number; no other difference allowed).
bool same_values(const std::vector<float>& a, const std::vector<float>& b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (!(a[i] == b[i])) return false;
  return true;
}

TEST(EngineConformance, EveryConsumerGetsTheSameWeights) {
  QS_REQUIRE_SHARED();
  auto model = qs::open_model(shared + "/models/stories260K/hf");
  ASSERT_TRUE(model.ok()) << model.error().message;
  // Hessians of the model's widths (64 hidden, 172 intermediate), shared by every consumer.
  const qs::ActivationCapture hessians = qs::test::synthetic_capture(model->arch.num_layers, 64, 172);
  // v (64 wide: Q4_K falls back to Q5_0) and down (172 wide: every ggml type falls back to F16),
  // as the GGUF file names them (not permuted: q and k are).
  const std::map<std::string, std::string> gguf_name = {{"model.layers.1.self_attn.v_proj", "blk.1.attn_v.weight"},
                                                        {"model.layers.1.mlp.down_proj", "blk.1.ffn_down.weight"},
                                                        {"model.layers.3.mlp.up_proj", "blk.3.ffn_up.weight"}};
  const std::pair<const char*, const char*> configs[] = {
      {"q4_0", "rtn"},  {"q4_0", "clip"},     {"q4_0", "gptq"},    {"q4_k", "rtn"},       {"q4_k", "gptq"},
      {"q8_0", "clip"}, {"int4-g32", "rtn"},  {"int4-g32", "gptq"}, {"int4-ch", "clip"},  {"int4-ch", "outliers"},
      {"nf4", "rtn"},   {"mxfp6", "rtn"},     {"iq4_nl", "rtn"}};
  qs::test::TempDir tmp;
  int compared = 0;
  for (const auto& [format, method] : configs) {
    qs::Plan plan;
    plan.base = {format, method, {}};
    const auto choice = qs::parse_quant_choice(format);
    ASSERT_TRUE(choice.ok());
    const qs::MethodRow& m = *qs::find_method(method);
    const std::string label = std::string(format) + "+" + method;

    // The exports, as far as the capability query lets each take the pair.
    std::optional<qs::Model> fq_back, gguf_back;
    const std::string fq_dir = tmp.file("fq-" + std::to_string(compared));
    qs::FakeQuantOptions fo;
    fo.dtype = qs::DType::F32;  // the dequantized weights exactly
    fo.capture = &hessians;
    auto fq = qs::export_fake_quant(*model, plan, fq_dir, fo, qs::OpContext::none());
    ASSERT_EQ(fq.ok(), qs::supports(qs::Consumer::FakeQuantExport, *choice, m).ok())
        << label << ": " << (fq ? "written" : fq.error().message);
    if (fq) {
      auto back = qs::open_model(fq_dir);
      ASSERT_TRUE(back.ok()) << back.error().message;
      fq_back = std::move(*back);
    }
    const std::string gguf_path = tmp.file("g-" + std::to_string(compared) + ".gguf");
    qs::GgufExportOptions go;
    go.plan = &plan;
    go.capture = &hessians;
    auto gguf = qs::export_gguf(*model, gguf_path, go, qs::OpContext::none());
    ASSERT_EQ(gguf.ok(), qs::supports(qs::Consumer::GgufExport, *choice, m).ok())
        << label << ": " << (gguf ? "written" : gguf.error().message);
    if (gguf) {
      auto back = qs::open_model(gguf_path);
      ASSERT_TRUE(back.ok()) << back.error().message;
      gguf_back = std::move(*back);
    }

    for (const auto& [layer_name, gguf_tensor] : gguf_name) {
      const qs::Layer* layer = nullptr;
      for (const auto& l : model->layers)
        if (l.name == layer_name) layer = &l;
      ASSERT_NE(layer, nullptr) << layer_name;
      const qs::TensorInfo& t = model->tensors[layer->weight];
      const std::vector<float> w = f32_of(t);
      const qs::LayerInputStats stats = qs::layer_input_stats(*layer, t.cols(), &hessians);
      const std::string what = label + " on " + layer_name;

      // `measure --plan` and `eval`: the per-layer apply.
      std::vector<float> applied = w;
      qs::PlannedWeight pw;
      auto r = qs::fake_quantize_planned(qs::config_for_layer(*layer, plan.base), t, applied, pw, qs::OpContext::none(), stats);
      ASSERT_TRUE(r.ok()) << what << ": " << r.error().message;
      if (pw.applied == "kept") continue;  // the format does not fit this layer (every consumer copies it)

      // The plan editor: the method on what is stored (a ggml type's fallback where rows are not whole blocks).
      qs::QuantChoice stored = *choice;
      if (choice->kind == qs::FormatKind::Ggml) stored = *qs::gguf_storage_of(*choice, t.cols());
      std::vector<float> editor;
      if (stored.keeps_precision()) {
        editor = applied;  // F16 rounding: compared through the exports below
      } else {
        auto e = qs::quantize_with_method(w.data(), t.rows(), t.cols(), stored, plan.base, stats, qs::OpContext::none());
        ASSERT_TRUE(e.ok()) << what << ": " << e.error().message;
        editor = std::move(e->dequantized);
      }
      EXPECT_TRUE(same_bits(editor, applied)) << what << ": plan editor vs measure/eval";

      if (fq_back) {
        const qs::TensorInfo* f = find_tensor(*fq_back, t.name);
        ASSERT_NE(f, nullptr) << what;
        EXPECT_TRUE(same_bits(f32_of(*f), applied)) << what << ": fake-quant file vs measure/eval";
      }
      if (gguf_back) {
        const qs::TensorInfo* g = find_tensor(*gguf_back, gguf_tensor);
        ASSERT_NE(g, nullptr) << what;
        EXPECT_TRUE(same_values(f32_of(*g), applied)) << what << ": GGUF file (" << qs::dtype_name(g->dtype)
                                                        << ") vs measure/eval";
      }
      ++compared;
    }
  }
  EXPECT_GE(compared, 30);
}

}  // namespace
