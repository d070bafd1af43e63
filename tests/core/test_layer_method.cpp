// A plan row's method applied to one layer: each method's result equals the
// method's own function called directly (so the plan editor and plan evaluation
// measure what an export writes), parameters reach the method, and missing
// statistics or unfit targets are refused with the reason.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include "method_case.h"
#include "quant/awq.h"
#include "quant/clip_search.h"
#include "quant/fake_quant.h"
#include "quant/gptq.h"
#include "quant/layer_method.h"
#include "quant/metrics.h"
#include "quant/outlier_keep.h"

namespace {

using qs::test::heavy_tailed;

struct Layer {
  static constexpr std::int64_t rows = 48, cols = 256, tokens = 512;
  std::vector<float> w = heavy_tailed(rows * cols, 4.0f, 3), x;
  qs::ActivationStats st;
  Layer() {
    std::mt19937 rng(9);
    std::normal_distribution<float> n(0.0f, 1.0f);
    x.resize(tokens * cols);
    for (std::int64_t t = 0; t < tokens; ++t)
      for (std::int64_t c = 0; c < cols; ++c)
        x[static_cast<std::size_t>(t * cols + c)] = n(rng) * (c % 29 == 0 ? 20.0f : 1.0f);  // outlier inputs
    st = qs::activation_stats(x.data(), tokens, cols);
  }
  qs::LayerInputStats stats() const { return {st.h.data(), st.mean_abs.data()}; }
};

qs::QuantChoice choice(const char* name) {
  auto c = qs::parse_quant_choice(name);
  if (!c) throw std::runtime_error(c.error().message);
  return *c;
}

bool same(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

TEST(LayerMethod, EachMethodIsItsOwnFunction) {
  const Layer l;
  qs::OpContext& ctx = qs::OpContext::none();
  // rtn: fake_quantize, with the output error from H.
  {
    auto r = qs::quantize_with_method(l.w.data(), l.rows, l.cols, choice("q4_0"), {"q4_0", "rtn", {}}, l.stats(), ctx);
    ASSERT_TRUE(r.ok()) << r.error().message;
    std::vector<float> expect(l.w.size());
    ASSERT_TRUE(qs::fake_quantize(qs::QuantTarget::ggml(qs::DType::Q4_0), l.w.data(), l.rows, l.cols, expect.data()).ok());
    EXPECT_TRUE(same(r->dequantized, expect));
    EXPECT_DOUBLE_EQ(r->rel_output_error, qs::relative_output_error_h(l.w.data(), expect.data(), l.rows, l.cols, l.st.h.data()));
    EXPECT_EQ(r->figures.bits_per_weight, 4.5);
  }
  // clip, int grid, diag(H)-weighted, with its parameters.
  {
    auto r = qs::quantize_with_method(l.w.data(), l.rows, l.cols, choice("int3-g64"),
                                      {"int3-g64", "clip", {{"min_ratio", 0.6}, {"step", 0.05}}}, l.stats(), ctx);
    ASSERT_TRUE(r.ok()) << r.error().message;
    std::vector<float> diag(l.cols);
    for (std::int64_t c = 0; c < l.cols; ++c) diag[static_cast<std::size_t>(c)] = l.st.h[static_cast<std::size_t>(c * l.cols + c)];
    qs::ClipSearchSpec spec;
    spec.grid = {3, false, 64};
    spec.min_ratio = 0.6f;
    spec.step = 0.05f;
    spec.column_weight = diag.data();
    auto expect = qs::clip_search(l.w.data(), l.rows, l.cols, spec);
    ASSERT_TRUE(expect.ok());
    EXPECT_TRUE(same(r->dequantized, expect->dequantized));
  }
  // gptq onto an int grid and onto ggml Q4_1, with percdamp and act-order (static groups).
  for (const char* f : {"int4-g128", "q4_1"}) {
    const qs::LayerConfig cfg{f, "gptq", {{"percdamp", 0.05}, {"act_order", 1}, {"static_groups", 1}}};
    auto r = qs::quantize_with_method(l.w.data(), l.rows, l.cols, choice(f), cfg, l.stats(), ctx);
    ASSERT_TRUE(r.ok()) << f << ": " << r.error().message;
    qs::GptqSpec spec;
    spec.percdamp = 0.05;
    spec.act_order = spec.static_groups = true;
    if (std::string(f) == "q4_1") spec.block_type = qs::DType::Q4_1;
    else spec.grid = {4, false, 128};
    auto expect = qs::gptq(l.w.data(), l.rows, l.cols, l.st.h.data(), spec, ctx);
    ASSERT_TRUE(expect.ok());
    EXPECT_TRUE(same(r->dequantized, expect->dequantized)) << f;
  }
  // awq onto NF4 with fewer alpha points and no clip.
  {
    auto r = qs::quantize_with_method(l.w.data(), l.rows, l.cols, choice("nf4"), {"nf4", "awq", {{"alpha_points", 10}, {"clip", 0}}},
                                      l.stats(), ctx);
    ASSERT_TRUE(r.ok()) << r.error().message;
    qs::AwqSpec spec;
    spec.target = qs::QuantTarget::named_format(qs::NamedFormat::Nf4);
    spec.grid = 10;
    spec.clip = false;
    auto expect = qs::awq(l.w.data(), l.rows, l.cols, l.st.h.data(), l.st.mean_abs.data(), spec);
    ASSERT_TRUE(expect.ok());
    EXPECT_TRUE(same(r->dequantized, expect->dequantized));
  }
}

// outliers: outlier_keep with the row's fraction; single weights ranked by
// |w| sqrt(H_jj) when calibrated, by |w| without; whole channels by mean |x|
// when calibrated, by max |w| without. Bits/weight count the side table.
TEST(LayerMethod, OutliersIsOutlierKeepWithItsRanking) {
  const Layer l;
  qs::OpContext& ctx = qs::OpContext::none();
  std::vector<float> sqrt_diag(static_cast<std::size_t>(l.cols));
  for (std::int64_t c = 0; c < l.cols; ++c)
    sqrt_diag[static_cast<std::size_t>(c)] = std::sqrt(l.st.h[static_cast<std::size_t>(c * l.cols + c)]);
  struct Case {
    const char* format;
    double channels;
    bool calibrated;
    qs::OutlierSpec::Select select;
  };
  for (const Case& k : {Case{"int4-g128", 0, true, qs::OutlierSpec::Select::Weights},
                        Case{"q4_0", 0, false, qs::OutlierSpec::Select::Weights},
                        Case{"nf4", 1, true, qs::OutlierSpec::Select::InputChannelsByActivation},
                        Case{"int3-g64", 1, false, qs::OutlierSpec::Select::InputChannelsByWeight}}) {
    const qs::LayerConfig cfg{k.format, "outliers", {{"fraction", 0.02}, {"channels", k.channels}}};
    auto r = qs::quantize_with_method(l.w.data(), l.rows, l.cols, choice(k.format), cfg,
                                      k.calibrated ? l.stats() : qs::LayerInputStats{}, ctx);
    ASSERT_TRUE(r.ok()) << k.format << ": " << r.error().message;
    qs::OutlierSpec spec;
    const qs::QuantChoice c = choice(k.format);
    spec.target = c.kind == qs::QuantChoice::Kind::Ggml    ? qs::QuantTarget::ggml(c.ggml_type)
                  : c.kind == qs::QuantChoice::Kind::Named ? qs::QuantTarget::named_format(c.named)
                                                           : qs::QuantTarget::int_grid(c.grid);
    spec.fraction = 0.02;
    spec.select = k.select;
    if (k.select == qs::OutlierSpec::Select::InputChannelsByActivation) spec.act_absmax = l.st.mean_abs.data();
    if (k.select == qs::OutlierSpec::Select::Weights && k.calibrated) spec.column_importance = sqrt_diag.data();
    auto expect = qs::outlier_keep(l.w.data(), l.rows, l.cols, spec);
    ASSERT_TRUE(expect.ok()) << k.format;
    EXPECT_TRUE(same(r->dequantized, expect->dequantized)) << k.format;
    EXPECT_DOUBLE_EQ(r->figures.bits_per_weight, expect->bits_per_weight) << k.format;
    EXPECT_GT(r->figures.bits_per_weight, c.bits_per_weight(l.rows, l.cols)) << k.format << ": the side table costs";
  }
  // Keeping the weights that matter most for the output lowers the output error below RTN's.
  auto rtn = qs::quantize_with_method(l.w.data(), l.rows, l.cols, choice("int3-g128"), {"int3-g128", "rtn", {}}, l.stats(), ctx);
  auto kept = qs::quantize_with_method(l.w.data(), l.rows, l.cols, choice("int3-g128"),
                                       {"int3-g128", "outliers", {{"fraction", 0.01}}}, l.stats(), ctx);
  ASSERT_TRUE(rtn.ok() && kept.ok());
  EXPECT_LT(kept->rel_output_error, 0.9 * rtn->rel_output_error);
}

// With calibration both calibrated methods beat RTN on the output error. (Here the
// diag(H)-weighted clip even beats GPTQ: the inputs are independent, so H is
// nearly diagonal, and the Student-t weights' outliers set GPTQ's group scales.)
TEST(LayerMethod, CalibratedMethodsBeatRtnOnOutputError) {
  const Layer l;
  double e[3];
  const char* methods[3] = {"rtn", "clip", "gptq"};
  for (int i = 0; i < 3; ++i) {
    auto r = qs::quantize_with_method(l.w.data(), l.rows, l.cols, choice("int3-g128"), {"int3-g128", methods[i], {}},
                                      l.stats(), qs::OpContext::none());
    ASSERT_TRUE(r.ok()) << methods[i] << ": " << r.error().message;
    e[i] = r->rel_output_error;
    EXPECT_GT(r->figures.error.sqnr_db, 0.0);
  }
  std::printf("  int3-g128 rel. output error: rtn %.5f, clip %.5f, gptq %.5f\n", e[0], e[1], e[2]);
  EXPECT_LT(e[1], 0.8 * e[0]);
  EXPECT_LT(e[2], 0.8 * e[0]);
}

TEST(LayerMethod, RefusalsSayWhy) {
  const Layer l;
  qs::OpContext& ctx = qs::OpContext::none();
  const auto message = [&](const char* f, const char* m, const qs::LayerInputStats& s) {
    auto r = qs::quantize_with_method(l.w.data(), l.rows, l.cols, choice(f), {f, m, {}}, s, ctx);
    return r.ok() ? std::string("ok") : r.error().message;
  };
  EXPECT_NE(message("int4-g128", "gptq", {}).find("calibrate first"), std::string::npos);
  EXPECT_NE(message("int4-g128", "awq", {l.st.h.data(), nullptr}).find("mean |x|"), std::string::npos);
  EXPECT_NE(message("nf4", "clip", {}).find("cannot target NF4"), std::string::npos);
  EXPECT_NE(message("nf4", "gptq", l.stats()).find("cannot target NF4"), std::string::npos);
  EXPECT_NE(message("int4-g128", "smoothquant", l.stats()).find("not applied by measure"), std::string::npos);
  EXPECT_NE(message("int4-g100", "rtn", {}), "ok");
}

}  // namespace

namespace {

TEST(LayerMethod, ConfigKeysRoundTrip) {
  EXPECT_EQ(qs::layer_config_key({"int4-g128", "rtn", {}}), "int4-g128");
  const qs::LayerConfig gptq{"q4_0", "gptq", {{"percdamp", 0.05}, {"act_order", 1}}};
  EXPECT_EQ(qs::layer_config_key(gptq), "q4_0+gptq(act_order=1,percdamp=0.05)");
  for (const qs::LayerConfig& c : {qs::LayerConfig{"int4-g128", "rtn", {}}, gptq, qs::LayerConfig{"nf4", "awq", {}},
                                   qs::LayerConfig{"q8_0", "rtn", {{"x", -1e-300}}}}) {
    auto back = qs::parse_layer_config_key(qs::layer_config_key(c));
    ASSERT_TRUE(back.ok()) << back.error().message;
    EXPECT_EQ(*back, c) << qs::layer_config_key(c);
  }
  for (const char* bad : {"", "+gptq", "q4_0+", "q4_0+gptq(a=1", "q4_0+gptq(=1)", "q4_0+gptq(a=x)", "q4_0+gptq(a=)"}) {
    EXPECT_FALSE(qs::parse_layer_config_key(bad).ok()) << bad;
  }
}

}  // namespace
