#include "quant/metrics.h"

#include <Eigen/Dense>
#include <cmath>
#include <limits>

namespace qs {

using MatD = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using MapF = Eigen::Map<const Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>>;

WeightError weight_error(const float* w, const float* q, std::uint64_t n) {
  WeightError e;
  double err = 0, ref = 0;
  for (std::uint64_t i = 0; i < n; ++i) {
    const double d = static_cast<double>(w[i]) - q[i];
    err += d * d;
    ref += static_cast<double>(w[i]) * w[i];
    e.max_abs = std::max(e.max_abs, std::fabs(d));
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
  const MatD W = MapF(w, rows, cols).cast<double>();
  const MatD D = W - MapF(q, rows, cols).cast<double>();
  const MatD H = MapF(h, cols, cols).cast<double>();
  const double num = (D * H).cwiseProduct(D).sum();  // tr(D H D^T)
  const double den = (W * H).cwiseProduct(W).sum();
  return den > 0 ? num / den : 0.0;
}

}  // namespace qs
