// The statistics pass against a straightforward reference computation.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>

#include "backend/cpu_backend.h"
#include "backend/thread_pool.h"
#include "model/convert.h"
#include "stats/outliers.h"
#include "util/half.h"

namespace {

struct Reference {
  std::array<double, qs::kStatPercentiles.size()> percentiles{};
  std::uint64_t beyond3 = 0, beyond6 = 0;
  std::uint64_t count = 0, nan = 0, inf = 0;
  double min = INFINITY, max = -INFINITY, mean = 0, std = 0, kurtosis = 0;
  std::vector<std::uint64_t> counts;
  std::uint64_t below = 0, above = 0, zeros = 0;
};

// Plain loops in double, two passes, no cleverness.
Reference reference(const std::vector<float>& x, int bins, bool log_scale, std::optional<double> lo_in = {},
                    std::optional<double> hi_in = {}) {
  Reference r;
  double sum = 0, mnz = INFINITY, amax = 0;
  for (float f : x) {
    const double v = f;
    if (std::isnan(v)) { ++r.nan; continue; }
    if (std::isinf(v)) { ++r.inf; continue; }
    ++r.count;
    sum += v;
    r.min = std::min(r.min, v);
    r.max = std::max(r.max, v);
    amax = std::max(amax, std::fabs(v));
    if (v != 0) mnz = std::min(mnz, std::fabs(v));
  }
  r.mean = sum / static_cast<double>(r.count);
  double m2 = 0, m4 = 0;
  for (float f : x) {
    if (!std::isfinite(f)) continue;
    const double d = f - r.mean;
    m2 += d * d;
    m4 += d * d * d * d;
  }
  const double var = m2 / static_cast<double>(r.count);
  r.std = std::sqrt(var);
  r.kurtosis = m4 / static_cast<double>(r.count) / (var * var) - 3;
  std::vector<float> finite;
  for (float f : x)
    if (std::isfinite(f)) finite.push_back(f);
  std::sort(finite.begin(), finite.end());
  for (std::size_t k = 0; k < r.percentiles.size(); ++k) {
    // Nearest rank: the smallest value with at least p % of the values at or below it.
    const auto n = static_cast<double>(finite.size());
    const auto rank = static_cast<std::size_t>(std::max(1.0, std::ceil(qs::kStatPercentiles[k] / 100.0 * n))) - 1;
    r.percentiles[k] = finite[rank];
  }
  for (float f : finite) {
    r.beyond3 += std::fabs(f - r.mean) > 3 * r.std;
    r.beyond6 += std::fabs(f - r.mean) > 6 * r.std;
  }
  const double lo = lo_in.value_or(log_scale ? std::log10(mnz) : r.min);
  const double hi = hi_in.value_or(log_scale ? std::log10(amax) : r.max);
  r.counts.assign(static_cast<std::size_t>(bins), 0);
  for (float f : x) {
    if (!std::isfinite(f)) continue;
    double q = f;
    if (log_scale) {
      if (f == 0) { ++r.zeros; continue; }
      q = std::log10(std::fabs(static_cast<double>(f)));
    }
    if (q < lo) { ++r.below; continue; }
    if (q > hi) { ++r.above; continue; }
    auto b = static_cast<long long>(std::floor((q - lo) * (bins / (hi - lo))));
    if (b >= bins) b = bins - 1;
    ++r.counts[static_cast<std::size_t>(b)];
  }
  return r;
}

std::vector<float> heavy_tailed(std::size_t n, std::uint32_t seed) {
  std::mt19937 rng(seed);
  std::student_t_distribution<float> t(3.0f);
  std::vector<float> v(n);
  for (auto& x : v) x = 0.02f * t(rng);
  return v;
}

void expect_matches(const qs::TensorStats& s, const Reference& r, double rel) {
  EXPECT_EQ(s.count, r.count);
  EXPECT_EQ(s.nan, r.nan);
  EXPECT_EQ(s.inf, r.inf);
  EXPECT_EQ(s.min, r.min);
  EXPECT_EQ(s.max, r.max);
  EXPECT_NEAR(s.mean, r.mean, rel * r.std);
  EXPECT_NEAR(s.std, r.std, rel * r.std);
  EXPECT_NEAR(s.kurtosis, r.kurtosis, rel * std::max(1.0, std::fabs(r.kurtosis)));
  EXPECT_EQ(s.hist.counts, r.counts);
  EXPECT_EQ(s.hist.below, r.below);
  EXPECT_EQ(s.hist.above, r.above);
  EXPECT_EQ(s.hist.zeros, r.zeros);
  for (std::size_t k = 0; k < r.percentiles.size(); ++k)
    EXPECT_EQ(s.percentiles[k], r.percentiles[k]) << "percentile " << qs::kStatPercentiles[k];
  EXPECT_EQ(s.beyond_3sigma, r.beyond3);
  EXPECT_EQ(s.beyond_6sigma, r.beyond6);
  EXPECT_GT(r.beyond6, 0u);  // the test data is heavy-tailed enough to have some
}

qs::TensorData data_of(qs::DType t, const void* p, std::size_t n) {
  return {t, static_cast<const std::byte*>(p), n, 1, static_cast<std::int64_t>(n)};
}

TEST(Stats, F32MatchesReferenceWithNanInfAndZeros) {
  auto x = heavy_tailed(300001, 1);
  x[5] = NAN;
  x[77] = INFINITY;
  x[78] = -INFINITY;
  x[1000] = 0.0f;
  x[2000] = -0.0f;
  qs::CpuBackend cpu;
  for (bool log_scale : {false, true}) {
    qs::HistogramSpec spec;
    spec.bins = 97;
    spec.scale = log_scale ? qs::HistogramScale::LogMagnitude : qs::HistogramScale::Linear;
    auto s = cpu.tensor_stats(data_of(qs::DType::F32, x.data(), x.size()), spec, qs::OpContext::none());
    ASSERT_TRUE(s.ok()) << s.error().message;
    expect_matches(*s, reference(x, 97, log_scale), 1e-9);
  }
}

TEST(Stats, F16AndBF16MatchReferenceOnDecodedValues) {
  const auto src = heavy_tailed(200003, 2);
  std::vector<std::uint16_t> h(src.size()), b(src.size());
  for (std::size_t i = 0; i < src.size(); ++i) {
    h[i] = qs::f32_to_f16(src[i]);
    b[i] = qs::f32_to_bf16(src[i]);
  }
  h[10] = 0x7E00;  // NaN
  h[11] = 0xFC00;  // -inf
  std::vector<float> hx(src.size()), bx(src.size());
  qs::f16_to_f32_n(h.data(), h.size(), hx.data());
  qs::bf16_to_f32_n(b.data(), b.size(), bx.data());
  qs::CpuBackend cpu;
  for (bool log_scale : {false, true}) {
    qs::HistogramSpec spec;
    spec.bins = 64;
    spec.scale = log_scale ? qs::HistogramScale::LogMagnitude : qs::HistogramScale::Linear;
    auto sh = cpu.tensor_stats(data_of(qs::DType::F16, h.data(), h.size()), spec, qs::OpContext::none());
    ASSERT_TRUE(sh.ok());
    expect_matches(*sh, reference(hx, 64, log_scale), 1e-9);
    auto sb = cpu.tensor_stats(data_of(qs::DType::BF16, b.data(), b.size()), spec, qs::OpContext::none());
    ASSERT_TRUE(sb.ok());
    expect_matches(*sb, reference(bx, 64, log_scale), 1e-9);
  }
}

TEST(Stats, ExplicitRangeCountsOutsideValues) {
  const auto x = heavy_tailed(50000, 3);
  qs::HistogramSpec spec;
  spec.bins = 10;
  spec.lo = -0.01;
  spec.hi = 0.02;
  qs::CpuBackend cpu;
  auto s = cpu.tensor_stats(data_of(qs::DType::F32, x.data(), x.size()), spec, qs::OpContext::none());
  ASSERT_TRUE(s.ok());
  const auto r = reference(x, 10, false, -0.01, 0.02);
  EXPECT_EQ(s->hist.counts, r.counts);
  EXPECT_GT(r.below, 0u);
  EXPECT_EQ(s->hist.below, r.below);
  EXPECT_EQ(s->hist.above, r.above);
  EXPECT_EQ(s->hist.lo, -0.01);
  EXPECT_EQ(s->hist.hi, 0.02);
}

TEST(Stats, GaussianHasZeroExcessKurtosisAndHeavyTailsDoNot) {
  std::mt19937 rng(4);
  std::normal_distribution<float> nd(0.5f, 2.0f);
  std::vector<float> g(1 << 20);
  for (auto& v : g) v = nd(rng);
  qs::CpuBackend cpu;
  auto s = cpu.tensor_stats(data_of(qs::DType::F32, g.data(), g.size()), {}, qs::OpContext::none());
  ASSERT_TRUE(s.ok());
  EXPECT_NEAR(s->mean, 0.5, 0.01);
  EXPECT_NEAR(s->std, 2.0, 0.01);
  EXPECT_NEAR(s->kurtosis, 0.0, 0.05);
  const auto t = heavy_tailed(1 << 20, 5);
  auto st = cpu.tensor_stats(data_of(qs::DType::F32, t.data(), t.size()), {}, qs::OpContext::none());
  EXPECT_GT(st->kurtosis, 5.0);  // Student-t(3) has infinite kurtosis; samples score high
}

TEST(Stats, ResultsDoNotDependOnTheThreadCount) {
  const auto x = heavy_tailed(1 << 20, 6);
  std::vector<std::uint16_t> h(x.size());
  for (std::size_t i = 0; i < x.size(); ++i) h[i] = qs::f32_to_f16(x[i]);
  qs::ThreadPool one(1), three(3);
  qs::CpuBackend a(&one), b(&three);
  for (qs::DType t : {qs::DType::F32, qs::DType::F16}) {
    const void* p = t == qs::DType::F32 ? static_cast<const void*>(x.data()) : h.data();
    auto sa = a.tensor_stats(data_of(t, p, x.size()), {}, qs::OpContext::none());
    auto sb = b.tensor_stats(data_of(t, p, x.size()), {}, qs::OpContext::none());
    ASSERT_TRUE(sa.ok() && sb.ok());
    EXPECT_EQ(sa->hist.counts, sb->hist.counts);
    EXPECT_EQ(sa->mean, sb->mean);  // partials merge in task order: bit-identical
    EXPECT_EQ(sa->std, sb->std);
  }
}

TEST(Stats, ConstantAndEmptyTensors) {
  std::vector<float> c(1000, 3.0f);
  qs::CpuBackend cpu;
  auto s = cpu.tensor_stats(data_of(qs::DType::F32, c.data(), c.size()), {}, qs::OpContext::none());
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->std, 0.0);
  EXPECT_EQ(s->kurtosis, 0.0);
  EXPECT_LT(s->hist.lo, 3.0);
  EXPECT_GT(s->hist.hi, 3.0);
  std::uint64_t total = 0;
  for (auto n : s->hist.counts) total += n;
  EXPECT_EQ(total, 1000u);
  auto e = cpu.tensor_stats(data_of(qs::DType::F32, nullptr, 0), {}, qs::OpContext::none());
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e->count, 0u);
}

TEST(Stats, BadSpecsAreRejected) {
  std::vector<float> x(10, 1.0f);
  qs::CpuBackend cpu;
  qs::HistogramSpec spec;
  spec.bins = 0;
  EXPECT_FALSE(cpu.tensor_stats(data_of(qs::DType::F32, x.data(), 10), spec, qs::OpContext::none()).ok());
  spec.bins = 10;
  spec.lo = 1.0;
  spec.hi = 1.0;
  auto r = cpu.tensor_stats(data_of(qs::DType::F32, x.data(), 10), spec, qs::OpContext::none());
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("empty"), std::string::npos);
}

TEST(Stats, CancelStopsTheWork) {
  const auto x = heavy_tailed(1 << 20, 7);
  qs::CpuBackend cpu;
  qs::OpContext ctx;
  ctx.cancel();
  auto s = cpu.tensor_stats(data_of(qs::DType::F32, x.data(), x.size()), {}, ctx);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code, qs::ErrorCode::Cancelled);
}

TEST(Stats, ProgressReachesOne) {
  const auto x = heavy_tailed(1 << 20, 8);
  std::atomic<double> last{0};
  qs::OpContext ctx([&](double f) {
    double cur = last.load();
    while (f > cur && !last.compare_exchange_weak(cur, f)) {
    }
  });
  qs::CpuBackend cpu;
  ASSERT_TRUE(cpu.tensor_stats(data_of(qs::DType::F32, x.data(), x.size()), {}, ctx).ok());
  EXPECT_DOUBLE_EQ(last.load(), 1.0);
}

TEST(ChannelStats, AbsMaxPerRowAndColumnMatchesNaiveLoops) {
  const int rows = 37, cols = 1029;
  auto x = heavy_tailed(static_cast<std::size_t>(rows) * cols, 9);
  x[5 * cols + 7] = NAN;  // ignored
  std::vector<std::uint16_t> h(x.size());
  for (std::size_t i = 0; i < x.size(); ++i) h[i] = qs::f32_to_bf16(x[i]);
  qs::CpuBackend cpu;
  for (qs::DType t : {qs::DType::F32, qs::DType::BF16}) {
    const void* p = t == qs::DType::F32 ? static_cast<const void*>(x.data()) : h.data();
    auto ch = cpu.channel_absmax({t, static_cast<const std::byte*>(p), x.size(), rows, cols}, qs::OpContext::none());
    ASSERT_TRUE(ch.ok());
    std::vector<float> vals(x.size());
    ASSERT_TRUE(qs::convert_to_f32(t, static_cast<const std::byte*>(p), x.size(), vals.data()).ok());
    for (int r = 0; r < rows; ++r) {
      float m = 0;
      double sq = 0;
      int n = 0;
      for (int c = 0; c < cols; ++c) {
        const float v = vals[static_cast<std::size_t>(r * cols + c)];
        if (std::isnan(v)) continue;
        m = std::max(m, std::fabs(v));
        sq += static_cast<double>(v) * v;
        ++n;
      }
      EXPECT_EQ(ch->rows[static_cast<std::size_t>(r)], m);
      EXPECT_FLOAT_EQ(ch->rows_rms[static_cast<std::size_t>(r)], static_cast<float>(std::sqrt(sq / n)));
    }
    for (int c = 0; c < cols; ++c) {
      float m = 0;
      double sq = 0;
      int n = 0;
      for (int r = 0; r < rows; ++r) {
        const float v = vals[static_cast<std::size_t>(r * cols + c)];
        if (std::isnan(v)) continue;
        m = std::max(m, std::fabs(v));
        sq += static_cast<double>(v) * v;
        ++n;
      }
      EXPECT_EQ(ch->cols[static_cast<std::size_t>(c)], m);
      EXPECT_FLOAT_EQ(ch->cols_rms[static_cast<std::size_t>(c)], static_cast<float>(std::sqrt(sq / n)));
    }
  }
}

TEST(Outliers, MagnitudeRuleFindsPlantedChannels) {
  std::vector<float> absmax(100, 1.0f);
  absmax[10] = 6.5f;   // > 6 x median
  absmax[50] = 5.9f;   // below the rule
  absmax[99] = 100.f;
  EXPECT_EQ(qs::outlier_channels(absmax), (std::vector<std::size_t>{10, 99}));
  EXPECT_EQ(qs::outlier_channels(absmax, 50.0), (std::vector<std::size_t>{99}));
  EXPECT_DOUBLE_EQ(qs::median_of({3, 1, 2, 4}), 2.5);
}

TEST(Outliers, IqrRuleUsesTheUpperTukeyFence) {
  // 1..8: Q1 = 2, Q3 = 6 (nearest rank), fence = 6 + 1.5 * 4 = 12.
  std::vector<float> r{1, 2, 3, 4, 5, 6, 7, 8};
  EXPECT_TRUE(qs::outlier_channels_iqr(r).empty());
  r.push_back(12.0f);  // 9 values: Q1 = 3, Q3 = 7, fence 13: 12 stays in
  EXPECT_TRUE(qs::outlier_channels_iqr(r).empty());
  r.push_back(13.5f);  // 10 values: Q1 = 3, Q3 = 8, fence 15.5
  r.push_back(40.0f);  // 11 values: Q1 = 3, Q3 = 12, fence 25.5
  EXPECT_EQ(qs::outlier_channels_iqr(r), (std::vector<std::size_t>{10}));
}

}  // namespace

namespace {

// Naive max-pool of |W| (logical [rows, cols], row-major) into tiles.
std::vector<float> naive_heatmap(const std::vector<float>& w, int rows, int cols, int r0, int r1, int c0, int c1,
                                 int tr, int tc) {
  std::vector<float> out(static_cast<std::size_t>(tr * tc), 0.0f);
  for (int r = r0; r < r1; ++r)
    for (int c = c0; c < c1; ++c) {
      const int i = (r - r0) * tr / (r1 - r0), j = (c - c0) * tc / (c1 - c0);
      float& cell = out[static_cast<std::size_t>(i * tc + j)];
      cell = std::max(cell, std::fabs(w[static_cast<std::size_t>(r * cols + c)]));
    }
  (void)rows;
  return out;
}

TEST(Heatmap, MaxPoolsTheRegionAndHonoursChannelsLastStorage) {
  const int rows = 37, cols = 1029;
  const auto w = heavy_tailed(static_cast<std::size_t>(rows) * cols, 12);
  std::vector<float> transposed(w.size());  // Keras-style [cols, rows] storage of the same matrix
  for (int r = 0; r < rows; ++r)
    for (int c = 0; c < cols; ++c) transposed[static_cast<std::size_t>(c * rows + r)] = w[static_cast<std::size_t>(r * cols + c)];
  qs::CpuBackend cpu;
  const qs::TensorData rm{qs::DType::F32, reinterpret_cast<const std::byte*>(w.data()), w.size(), rows, cols, false};
  const qs::TensorData cl{qs::DType::F32, reinterpret_cast<const std::byte*>(transposed.data()), w.size(), rows, cols, true};

  qs::HeatmapRequest whole;
  whole.out_rows = 8;
  whole.out_cols = 16;
  auto a = cpu.abs_heatmap(rm, whole, qs::OpContext::none());
  ASSERT_TRUE(a.ok()) << a.error().message;
  EXPECT_EQ(a->rows, 8);
  EXPECT_EQ(a->cols, 16);
  EXPECT_EQ(a->abs_max, naive_heatmap(w, rows, cols, 0, rows, 0, cols, 8, 16));
  auto b = cpu.abs_heatmap(cl, whole, qs::OpContext::none());
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(b->abs_max, a->abs_max);

  qs::HeatmapRequest zoom;  // a region smaller than the output: full resolution
  zoom.row0 = 3; zoom.row1 = 9; zoom.col0 = 100; zoom.col1 = 140;
  auto z = cpu.abs_heatmap(cl, zoom, qs::OpContext::none());
  ASSERT_TRUE(z.ok());
  EXPECT_EQ(z->rows, 6);
  EXPECT_EQ(z->cols, 40);
  EXPECT_EQ(z->abs_max, naive_heatmap(w, rows, cols, 3, 9, 100, 140, 6, 40));

  qs::HeatmapRequest bad;
  bad.row0 = 30; bad.row1 = 40;
  EXPECT_FALSE(cpu.abs_heatmap(rm, bad, qs::OpContext::none()).ok());
}

}  // namespace
