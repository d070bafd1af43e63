#include "quant/int_grid.h"

#include <Eigen/Core>
#include <algorithm>
#include <cmath>
#include <limits>
#include <string>

#include "backend/thread_pool.h"

namespace qs {

double IntQuantized::bits_per_weight() const {
  const double per_group = spec.symmetric ? 16.0 : 32.0;  // F16 scale (+ zero)
  const double weights_per_group = spec.group_size > 0    ? static_cast<double>(spec.group_size)
                                   : spec.group_size == 0 ? static_cast<double>(cols)
                                                          : static_cast<double>(rows * cols);
  return spec.bits + per_group / weights_per_group;
}

Result<void> validate_int_grid(const IntGridSpec& spec, std::int64_t cols) {
  if (spec.bits < 2 || spec.bits > 8) return Error::invalid("integer grid: bits must be 2..8, got " + std::to_string(spec.bits));
  if (spec.group_size < -1) return Error::invalid("integer grid: group size must be > 0, 0 (per channel) or -1 (per tensor)");
  if (spec.group_size > 0 && cols % spec.group_size != 0)
    return Error::invalid("integer grid: " + std::to_string(cols) + " columns are not a multiple of the group size " +
                          std::to_string(spec.group_size));
  return {};
}

void int_grid_params(const float* x, std::size_t n, std::size_t stride, const IntGridSpec& spec, float& scale,
                     float& zero) {
  const int maxq = (1 << spec.bits) - 1;
  float xmin = 0.0f, xmax = 0.0f;  // the range always includes 0
  for (std::size_t i = 0; i < n; ++i) {
    const float v = x[i * stride];
    xmin = std::min(xmin, v);
    xmax = std::max(xmax, v);
  }
  if (spec.symmetric) {
    xmax = std::max(std::fabs(xmin), xmax);
    if (xmin < 0) xmin = -xmax;
  }
  if (xmin == 0.0f && xmax == 0.0f) {
    xmin = -1.0f;
    xmax = 1.0f;
  }
  scale = (xmax - xmin) / static_cast<float>(maxq);
  zero = spec.symmetric ? static_cast<float>(maxq + 1) / 2.0f : std::nearbyint(-xmin / scale);
}

Result<IntQuantized> rtn_int(const float* w, std::int64_t rows, std::int64_t cols, const IntGridSpec& spec,
                             ThreadPool* pool) {
  IntQuantized q;
  if (auto r = rtn_int_into(q, w, rows, cols, spec, pool); !r) return r.error();
  return q;
}

namespace {

// What one row contributes to the weight error; merged in row order so the
// totals do not depend on the thread count.
struct RowError {
  double err = 0, ref = 0, max_abs = 0;
  bool finite = true;
};

// Eigen arrays over one group: SSE/AVX packets for the reductions, which plain
// loops only get with -ffast-math (float sums may not be reassociated).
using ArrayMap = Eigen::Map<const Eigen::ArrayXf>;

// Quantizes one group of `n` values onto (scale, zero), writes the codes and
// adds its error to `e`. The arithmetic is int_grid_code's, step by step: a
// true division, round-half-even by the 1.5 * 2^23 trick, then the clamp;
// quotients beyond 2^22 (where the trick is inexact) clamp either way because
// 0 <= zero <= 255. Chunks of 512 keep the temporaries on the stack and in L1.
void quantize_group(const float* x, std::int64_t n, float scale, float zero, int maxq, std::uint8_t* codes,
                    RowError& e) {
  constexpr std::int64_t kChunk = 512;
  alignas(64) float qbuf[kChunk];
  const float magic = 12582912.0f, top = static_cast<float>(maxq);
  for (std::int64_t c0 = 0; c0 < n; c0 += kChunk) {
    const std::int64_t m = std::min(kChunk, n - c0);
    const ArrayMap xs(x + c0, m);
    Eigen::Map<Eigen::ArrayXf> q(qbuf, m);
    q = (((xs / scale + magic) - magic) + zero).max(0.0f).min(top);
    for (std::int64_t c = 0; c < m; ++c) codes[c0 + c] = static_cast<std::uint8_t>(qbuf[c]);
    q = xs - scale * (q - zero);  // now the error of each value
    e.err += static_cast<double>(q.square().sum());
    e.ref += static_cast<double>(xs.square().sum());
    e.max_abs = std::max(e.max_abs, static_cast<double>(q.abs().maxCoeff()));
  }
}

// Grid parameters of a contiguous group, and whether all of it is finite
// (0 * v is NaN exactly for NaN and +-Inf, and NaN survives any sum).
bool group_params(const float* x, std::int64_t n, const IntGridSpec& spec, float& scale, float& zero) {
  const ArrayMap g(x, n);
  if ((g * 0.0f).sum() != 0.0f) return false;
  const int maxq = (1 << spec.bits) - 1;
  float xmin = std::min(0.0f, g.minCoeff()), xmax = std::max(0.0f, g.maxCoeff());  // the range includes 0
  if (spec.symmetric) {
    xmax = std::max(-xmin, xmax);
    if (xmin < 0) xmin = -xmax;
  }
  if (xmin == 0.0f && xmax == 0.0f) {
    xmin = -1.0f;
    xmax = 1.0f;
  }
  scale = (xmax - xmin) / static_cast<float>(maxq);
  zero = spec.symmetric ? static_cast<float>(maxq + 1) / 2.0f : std::nearbyint(-xmin / scale);
  return true;
}

Error not_finite(const float* w, std::int64_t rows, std::int64_t cols) {
  for (std::int64_t i = 0; i < rows * cols; ++i)
    if (!std::isfinite(w[i]))
      return Error::invalid("weight " + std::to_string(i) + " is not finite (row " + std::to_string(i / cols) +
                            ", column " + std::to_string(i % cols) + ")");
  return Error::invalid("weight: not finite");  // unreachable when a group said so
}

}  // namespace

Result<void> rtn_int_into(IntQuantized& q, const float* w, std::int64_t rows, std::int64_t cols,
                          const IntGridSpec& spec, ThreadPool* pool) {
  auto r = rtn_int_measure_into(q, w, rows, cols, spec, pool);
  if (!r) return r.error();
  return {};
}

Result<WeightError> rtn_int_measure_into(IntQuantized& q, const float* w, std::int64_t rows, std::int64_t cols,
                                         const IntGridSpec& spec, ThreadPool* pool) {
  if (auto r = validate_int_grid(spec, cols); !r) return r.error();
  q.rows = rows;
  q.cols = cols;
  q.spec = spec;
  q.groups_per_row = spec.group_size > 0 ? static_cast<int>(cols / spec.group_size) : 1;
  q.codes.resize(static_cast<std::size_t>(rows * cols));
  q.scales.resize(static_cast<std::size_t>(rows) * static_cast<std::size_t>(q.groups_per_row));
  q.zeros.resize(q.scales.size());
  const int maxq = (1 << spec.bits) - 1;

  float tensor_scale = 0, tensor_zero = 0;
  if (spec.group_size == -1 && !group_params(w, rows * cols, spec, tensor_scale, tensor_zero))
    return not_finite(w, rows, cols);
  const std::int64_t gsize = spec.group_size > 0 ? spec.group_size : cols;
  std::vector<RowError> row_error(static_cast<std::size_t>(rows));
  auto do_row = [&](std::size_t r, unsigned) {
    const float* row = w + static_cast<std::int64_t>(r) * cols;
    RowError& e = row_error[r];
    for (int g = 0; g < q.groups_per_row; ++g) {
      const float* x = row + g * gsize;
      float scale = tensor_scale, zero = tensor_zero;
      if (spec.group_size != -1 && !group_params(x, gsize, spec, scale, zero)) {
        e.finite = false;
        return;
      }
      const std::size_t gi = r * static_cast<std::size_t>(q.groups_per_row) + static_cast<std::size_t>(g);
      q.scales[gi] = scale;
      q.zeros[gi] = zero;
      quantize_group(x, gsize, scale, zero, maxq, q.codes.data() + static_cast<std::int64_t>(r) * cols + g * gsize, e);
    }
  };
  ThreadPool& tp = pool ? *pool : ThreadPool::global();
  tp.parallel_for(static_cast<std::size_t>(rows), do_row);

  double err = 0, ref = 0;
  WeightError out;
  for (const RowError& e : row_error) {
    if (!e.finite) return not_finite(w, rows, cols);
    err += e.err;
    ref += e.ref;
    out.max_abs = std::max(out.max_abs, e.max_abs);
  }
  const double n = static_cast<double>(rows) * static_cast<double>(cols);
  out.mse = n > 0 ? err / n : 0.0;
  out.sqnr_db = err > 0 ? 10.0 * std::log10(ref / err) : std::numeric_limits<double>::infinity();
  return out;
}

std::vector<float> dequantize_int(const IntQuantized& q) {
  std::vector<float> out(q.codes.size());
  dequantize_int_into(q, out.data());
  return out;
}

void dequantize_int_into(const IntQuantized& q, float* out) {
  const std::int64_t gsize = q.spec.group_size > 0 ? q.spec.group_size : q.cols;
  ThreadPool::global().parallel_for(static_cast<std::size_t>(q.rows), [&](std::size_t r, unsigned) {
    for (int g = 0; g < q.groups_per_row; ++g) {
      const std::size_t gi = r * static_cast<std::size_t>(q.groups_per_row) + static_cast<std::size_t>(g);
      const float scale = q.scales[gi], zero = q.zeros[gi];
      const std::size_t base = r * static_cast<std::size_t>(q.cols) + static_cast<std::size_t>(g * gsize);
      for (std::int64_t c = 0; c < gsize; ++c)
        out[base + static_cast<std::size_t>(c)] = scale * (static_cast<float>(q.codes[base + static_cast<std::size_t>(c)]) - zero);
    }
  });
}

}  // namespace qs
