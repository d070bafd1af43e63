#include "quant/activation_stats.h"

#include <algorithm>
#include <cmath>

#include "backend/lapack.h"
#include "backend/thread_pool.h"

namespace qs {

ActivationStats activation_stats(const float* x, std::int64_t tokens, std::int64_t cols) {
  ActivationStats s;
  s.tokens = tokens;
  s.cols = cols;
  s.h.assign(static_cast<std::size_t>(cols * cols), 0.0f);
  s.mean_abs.assign(static_cast<std::size_t>(cols), 0.0f);
  s.abs_max.assign(static_cast<std::size_t>(cols), 0.0f);
  if (tokens <= 0 || cols <= 0) return s;
  lapack::gemm(true, cols, cols, tokens, 1.0f / static_cast<float>(tokens), x, cols, x, cols, 0.0f, s.h.data(), cols);
  // Column sums in double, over column stripes in parallel (each stripe walks all tokens).
  constexpr std::int64_t kStripe = 256;
  const std::int64_t stripes = (cols + kStripe - 1) / kStripe;
  ThreadPool::global().parallel_for(static_cast<std::size_t>(stripes), [&](std::size_t si, unsigned) {
    const std::int64_t c0 = static_cast<std::int64_t>(si) * kStripe, c1 = std::min(cols, c0 + kStripe);
    std::vector<double> sum(static_cast<std::size_t>(c1 - c0), 0.0);
    for (std::int64_t t = 0; t < tokens; ++t)
      for (std::int64_t c = c0; c < c1; ++c) {
        const float a = std::fabs(x[t * cols + c]);
        sum[static_cast<std::size_t>(c - c0)] += a;
        s.abs_max[static_cast<std::size_t>(c)] = std::max(s.abs_max[static_cast<std::size_t>(c)], a);
      }
    for (std::int64_t c = c0; c < c1; ++c)
      s.mean_abs[static_cast<std::size_t>(c)] = static_cast<float>(sum[static_cast<std::size_t>(c - c0)] / static_cast<double>(tokens));
  });
  return s;
}

}  // namespace qs
