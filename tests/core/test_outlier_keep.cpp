// Outlier keeping: k = 0 is RTN exactly, the side table by hand, exact
// bits/weight, lower max error with k > 0 (gptq1024, ggml target too).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "method_case.h"
#include "quant/outlier_keep.h"

namespace {

using qs::test::heavy_tailed;

TEST(OutlierKeep, NothingKeptIsRtnExactly) {
  const auto w = heavy_tailed(32 * 256, 3.0f, 9);
  for (const qs::IntGridSpec g : {qs::IntGridSpec{4, false, 128}, qs::IntGridSpec{3, true, 0}}) {
    qs::OutlierSpec spec;
    spec.target = qs::QuantTarget::int_grid(g);
    spec.fraction = 0.0;
    auto r = qs::outlier_keep(w.data(), 32, 256, spec);
    ASSERT_TRUE(r.ok()) << r.error().message;
    auto rtn = qs::rtn_int(w.data(), 32, 256, g);
    ASSERT_TRUE(rtn.ok());
    EXPECT_EQ(r->q.codes, rtn->codes);
    EXPECT_EQ(r->dequantized, qs::dequantize_int(*rtn));
    EXPECT_TRUE(r->value.empty());
    EXPECT_EQ(r->bits_per_weight, rtn->bits_per_weight());
  }
}

TEST(OutlierKeep, SideTableByHand) {
  // 2 x 4, 4-bit asym per channel; keep 1/8 of the weights: the 5.0.
  const float w[8] = {0.1f, 0.2f, 5.0f, -0.1f, 0.3f, -0.2f, 0.1f, 0.05f};
  qs::OutlierSpec spec;
  spec.target = qs::QuantTarget::int_grid({4, false, 0});
  spec.fraction = 0.125;
  auto r = qs::outlier_keep(w, 2, 4, spec);
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_EQ(r->value.size(), 1u);
  EXPECT_EQ(r->row[0], 0);
  EXPECT_EQ(r->col[0], 2);
  EXPECT_EQ(r->value[0], 5.0f);
  EXPECT_EQ(r->dequantized[2], 5.0f);
  // Row 0's grid spans [-0.1, 0.2] (the 5.0 removed): step 0.3 / 15 = 0.02.
  EXPECT_FLOAT_EQ(r->q.scales[0], 0.3f / 15);
  EXPECT_NEAR(r->dequantized[1], 0.2f, 1e-6);
  // 4 bits + 32 bits of scale and zero per row of 4 + 48 bits for one kept weight of 8.
  EXPECT_DOUBLE_EQ(r->bits_per_weight, 4 + 32.0 / 4 + 48.0 / 8);
  EXPECT_DOUBLE_EQ(r->side_table_bits, 48.0);
  // RTN's row-0 step is 5.1 / 15 = 0.34: every small weight of row 0 is lost without keeping.
  auto rtn = qs::rtn_int(w, 2, 4, spec.target.grid);
  ASSERT_TRUE(rtn.ok());
  EXPECT_LT(r->error.max_abs, qs::weight_error(w, qs::dequantize_int(*rtn).data(), 8).max_abs / 5);
}

TEST(OutlierKeep, WholeInputChannelsByActivation) {
  const auto w = heavy_tailed(16 * 64, 4.0f, 3);
  std::vector<float> amax(64, 1.0f);
  amax[5] = 40;
  amax[50] = 90;
  qs::OutlierSpec spec;
  spec.target = qs::QuantTarget::int_grid({4, true, 32});
  spec.select = qs::OutlierSpec::Select::InputChannelsByActivation;
  spec.fraction = 2.0 / 64;
  spec.act_absmax = amax.data();
  auto r = qs::outlier_keep(w.data(), 16, 64, spec);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->kept_columns, (std::vector<std::int32_t>{5, 50}));
  EXPECT_EQ(r->value.size(), 32u);
  for (std::int64_t i = 0; i < 16; ++i)
    for (int c : {5, 50}) {
      const float v = w[static_cast<std::size_t>(i * 64 + c)];
      EXPECT_NEAR(r->dequantized[static_cast<std::size_t>(i * 64 + c)], v, std::fabs(v) * 1e-3);  // F16
    }
  EXPECT_DOUBLE_EQ(r->bits_per_weight, 4 + 16.0 / 32 + 2 * (32 + 16.0 * 16) / (16 * 64));
}

TEST(OutlierKeep, ImportanceSteersTheChoice) {
  // Column 7 sees activations 1000x larger: with importance, its 16 weights are
  // the ones kept; without, the largest |w| anywhere.
  const auto w = heavy_tailed(16 * 64, 4.0f, 31);
  std::vector<float> imp(64, 1.0f);
  imp[7] = 1000.0f;
  qs::OutlierSpec spec;
  spec.target = qs::QuantTarget::int_grid({4, false, 32});
  spec.fraction = 16.0 / (16 * 64);
  spec.column_importance = imp.data();
  auto r = qs::outlier_keep(w.data(), 16, 64, spec);
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->col.size(), 16u);
  for (std::size_t i = 0; i < 16; ++i) {
    EXPECT_EQ(r->col[i], 7);
    EXPECT_EQ(r->row[i], static_cast<std::int32_t>(i));  // sorted by (row, col)
  }
  spec.column_importance = nullptr;
  auto plain = qs::outlier_keep(w.data(), 16, 64, spec);
  ASSERT_TRUE(plain.ok());
  float smallest_kept = 1e30f;
  for (std::size_t i = 0; i < plain->value.size(); ++i)
    smallest_kept = std::min(smallest_kept, std::fabs(w[static_cast<std::size_t>(plain->row[i] * 64 + plain->col[i])]));
  std::size_t larger = 0;  // exactly the 16 largest |w|
  for (float v : w) larger += std::fabs(v) >= smallest_kept;
  EXPECT_EQ(larger, 16u);
}

TEST(OutlierKeep, Gptq1024KeepingLowersMaxError) {
  QS_REQUIRE_SHARED();
  const auto& c = qs::test::Gptq1024::get(shared);
  const std::int64_t n = c.kRows * c.kCols;
  for (const auto& target : {qs::QuantTarget::int_grid({4, false, 128}), qs::QuantTarget::int_grid({3, false, 128}),
                            qs::QuantTarget::ggml(qs::DType::Q4_0)}) {
    qs::OutlierSpec none;
    none.target = target;
    none.fraction = 0;
    auto base = qs::outlier_keep(c.w.data(), c.kRows, c.kCols, none);
    ASSERT_TRUE(base.ok()) << base.error().message;
    const double base_out = qs::relative_output_error_h(c.w.data(), base->dequantized.data(), c.kRows, c.kCols, c.test.h.data());
    for (double f : {0.001, 0.01}) {
      qs::OutlierSpec spec = none;
      spec.fraction = f;
      auto r = qs::outlier_keep(c.w.data(), c.kRows, c.kCols, spec);
      ASSERT_TRUE(r.ok());
      const auto kept = static_cast<double>(std::llround(f * static_cast<double>(n)));
      EXPECT_EQ(static_cast<double>(r->value.size()), kept);
      EXPECT_DOUBLE_EQ(r->bits_per_weight, target.bits_per_weight(c.kRows, c.kCols) + 48.0 * kept / static_cast<double>(n));
      const double out = qs::relative_output_error_h(c.w.data(), r->dequantized.data(), c.kRows, c.kCols, c.test.h.data());
      std::printf("  gptq1024 %s keep %.1f %%: %.4f bits/weight, max error %.4g (none kept %.4g), MSE %.4g (%.4g), "
                  "rel. output error held-out %.5f (%.5f)\n",
                  target.name.c_str(), 100 * f, r->bits_per_weight, r->error.max_abs, base->error.max_abs, r->error.mse,
                  base->error.mse, out, base_out);
      EXPECT_LT(r->error.max_abs, base->error.max_abs);
      EXPECT_LT(r->error.mse, base->error.mse);
    }
  }
}

}  // namespace

namespace {

TEST(OutlierKeep, Gptq1024FindsThePlantedOutlierChannels) {
  QS_REQUIRE_SHARED();
  const auto& c = qs::test::Gptq1024::get(shared);
  qs::OutlierSpec spec;
  spec.target = qs::QuantTarget::int_grid({4, false, 128});
  spec.select = qs::OutlierSpec::Select::InputChannelsByWeight;
  spec.fraction = 2.0 / 1024;
  auto by_w = qs::outlier_keep(c.w.data(), c.kRows, c.kCols, spec);
  ASSERT_TRUE(by_w.ok());
  EXPECT_EQ(by_w->kept_columns, (std::vector<std::int32_t>{786, 840}));  // case.json: w_outlier_cols
  spec.select = qs::OutlierSpec::Select::InputChannelsByActivation;
  spec.fraction = 5.0 / 1024;
  spec.act_absmax = c.cal.abs_max.data();
  auto by_x = qs::outlier_keep(c.w.data(), c.kRows, c.kCols, spec);
  ASSERT_TRUE(by_x.ok());
  EXPECT_EQ(by_x->kept_columns, (std::vector<std::int32_t>{27, 60, 82, 139, 886}));  // x_outlier_channels
  auto rtn = qs::rtn_int(c.w.data(), c.kRows, c.kCols, spec.target.grid);
  ASSERT_TRUE(rtn.ok());
  const auto rq = qs::dequantize_int(*rtn);
  const double e_rtn = qs::relative_output_error_h(c.w.data(), rq.data(), c.kRows, c.kCols, c.test.h.data());
  const double e_w = qs::relative_output_error_h(c.w.data(), by_w->dequantized.data(), c.kRows, c.kCols, c.test.h.data());
  const double e_x = qs::relative_output_error_h(c.w.data(), by_x->dequantized.data(), c.kRows, c.kCols, c.test.h.data());
  std::printf("  gptq1024 int4-g128 keeping whole input channels in F16: 2 by weight %.4f bits/weight, held-out %.5f; "
              "5 by activation %.4f bits/weight, held-out %.5f; RTN %.5f\n",
              by_w->bits_per_weight, e_w, by_x->bits_per_weight, e_x, e_rtn);
  EXPECT_LT(e_x, e_rtn);
  EXPECT_DOUBLE_EQ(by_x->bits_per_weight, 4.25 + 5 * (32 + 16.0 * 1024) / (1024.0 * 1024));
}

}  // namespace
