#include "quant/fp4_formats.h"

#include <algorithm>
#include <cmath>

#include "backend/thread_pool.h"
#include "model/convert.h"
#include "quant/format_checks.h"
#include "quant/fp8_quant.h"
#include "quant/minifloat.h"

namespace qs {

std::uint8_t f32_to_e2m1(float x) { return static_cast<std::uint8_t>(minifloat::encode(x, minifloat::kE2M1)); }

float e2m1_to_f32(std::uint8_t code) { return minifloat::decode(code & 0xF, minifloat::kE2M1); }

double nvfp4_bits_per_weight(std::int64_t rows, std::int64_t cols) {
  const double n = static_cast<double>(rows) * static_cast<double>(cols);
  return n > 0 ? 4.5 + 32.0 / n : 4.5;
}

double Nvfp4Quantized::bits_per_weight() const { return nvfp4_bits_per_weight(rows, cols); }

namespace {

float block_absmax(const float* x, int n) {
  float m = 0.0f;
  for (int j = 0; j < n; ++j) m = std::max(m, std::fabs(x[j]));
  return m;
}

// Elements x[j] * inv onto E2M1, packed low nibble first.
void pack_block(const float* x, int n, float inv, std::uint8_t* out) {
  for (int j = 0; j < n; j += 2)
    out[j / 2] = static_cast<std::uint8_t>(f32_to_e2m1(x[j] * inv) | (f32_to_e2m1(x[j + 1] * inv) << 4));
}

void unpack_block(const std::uint8_t* in, int n, float scale, float* y) {
  for (int j = 0; j < n; j += 2) {
    y[j] = e2m1_to_f32(in[j / 2] & 0xF) * scale;
    y[j + 1] = e2m1_to_f32(in[j / 2] >> 4) * scale;
  }
}

// 2^e for e in [-127, 127], exact (2^-127 is a f32 subnormal).
float pow2(int e) { return std::ldexp(1.0f, e); }

}  // namespace

Result<Mxfp4Quantized> quantize_mxfp4(const float* w, std::int64_t rows, std::int64_t cols, ThreadPool* pool) {
  if (auto r = detail::check_whole_blocks(cols, kMxfp4Block, "MXFP4"); !r) return r.error();
  if (auto r = detail::check_finite(w, rows, cols); !r) return r.error();
  Mxfp4Quantized q;
  q.rows = rows;
  q.cols = cols;
  const std::int64_t bpr = cols / kMxfp4Block;
  q.packed.resize(static_cast<std::size_t>(rows * cols / 2));
  q.scales.resize(static_cast<std::size_t>(rows * bpr));
  ThreadPool& tp = pool ? *pool : ThreadPool::global();
  tp.parallel_for(static_cast<std::size_t>(rows), [&](std::size_t r, unsigned) {
    for (std::int64_t b = 0; b < bpr; ++b) {
      const std::int64_t i = static_cast<std::int64_t>(r) * bpr + b;
      const float* x = w + i * kMxfp4Block;
      const float amax = block_absmax(x, kMxfp4Block);
      // floor(log2(amax)) exactly: frexp gives amax = m * 2^k with m in [0.5, 1).
      int k = 0;
      std::frexp(amax, &k);
      const int e = amax > 0.0f ? std::clamp(k - 1 - 2, -127, 127) : -127;
      q.scales[static_cast<std::size_t>(i)] = static_cast<std::uint8_t>(e + 127);
      // Dividing by 2^e is multiplying by 2^-e (exact; 2^127 is finite).
      pack_block(x, kMxfp4Block, pow2(-e), q.packed.data() + i * kMxfp4Block / 2);
    }
  });
  return q;
}

void dequantize_mxfp4_into(const Mxfp4Quantized& q, float* out) {
  const std::int64_t bpr = q.cols / kMxfp4Block;
  ThreadPool::global().parallel_for(static_cast<std::size_t>(q.rows), [&](std::size_t r, unsigned) {
    for (std::int64_t b = 0; b < bpr; ++b) {
      const std::int64_t i = static_cast<std::int64_t>(r) * bpr + b;
      unpack_block(q.packed.data() + i * kMxfp4Block / 2, kMxfp4Block, pow2(q.scales[static_cast<std::size_t>(i)] - 127),
                   out + i * kMxfp4Block);
    }
  });
}

Result<Nvfp4Quantized> quantize_nvfp4(const float* w, std::int64_t rows, std::int64_t cols, ThreadPool* pool) {
  if (auto r = detail::check_whole_blocks(cols, kNvfp4Block, "NVFP4"); !r) return r.error();
  if (auto r = detail::check_finite(w, rows, cols); !r) return r.error();
  Nvfp4Quantized q;
  q.rows = rows;
  q.cols = cols;
  float amax = 0.0f;
  for (std::int64_t i = 0; i < rows * cols; ++i) amax = std::max(amax, std::fabs(w[i]));
  // An all-zero tensor keeps g = 1: every block scale and code is then zero.
  q.tensor_scale = amax > 0.0f ? amax / (6.0f * 448.0f) : 1.0f;
  const float g = q.tensor_scale;
  const std::int64_t bpr = cols / kNvfp4Block;
  q.packed.resize(static_cast<std::size_t>(rows * cols / 2));
  q.scales.resize(static_cast<std::size_t>(rows * bpr));
  ThreadPool& tp = pool ? *pool : ThreadPool::global();
  tp.parallel_for(static_cast<std::size_t>(rows), [&](std::size_t r, unsigned) {
    for (std::int64_t b = 0; b < bpr; ++b) {
      const std::int64_t i = static_cast<std::int64_t>(r) * bpr + b;
      const float* x = w + i * kNvfp4Block;
      const float bmax = block_absmax(x, kNvfp4Block);
      std::uint8_t sc = f32_to_fp8_e4m3(bmax / (6.0f * g));
      // A non-zero block whose scale rounds to E4M3 zero (amax_block < ~2^-10 of
      // the tensor's) takes the smallest subnormal 2^-9 instead of losing all its values.
      if (sc == 0 && bmax > 0.0f) sc = 1;
      q.scales[static_cast<std::size_t>(i)] = sc;
      const float s = fp8_e4m3_to_f32(sc) * g;
      std::uint8_t* out = q.packed.data() + i * kNvfp4Block / 2;
      if (s == 0.0f) {  // an all-zero block (or g*s underflowed): every element zero
        std::fill(out, out + kNvfp4Block / 2, std::uint8_t{0});
        continue;
      }
      // x / (s * g) as ModelOpt divides; element by element a true division.
      for (int j = 0; j < kNvfp4Block; j += 2)
        out[j / 2] = static_cast<std::uint8_t>(f32_to_e2m1(x[j] / s) | (f32_to_e2m1(x[j + 1] / s) << 4));
    }
  });
  return q;
}

void dequantize_nvfp4_into(const Nvfp4Quantized& q, float* out) {
  const std::int64_t bpr = q.cols / kNvfp4Block;
  ThreadPool::global().parallel_for(static_cast<std::size_t>(q.rows), [&](std::size_t r, unsigned) {
    for (std::int64_t b = 0; b < bpr; ++b) {
      const std::int64_t i = static_cast<std::int64_t>(r) * bpr + b;
      const float s = fp8_e4m3_to_f32(q.scales[static_cast<std::size_t>(i)]) * q.tensor_scale;
      unpack_block(q.packed.data() + i * kNvfp4Block / 2, kNvfp4Block, s, out + i * kNvfp4Block);
    }
  });
}

}  // namespace qs
