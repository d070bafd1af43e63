#pragma once
// Integer grids (2-8 bits) with a scale and zero point per tensor, per output
// channel, or per group of input columns (ZeroQuant / GPTQ style), and
// round-to-nearest quantization onto them. The grid follows the GPTQ reference
// quantizer: the range always includes 0; asymmetric zero = round(-min/scale);
// symmetric zero = 2^(bits-1).
#include <cstdint>
#include <vector>

#include "quant/metrics.h"
#include "util/result.h"

namespace qs {

class ThreadPool;

struct IntGridSpec {
  int bits = 4;
  bool symmetric = false;
  // > 0: groups of this many input columns; 0: one group per output channel (row);
  // -1: one scale for the whole tensor.
  int group_size = 128;
};

struct IntQuantized {
  std::int64_t rows = 0, cols = 0;
  int groups_per_row = 0;  // 1 for per-channel and per-tensor grids
  IntGridSpec spec;
  std::vector<std::uint8_t> codes;  // rows x cols, in [0, 2^bits - 1]
  std::vector<float> scales, zeros; // rows x groups_per_row (per tensor: every row repeats one value)

  float scale(std::int64_t r, std::int64_t c) const { return scales[index(r, c)]; }
  float zero(std::int64_t r, std::int64_t c) const { return zeros[index(r, c)]; }
  std::size_t index(std::int64_t r, std::int64_t c) const {
    const std::int64_t g = spec.group_size > 0 ? c / spec.group_size : 0;
    return static_cast<std::size_t>(r * groups_per_row + g);
  }
  // Storage cost in bits per weight: codes plus one F16 scale (and zero when asymmetric) per group.
  double bits_per_weight() const;
};

Result<void> validate_int_grid(const IntGridSpec& spec, std::int64_t cols);

// Grid parameters of one group of values (the GPTQ reference's find_params).
void int_grid_params(const float* x, std::size_t n, std::size_t stride, const IntGridSpec& spec, float& scale,
                     float& zero);
// code = clamp(round_half_even(x / scale) + zero, 0, maxq); value = scale * (code - zero).
inline std::uint8_t int_grid_code(float x, float scale, float zero, int maxq);

// Round-to-nearest onto the grid, rows in parallel. `w` is [rows, cols] row-major.
Result<IntQuantized> rtn_int(const float* w, std::int64_t rows, std::int64_t cols, const IntGridSpec& spec,
                             ThreadPool* pool = nullptr);
// The same into `q`, reusing its buffers: live feedback re-quantizes the same
// layer many times, and fresh 100+ MiB allocations cost more in page faults
// than the arithmetic.
Result<void> rtn_int_into(IntQuantized& q, const float* w, std::int64_t rows, std::int64_t cols,
                          const IntGridSpec& spec, ThreadPool* pool = nullptr);
// The same, fused with dequantization and the weight error (MSE, SQNR, max):
// one read of the weight for all three, the live-feedback path (no
// dequantized copy is written). Same codes as rtn_int_into.
Result<WeightError> rtn_int_measure_into(IntQuantized& q, const float* w, std::int64_t rows, std::int64_t cols,
                                         const IntGridSpec& spec, ThreadPool* pool = nullptr);
// The dequantized weight scale * (code - zero), [rows, cols].
std::vector<float> dequantize_int(const IntQuantized& q);
void dequantize_int_into(const IntQuantized& q, float* out);  // out: rows * cols floats

}  // namespace qs

#include <cmath>

namespace qs::detail {
// torch.round is round-half-to-even. Adding and removing 1.5 * 2^23 rounds a
// float to an integer in the current (nearest-even) mode, inline and exactly,
// for |v| < 2^22; larger quotients clamp either way.
inline float round_even(float v) { return std::fabs(v) < 4194304.0f ? (v + 12582912.0f) - 12582912.0f : v; }
}  // namespace qs::detail

inline std::uint8_t qs::int_grid_code(float x, float scale, float zero, int maxq) {
  float q = detail::round_even(x / scale) + zero;  // a true division, as the reference
  q = q < 0.0f ? 0.0f : (q > static_cast<float>(maxq) ? static_cast<float>(maxq) : q);
  return static_cast<std::uint8_t>(q);
}
