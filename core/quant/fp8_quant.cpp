#include "quant/fp8_quant.h"

#include <algorithm>
#include <cmath>

#include "backend/thread_pool.h"
#include "model/convert.h"
#include "quant/format_checks.h"
#include "quant/minifloat.h"

namespace qs {

std::uint8_t f32_to_fp8_e4m3(float x) {
  if (std::isnan(x)) return std::signbit(x) ? 0xFF : 0x7F;
  return static_cast<std::uint8_t>(minifloat::encode(x, minifloat::kE4M3));
}

std::uint8_t f32_to_fp8_e5m2(float x) {
  if (std::isnan(x)) return std::signbit(x) ? 0xFF : 0x7F;
  return static_cast<std::uint8_t>(minifloat::encode(x, minifloat::kE5M2));
}

float fp8_max_finite(Fp8Type t) { return t == Fp8Type::E4M3 ? 448.0f : 57344.0f; }

double fp8_bits_per_weight(const Fp8Spec& spec, std::int64_t rows, std::int64_t cols) {
  const double n = static_cast<double>(rows) * static_cast<double>(cols);
  const double scales = spec.per_channel ? static_cast<double>(rows) : 1.0;
  return n > 0 ? 8.0 + 32.0 * scales / n : 8.0;
}

double Fp8Quantized::bits_per_weight() const { return fp8_bits_per_weight(spec, rows, cols); }

namespace {

float absmax_of(const float* x, std::int64_t n) {
  float m = 0.0f;
  for (std::int64_t i = 0; i < n; ++i) m = std::max(m, std::fabs(x[i]));
  return m;
}

// An all-zero tensor or row keeps scale 1 (its codes are all zero either way),
// so dequantization never multiplies by a zero that came from nothing.
float scale_for(float absmax, Fp8Type t) { return absmax > 0.0f ? absmax / fp8_max_finite(t) : 1.0f; }

}  // namespace

Result<Fp8Quantized> quantize_fp8(const float* w, std::int64_t rows, std::int64_t cols, const Fp8Spec& spec,
                                  ThreadPool* pool) {
  if (auto r = detail::check_finite(w, rows, cols); !r) return r.error();
  Fp8Quantized q;
  q.rows = rows;
  q.cols = cols;
  q.spec = spec;
  q.codes.resize(static_cast<std::size_t>(rows * cols));
  q.scales.assign(spec.per_channel ? static_cast<std::size_t>(rows) : 1u, 1.0f);
  if (!spec.per_channel) q.scales[0] = scale_for(absmax_of(w, rows * cols), spec.type);
  const auto& fmt = spec.type == Fp8Type::E4M3 ? minifloat::kE4M3 : minifloat::kE5M2;
  ThreadPool& tp = pool ? *pool : ThreadPool::global();
  tp.parallel_for(static_cast<std::size_t>(rows), [&](std::size_t r, unsigned) {
    const float* x = w + static_cast<std::int64_t>(r) * cols;
    if (spec.per_channel) q.scales[r] = scale_for(absmax_of(x, cols), spec.type);
    // A true division as torch's (w / scale).to(float8): x * (1/scale) rounds differently near ties.
    const float s = q.scales[spec.per_channel ? r : 0];
    std::uint8_t* c = q.codes.data() + static_cast<std::int64_t>(r) * cols;
    for (std::int64_t j = 0; j < cols; ++j) c[j] = static_cast<std::uint8_t>(minifloat::encode(x[j] / s, fmt));
  });
  return q;
}

void dequantize_fp8_into(const Fp8Quantized& q, float* out) {
  // The 256 decoded values once, from the readers' decoder, then a lookup per weight.
  float lut[256];
  for (int v = 0; v < 256; ++v)
    lut[v] = q.spec.type == Fp8Type::E4M3 ? fp8_e4m3_to_f32(static_cast<std::uint8_t>(v))
                                          : fp8_e5m2_to_f32(static_cast<std::uint8_t>(v));
  ThreadPool::global().parallel_for(static_cast<std::size_t>(q.rows), [&](std::size_t r, unsigned) {
    const float s = q.scales[q.spec.per_channel ? r : 0];
    const std::size_t base = r * static_cast<std::size_t>(q.cols);
    for (std::int64_t j = 0; j < q.cols; ++j) out[base + static_cast<std::size_t>(j)] = lut[q.codes[base + static_cast<std::size_t>(j)]] * s;
  });
}

}  // namespace qs
