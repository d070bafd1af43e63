#include "quant/mxfp6.h"

#include <algorithm>
#include <cmath>

#include "backend/thread_pool.h"
#include "quant/format_checks.h"
#include "quant/minifloat.h"

namespace qs {
namespace {

constexpr minifloat::Format kE3M2{2, 3, 0x1F, 0x20};  // OCP FP6 E3M2: max 28, subnormal step 1/16
constexpr int kE3M2Emax = 4;

}  // namespace

std::uint8_t f32_to_e3m2(float x) { return static_cast<std::uint8_t>(minifloat::encode(x, kE3M2)); }

float e3m2_to_f32(std::uint8_t code) { return minifloat::decode(code & 0x3F, kE3M2); }

Result<void> fake_quantize_mxfp6(const float* w, std::int64_t rows, std::int64_t cols, float* out, ThreadPool* pool) {
  if (auto r = detail::check_whole_blocks(cols, kMxfp6Block, "MXFP6"); !r) return r.error();
  if (auto r = detail::check_finite(w, rows, cols); !r) return r.error();
  const std::int64_t bpr = cols / kMxfp6Block;
  ThreadPool& tp = pool ? *pool : ThreadPool::global();
  tp.parallel_for(static_cast<std::size_t>(rows), [&](std::size_t r, unsigned) {
    for (std::int64_t b = 0; b < bpr; ++b) {
      const std::int64_t at = (static_cast<std::int64_t>(r) * bpr + b) * kMxfp6Block;
      float amax = 0.0f;
      for (int j = 0; j < kMxfp6Block; ++j) amax = std::max(amax, std::fabs(w[at + j]));
      // floor(log2(amax)) exactly: frexp gives amax = m * 2^k with m in [0.5, 1).
      int k = 0;
      std::frexp(amax, &k);
      const int e = amax > 0.0f ? std::clamp(k - 1 - kE3M2Emax, -127, 127) : -127;
      const float inv = std::ldexp(1.0f, -e), scale = std::ldexp(1.0f, e);  // powers of two: exact
      for (int j = 0; j < kMxfp6Block; ++j) out[at + j] = e3m2_to_f32(f32_to_e3m2(w[at + j] * inv)) * scale;
    }
  });
  return {};
}

}  // namespace qs
