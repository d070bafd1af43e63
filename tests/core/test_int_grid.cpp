// Integer grids and RTN against the GPTQ reference case (../shared/cases/gptq1024),
// and the error metrics against direct computation.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>

#include "quant/int_grid.h"
#include "quant/metrics.h"
#include "test_files.h"

namespace {

std::vector<float> load_f32(const std::string& path, std::size_t n) {
  const std::string b = qs::test::read_bytes(path);
  EXPECT_EQ(b.size(), n * 4) << path;
  std::vector<float> v(n);
  std::memcpy(v.data(), b.data(), std::min(b.size(), n * 4));
  return v;
}

TEST(IntGrid, RtnMatchesTheGptqReferenceRtnOnGptq1024) {
  QS_REQUIRE_SHARED();
  const std::string dir = shared + "/cases/gptq1024/";
  const auto w = load_f32(dir + "W.f32", 1024 * 1024);
  const auto ref = load_f32(dir + "extra/Q_rtn_w4_g128_asym.f32", 1024 * 1024);
  const auto x = load_f32(dir + "X_test.f32", 4096 * 1024);
  auto q = qs::rtn_int(w.data(), 1024, 1024, {4, false, 128});
  ASSERT_TRUE(q.ok()) << q.error().message;
  const auto deq = qs::dequantize_int(*q);
  std::size_t same = 0;
  for (std::size_t i = 0; i < deq.size(); ++i) same += deq[i] == ref[i];
  // Same arithmetic as the reference (f32, half-to-even rounding): every value identical.
  EXPECT_EQ(same, deq.size());
  const double ours = qs::relative_output_error(w.data(), deq.data(), 1024, 1024, x.data(), 4096);
  const double theirs = qs::relative_output_error(w.data(), ref.data(), 1024, 1024, x.data(), 4096);
  EXPECT_NEAR(theirs, 0.05380, 0.00001);  // README: RTN err (test) 0.05380
  EXPECT_NEAR(ours, theirs, 0.001 * theirs);
  EXPECT_DOUBLE_EQ(q->bits_per_weight(), 4.0 + 32.0 / 128.0);
}

TEST(IntGrid, CodesStayOnTheGridAndErrorIsHalfAStep) {
  std::mt19937 rng(3);
  std::student_t_distribution<float> t(4.0f);
  const int rows = 16, cols = 256;
  std::vector<float> w(rows * cols);
  for (auto& v : w) v = 0.02f * t(rng);
  for (int bits : {2, 3, 4, 8})
    for (bool sym : {false, true})
      for (int g : {-1, 0, 32, 128}) {
        auto q = qs::rtn_int(w.data(), rows, cols, {bits, sym, g});
        ASSERT_TRUE(q.ok());
        const auto deq = qs::dequantize_int(*q);
        for (int r = 0; r < rows; ++r)
          for (int c = 0; c < cols; ++c) {
            const std::size_t i = static_cast<std::size_t>(r * cols + c);
            ASSERT_LE(q->codes[i], (1 << bits) - 1);
            const float s = q->scale(r, c);
            // Inside the grid's range the error is at most half a step (plus float rounding).
            EXPECT_LE(std::fabs(deq[i] - w[i]), 0.5f * s * (1 + 1e-5f) + 1e-7f)
                << "bits " << bits << " sym " << sym << " group " << g;
          }
      }
}

// The vectorised, fused path against the scalar definition (int_grid_params +
// int_grid_code, value by value) and against weight_error of the dequantized copy.
TEST(IntGrid, FusedMeasureEqualsTheScalarDefinition) {
  std::mt19937 rng(11);
  std::student_t_distribution<float> t(3.0f);
  const int rows = 33, cols = 1280;  // odd rows; per-channel groups longer than one 512-value chunk
  std::vector<float> w(rows * cols);
  for (auto& v : w) v = 0.03f * t(rng);
  w[7] = 0.0f;
  for (int c = 0; c < 128; ++c) w[static_cast<std::size_t>(5 * cols + c)] = 0.0f;  // an all-zero group
  for (int bits : {2, 3, 4, 8})
    for (bool sym : {false, true})
      for (int g : {-1, 0, 64, 128}) {
        const qs::IntGridSpec spec{bits, sym, g};
        qs::IntQuantized q;
        auto e = qs::rtn_int_measure_into(q, w.data(), rows, cols, spec);
        ASSERT_TRUE(e.ok()) << e.error().message;
        const int maxq = (1 << bits) - 1;
        float ts = 0, tz = 0;
        if (g == -1) qs::int_grid_params(w.data(), w.size(), 1, spec, ts, tz);
        for (int r = 0; r < rows; ++r)
          for (int c0 = 0; c0 < cols; c0 += (g > 0 ? g : cols)) {
            const int n = g > 0 ? g : cols;
            float s = ts, z = tz;
            if (g != -1) qs::int_grid_params(&w[static_cast<std::size_t>(r * cols + c0)], static_cast<std::size_t>(n), 1, spec, s, z);
            ASSERT_EQ(q.scale(r, c0), s);
            ASSERT_EQ(q.zero(r, c0), z);
            for (int c = c0; c < c0 + n; ++c)
              ASSERT_EQ(q.codes[static_cast<std::size_t>(r * cols + c)], qs::int_grid_code(w[static_cast<std::size_t>(r * cols + c)], s, z, maxq))
                  << "bits " << bits << " sym " << sym << " group " << g << " at " << r << "," << c;
          }
        const auto deq = qs::dequantize_int(q);
        const auto direct = qs::weight_error(w.data(), deq.data(), w.size());
        EXPECT_NEAR(e->mse, direct.mse, 1e-5 * direct.mse);
        EXPECT_NEAR(e->sqnr_db, direct.sqnr_db, 1e-4);
        EXPECT_NEAR(e->max_abs, direct.max_abs, 1e-6 * direct.max_abs);
      }
  w[3 * cols + 17] = NAN;
  qs::IntQuantized q;
  auto bad = qs::rtn_int_measure_into(q, w.data(), rows, cols, {4, false, 128});
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message.find("row 3, column 17"), std::string::npos) << bad.error().message;
}

TEST(IntGrid, ZeroGroupsAndBadSpecs) {
  std::vector<float> zeros(4 * 64, 0.0f);
  auto q = qs::rtn_int(zeros.data(), 4, 64, {4, false, 32});
  ASSERT_TRUE(q.ok());
  for (float v : qs::dequantize_int(*q)) EXPECT_EQ(v, 0.0f);
  EXPECT_FALSE(qs::rtn_int(zeros.data(), 4, 64, {9, false, 32}).ok());
  auto odd = qs::rtn_int(zeros.data(), 4, 64, {4, false, 48});
  ASSERT_FALSE(odd.ok());
  EXPECT_NE(odd.error().message.find("not a multiple of the group size 48"), std::string::npos);
  zeros[5] = INFINITY;
  EXPECT_FALSE(qs::rtn_int(zeros.data(), 4, 64, {4, false, 32}).ok());
}

TEST(Metrics, WeightAndOutputErrorsAgreeWithDirectComputation) {
  std::mt19937 rng(5);
  std::normal_distribution<float> nd;
  const int rows = 24, cols = 40, tokens = 300;
  std::vector<float> w(rows * cols), q(rows * cols), x(tokens * cols);
  for (auto& v : w) v = nd(rng);
  for (std::size_t i = 0; i < w.size(); ++i) q[i] = w[i] + 0.1f * nd(rng);
  for (auto& v : x) v = nd(rng);
  const auto e = qs::weight_error(w.data(), q.data(), w.size());
  double err = 0, ref = 0, mx = 0;
  for (std::size_t i = 0; i < w.size(); ++i) {
    const double d = static_cast<double>(w[i]) - static_cast<double>(q[i]);
    err += d * d;
    ref += static_cast<double>(w[i]) * w[i];
    mx = std::max(mx, std::fabs(d));
  }
  EXPECT_NEAR(e.mse, err / w.size(), 1e-12);
  EXPECT_NEAR(e.sqnr_db, 20 * std::log10(std::sqrt(ref) / std::sqrt(err)), 1e-9);
  EXPECT_DOUBLE_EQ(e.max_abs, mx);
  // Output error by explicit loops, and the Hessian form with H = X^T X.
  double num = 0, den = 0;
  for (int t = 0; t < tokens; ++t)
    for (int r = 0; r < rows; ++r) {
      double yw = 0, yq = 0;
      for (int c = 0; c < cols; ++c) {
        yw += static_cast<double>(w[r * cols + c]) * x[t * cols + c];
        yq += static_cast<double>(q[r * cols + c]) * x[t * cols + c];
      }
      num += (yw - yq) * (yw - yq);
      den += yw * yw;
    }
  const double direct = num / den;
  EXPECT_NEAR(qs::relative_output_error(w.data(), q.data(), rows, cols, x.data(), tokens), direct, 1e-12);
  std::vector<float> h(cols * cols, 0.0f);
  for (int i = 0; i < cols; ++i)
    for (int j = 0; j < cols; ++j) {
      double s = 0;
      for (int t = 0; t < tokens; ++t) s += static_cast<double>(x[t * cols + i]) * x[t * cols + j];
      h[static_cast<std::size_t>(i * cols + j)] = static_cast<float>(s / tokens);
    }
  EXPECT_NEAR(qs::relative_output_error_h(w.data(), q.data(), rows, cols, h.data()), direct, 1e-6 * direct);
  EXPECT_TRUE(std::isinf(qs::weight_error(w.data(), w.data(), w.size()).sqnr_db));
}

}  // namespace
