#include "quant/int_grid.h"

#include <algorithm>
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

Result<void> rtn_int_into(IntQuantized& q, const float* w, std::int64_t rows, std::int64_t cols,
                          const IntGridSpec& spec, ThreadPool* pool) {
  if (auto r = validate_int_grid(spec, cols); !r) return r.error();
  for (std::int64_t i = 0; i < rows * cols; ++i)
    if (!std::isfinite(w[i])) return Error::invalid("weight " + std::to_string(i) + " is not finite (row " +
                                                    std::to_string(i / cols) + ", column " + std::to_string(i % cols) + ")");
  q.rows = rows;
  q.cols = cols;
  q.spec = spec;
  q.groups_per_row = spec.group_size > 0 ? static_cast<int>(cols / spec.group_size) : 1;
  q.codes.resize(static_cast<std::size_t>(rows * cols));
  q.scales.resize(static_cast<std::size_t>(rows) * static_cast<std::size_t>(q.groups_per_row));
  q.zeros.resize(q.scales.size());
  const int maxq = (1 << spec.bits) - 1;

  float tensor_scale = 0, tensor_zero = 0;
  if (spec.group_size == -1) int_grid_params(w, static_cast<std::size_t>(rows * cols), 1, spec, tensor_scale, tensor_zero);
  const std::int64_t gsize = spec.group_size > 0 ? spec.group_size : cols;
  auto do_row = [&](std::size_t r, unsigned) {
    const float* row = w + static_cast<std::int64_t>(r) * cols;
    for (int g = 0; g < q.groups_per_row; ++g) {
      float scale = tensor_scale, zero = tensor_zero;
      if (spec.group_size != -1) int_grid_params(row + g * gsize, static_cast<std::size_t>(gsize), 1, spec, scale, zero);
      const std::size_t gi = r * static_cast<std::size_t>(q.groups_per_row) + static_cast<std::size_t>(g);
      q.scales[gi] = scale;
      q.zeros[gi] = zero;
      std::uint8_t* codes = q.codes.data() + static_cast<std::int64_t>(r) * cols + g * gsize;
      for (std::int64_t c = 0; c < gsize; ++c) codes[c] = int_grid_code(row[g * gsize + c], scale, zero, maxq);
    }
  };
  ThreadPool& tp = pool ? *pool : ThreadPool::global();
  tp.parallel_for(static_cast<std::size_t>(rows), do_row);
  return {};
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
