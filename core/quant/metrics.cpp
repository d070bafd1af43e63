#include "quant/metrics.h"

#include <Eigen/Dense>
#include <algorithm>
#include <array>
#include <vector>

#include "backend/lapack.h"
#include "backend/thread_pool.h"
#include <cmath>
#include <limits>

namespace qs {

using MatD = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using MapF = Eigen::Map<const Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>>;

WeightError weight_error(const float* w, const float* q, std::uint64_t n) {
  WeightError e;
  // Chunks in parallel; partial sums merged in chunk order (thread-count independent).
  constexpr std::uint64_t kChunk = 1 << 16;
  const std::uint64_t chunks = (n + kChunk - 1) / kChunk;
  std::vector<std::array<double, 3>> part(chunks);
  ThreadPool::global().parallel_for(chunks, [&](std::size_t c, unsigned) {
    double err = 0, ref = 0, mx = 0;
    const std::uint64_t end = std::min(n, (c + 1) * kChunk);
    for (std::uint64_t i = c * kChunk; i < end; ++i) {
      const double d = static_cast<double>(w[i]) - q[i];
      err += d * d;
      ref += static_cast<double>(w[i]) * w[i];
      mx = std::max(mx, std::fabs(d));
    }
    part[c] = {err, ref, mx};
  });
  double err = 0, ref = 0;
  for (const auto& p : part) {
    err += p[0];
    ref += p[1];
    e.max_abs = std::max(e.max_abs, p[2]);
  }
  e.mse = n ? err / static_cast<double>(n) : 0.0;
  e.sqnr_db = err > 0 ? 10.0 * std::log10(ref / err) : std::numeric_limits<double>::infinity();
  return e;
}

double relative_output_error(const float* w, const float* q, std::int64_t rows, std::int64_t cols, const float* x,
                             std::int64_t tokens) {
  const MatD W = MapF(w, rows, cols).cast<double>();
  const MatD D = W - MapF(q, rows, cols).cast<double>();
  const MatD X = MapF(x, tokens, cols).cast<double>();
  const double num = (D * X.transpose()).squaredNorm();
  const double den = (W * X.transpose()).squaredNorm();
  return den > 0 ? num / den : 0.0;
}

double relative_output_error_h(const float* w, const float* q, std::int64_t rows, std::int64_t cols, const float* h) {
  // F32 GEMMs (this runs on every plan edit; through BLAS when the build has it),
  // products summed in double: ~1e-6 relative, far below any difference between
  // quantization choices. One GEMM: [D; W] H, then row-wise dot products.
  using MatF = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  const MapF W(w, rows, cols);
  MatF DW(2 * rows, cols);
  DW.topRows(rows) = W - MapF(q, rows, cols);
  DW.bottomRows(rows) = W;
  MatF P(2 * rows, cols);
  lapack::gemm(false, 2 * rows, cols, cols, 1.0f, DW.data(), cols, h, cols, 0.0f, P.data(), cols);
  std::vector<double> part(static_cast<std::size_t>(2 * rows));
  ThreadPool::global().parallel_for(part.size(), [&](std::size_t r, unsigned) {
    double acc = 0;
    const float* a = P.data() + r * static_cast<std::size_t>(cols);
    const float* b = DW.data() + r * static_cast<std::size_t>(cols);
    for (std::int64_t c = 0; c < cols; ++c) acc += static_cast<double>(a[c]) * b[c];
    part[r] = acc;
  });
  double num = 0, den = 0;  // tr(D H D^T), tr(W H W^T), summed in row order
  for (std::int64_t r = 0; r < rows; ++r) {
    num += part[static_cast<std::size_t>(r)];
    den += part[static_cast<std::size_t>(rows + r)];
  }
  return den > 0 ? num / den : 0.0;
}

LayerError layer_error(const float* w, const float* q, std::int64_t rows, std::int64_t cols, const float* h,
                       const float* h_heldout) {
  LayerError e;
  e.weight = weight_error(w, q, static_cast<std::uint64_t>(rows * cols));
  if (h) e.rel_output_error = relative_output_error_h(w, q, rows, cols, h);
  if (h_heldout) e.rel_output_error_heldout = relative_output_error_h(w, q, rows, cols, h_heldout);
  return e;
}

}  // namespace qs
