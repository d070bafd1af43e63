// CPU and CUDA backends must agree: counts and extrema exactly, moments within
// 1e-9 relative (they sum in different orders). Skips without a GPU.
#include <gtest/gtest.h>

#include <random>

#include "backend/cpu_backend.h"
#include "cuda_device.h"
#include "util/half.h"

namespace {

using qs::test::cuda_or_skip_reason;

TEST(CudaParity, StatsAndChannelMaximaAgreeWithCpu) {
  std::string why;
  auto gpu = cuda_or_skip_reason(why);
  if (!gpu) GTEST_SKIP() << "no usable CUDA device: " << why;
  std::mt19937 rng(11);
  std::student_t_distribution<float> t(3.0f);
  const std::int64_t rows = 1536, cols = 4099;
  std::vector<float> x(static_cast<std::size_t>(rows * cols));
  for (auto& v : x) v = 0.02f * t(rng);
  x[3] = NAN;
  x[4] = -INFINITY;
  std::vector<std::uint16_t> h(x.size()), b(x.size());
  for (std::size_t i = 0; i < x.size(); ++i) {
    h[i] = qs::f32_to_f16(x[i]);
    b[i] = qs::f32_to_bf16(x[i]);
  }
  auto cpu = qs::cpu_backend();
  for (qs::DType dt : {qs::DType::F32, qs::DType::F16, qs::DType::BF16}) {
    const void* p = dt == qs::DType::F32 ? static_cast<const void*>(x.data()) : dt == qs::DType::F16 ? h.data() : b.data();
    const qs::TensorData d{dt, static_cast<const std::byte*>(p), x.size(), rows, cols};
    for (int bins : {64, 512, 20000}) {
      for (auto scale : {qs::HistogramScale::Linear, qs::HistogramScale::LogMagnitude}) {
        qs::HistogramSpec spec;
        spec.bins = bins;
        spec.scale = scale;
        auto c = cpu->tensor_stats(d, spec, qs::OpContext::none());
        auto g = gpu->tensor_stats(d, spec, qs::OpContext::none());
        ASSERT_TRUE(c.ok() && g.ok()) << (g.ok() ? "" : g.error().message);
        EXPECT_EQ(g->count, c->count);
        EXPECT_EQ(g->nan, c->nan);
        EXPECT_EQ(g->inf, c->inf);
        EXPECT_EQ(g->min, c->min);
        EXPECT_EQ(g->max, c->max);
        EXPECT_NEAR(g->mean, c->mean, 1e-9 * c->std);
        EXPECT_NEAR(g->std, c->std, 1e-9 * c->std);
        EXPECT_NEAR(g->kurtosis, c->kurtosis, 1e-7 * std::max(1.0, c->kurtosis));
        if (scale == qs::HistogramScale::Linear) {
          EXPECT_EQ(g->hist.counts, c->hist.counts) << "dtype " << qs::dtype_name(dt) << " bins " << bins;
        } else {
          // log10 on the device may differ from glibc's in the last ulp: a value on a bin edge may move by one bin.
          std::uint64_t moved = 0;
          for (std::size_t i = 0; i < c->hist.counts.size(); ++i)
            moved += static_cast<std::uint64_t>(std::llabs(static_cast<long long>(g->hist.counts[i]) - static_cast<long long>(c->hist.counts[i])));
          EXPECT_LE(moved, 2u * 16u);
        }
        EXPECT_EQ(g->hist.zeros, c->hist.zeros);
        EXPECT_EQ(g->percentiles, c->percentiles);
        EXPECT_EQ(g->beyond_3sigma, c->beyond_3sigma);
        EXPECT_EQ(g->beyond_6sigma, c->beyond_6sigma);
      }
    }
    auto cc = cpu->channel_absmax(d, qs::OpContext::none());
    auto gc = gpu->channel_absmax(d, qs::OpContext::none());
    ASSERT_TRUE(cc.ok() && gc.ok());
    EXPECT_EQ(gc->rows, cc->rows);
    EXPECT_EQ(gc->cols, cc->cols);
    for (std::size_t r = 0; r < cc->rows_rms.size(); ++r) EXPECT_NEAR(gc->rows_rms[r], cc->rows_rms[r], 1e-6f * cc->rows_rms[r]);
    for (std::size_t c = 0; c < cc->cols_rms.size(); ++c) EXPECT_NEAR(gc->cols_rms[c], cc->cols_rms[c], 1e-6f * cc->cols_rms[c]);
  }
}

}  // namespace
