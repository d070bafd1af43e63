// SmoothQuant: the factor formula by hand, smoothing is exact before
// quantization, and on gptq1024 it lowers the activation max and the W8A8 error.
#include <gtest/gtest.h>

#include <Eigen/Dense>
#include <cmath>

#include "method_case.h"
#include "quant/smoothquant.h"

namespace {

using MatD = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using MapF = Eigen::Map<const Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>>;

TEST(SmoothQuant, FactorsByHand) {
  // Input column maxima of W: [2, 1, 0.5, 4]; activation maxima [8, 1, 2, 0.25].
  const float w[8] = {1, -1, 0.5f, 4, -2, 0.5f, 0.25f, -1};
  const float amax[4] = {8, 1, 2, 0.25f};
  const auto s = qs::smoothquant_factors(amax, w, 2, 4, 0.5);
  EXPECT_FLOAT_EQ(s[0], 2.0f);               // sqrt(8 / 2)
  EXPECT_FLOAT_EQ(s[1], 1.0f);               // sqrt(1 / 1)
  EXPECT_FLOAT_EQ(s[2], 2.0f);               // sqrt(2 / 0.5)
  EXPECT_FLOAT_EQ(s[3], 0.25f);              // sqrt(0.25 / 4)
  const auto s1 = qs::smoothquant_factors(amax, w, 2, 4, 1.0);
  EXPECT_FLOAT_EQ(s1[0], 8.0f);              // alpha 1: s = max |x|
  const auto s0 = qs::smoothquant_factors(amax, w, 2, 4, 0.0);
  EXPECT_FLOAT_EQ(s0[3], 0.25f);             // alpha 0: s = 1 / max |w|
  // After smoothing, channel maxima of X/s and W s meet at sqrt(amax * wmax) for alpha 0.5.
  EXPECT_FLOAT_EQ(amax[0] / s[0], 2.0f * s[0]);
}

TEST(SmoothQuant, Int8CodesByHand) {
  // One row, s = 1 (alpha 0.5 with amax = wmax): scale = 127 / 127 = 1, codes round half to even.
  const float w[4] = {127, -0.5f, 2.5f, -3.4f};
  const float x[4] = {127, 0.5f, 2.5f, 3.4f};
  qs::SmoothQuantSpec spec;
  auto r = qs::smoothquant(w, 1, 4, x, 1, spec);
  ASSERT_TRUE(r.ok()) << r.error().message;
  for (float v : r->smooth) EXPECT_FLOAT_EQ(v, 1.0f);
  EXPECT_FLOAT_EQ(r->weight_scales[0], 1.0f);
  EXPECT_EQ(r->weight_codes, (std::vector<std::int8_t>{127, 0, 2, -3}));
  EXPECT_EQ(r->error.weight.max_abs, 0.5);
}

TEST(SmoothQuant, SmoothingAloneIsExactAndQuantizationLosesLess) {
  QS_REQUIRE_SHARED();
  const auto& c = qs::test::Gptq1024::get(shared);
  qs::SmoothQuantSpec spec;
  auto r = qs::smoothquant(c.w.data(), c.kRows, c.kCols, c.x_test.data(), c.kTokens, spec, c.cal.abs_max.data());
  ASSERT_TRUE(r.ok()) << r.error().message;
  // (X / s)(W s)^T against X W^T, in double from the F32 factors (the first 512
  // tokens: exactness needs no more, and this runs under sanitizers too).
  constexpr std::int64_t kT = 512;
  const MatD X = MapF(c.x_test.data(), kT, c.kCols).cast<double>();
  const MatD W = MapF(c.w.data(), c.kRows, c.kCols).cast<double>();
  MatD Xs(kT, c.kCols), Ws(c.kRows, c.kCols);
  for (std::int64_t j = 0; j < c.kCols; ++j) {
    const float sj = r->smooth[static_cast<std::size_t>(j)];
    for (std::int64_t t = 0; t < kT; ++t) Xs(t, j) = static_cast<float>(c.x_test[static_cast<std::size_t>(t * c.kCols + j)] / sj);
    for (std::int64_t i = 0; i < c.kRows; ++i) Ws(i, j) = static_cast<float>(c.w[static_cast<std::size_t>(i * c.kCols + j)] * sj);
  }
  const MatD Y = X * W.transpose();
  const double rel = (Xs * Ws.transpose() - Y).norm() / Y.norm();
  EXPECT_LT(rel, 1e-6) << "smoothing changed W X by " << rel;

  const auto& e = r->error;
  const auto& b = r->baseline;
  std::printf("  gptq1024 W8A8 per-token, alpha 0.5 (held-out X, factors from calibration max):\n"
              "    activation max %.2f -> %.2f, weight max %.4f -> %.4f\n"
              "    activation SQNR %.2f -> %.2f dB, weight SQNR %.2f -> %.2f dB\n"
              "    rel. output error: both %.3g -> %.3g, weight only %.3g -> %.3g, activation only %.3g -> %.3g\n",
              b.act_absmax, e.act_absmax, b.weight_absmax, e.weight_absmax, b.activation.sqnr_db, e.activation.sqnr_db,
              b.weight.sqnr_db, e.weight.sqnr_db, b.rel_output_error, e.rel_output_error, b.rel_output_error_weight_only,
              e.rel_output_error_weight_only, b.rel_output_error_act_only, e.rel_output_error_act_only);
  EXPECT_LT(e.act_absmax, b.act_absmax * 0.5);
  EXPECT_GT(e.weight_absmax, b.weight_absmax);  // the difficulty moved into W
  EXPECT_LT(e.rel_output_error_act_only, b.rel_output_error_act_only);
  EXPECT_LT(e.rel_output_error, b.rel_output_error);
  // The W8A8 product error is close to the two sides' errors combined.
  EXPECT_LT(e.rel_output_error, (e.rel_output_error_weight_only + e.rel_output_error_act_only) * 1.5);
  // Stored codes reproduce the dequantized weight.
  for (std::int64_t i : {0L, 12345L, 1048575L}) {
    const auto u = static_cast<std::size_t>(i);
    EXPECT_FLOAT_EQ(r->dequantized[u], r->weight_scales[u / 1024] * r->weight_codes[u] / r->smooth[u % 1024]);
  }
}

TEST(SmoothQuant, PerTensorActivationsLoseMoreThanPerToken) {
  QS_REQUIRE_SHARED();
  const auto& c = qs::test::Gptq1024::get(shared);
  qs::SmoothQuantSpec tok, ten;
  ten.act_per_token = false;
  auto a = qs::w8a8_error(c.w.data(), c.kRows, c.kCols, c.x_test.data(), c.kTokens, nullptr, tok);
  auto b = qs::w8a8_error(c.w.data(), c.kRows, c.kCols, c.x_test.data(), c.kTokens, nullptr, ten);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_GT(a->activation.sqnr_db, b->activation.sqnr_db);
  EXPECT_EQ(a->weight.mse, b->weight.mse);  // the weight side does not depend on it
}

}  // namespace

namespace {

TEST(SmoothQuant, Gptq1024AlphaSweepOnCalibrationHoldsOnHeldOutTokens) {
  QS_REQUIRE_SHARED();
  const auto& c = qs::test::Gptq1024::get(shared);
  qs::SmoothQuantSpec spec;
  auto sw = qs::smoothquant_alpha_sweep(c.w.data(), c.kRows, c.kCols, c.x_cal.data(), c.kTokens, spec, 0.1);
  ASSERT_TRUE(sw.ok()) << sw.error().message;
  ASSERT_EQ(sw->alphas.size(), 11u);
  EXPECT_NEAR(sw->alphas.back(), 1.0, 1e-12);
  std::printf("  gptq1024 W8A8 alpha sweep on calibration tokens:");
  for (std::size_t i = 0; i < sw->alphas.size(); ++i) std::printf(" %.1f:%.3g", sw->alphas[i], sw->errors[i]);
  std::printf("  -> alpha %.1f\n", sw->best_alpha);
  for (double e : sw->errors) EXPECT_GE(e, sw->errors[static_cast<std::size_t>(sw->best)]);
  // The sweep's error for the chosen alpha is what smoothquant() reports for it.
  spec.alpha = sw->best_alpha;
  auto r = qs::smoothquant(c.w.data(), c.kRows, c.kCols, c.x_cal.data(), c.kTokens, spec);
  ASSERT_TRUE(r.ok());
  EXPECT_NEAR(r->error.rel_output_error, sw->errors[static_cast<std::size_t>(sw->best)], 1e-12);
  // On held-out tokens the chosen alpha beats no smoothing.
  auto held = qs::smoothquant(c.w.data(), c.kRows, c.kCols, c.x_test.data(), c.kTokens, spec, c.cal.abs_max.data());
  ASSERT_TRUE(held.ok());
  EXPECT_LT(held->error.rel_output_error, held->baseline.rel_output_error);
}

}  // namespace
