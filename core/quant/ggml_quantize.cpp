#include "quant/ggml_quantize.h"

#include <algorithm>
#include <atomic>
#include <cfloat>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>

#include "backend/thread_pool.h"
#include "quant/ggml_imatrix_quants.h"
#include "quant/ggml_kquants.h"
#include "quant/iq2_quantize.h"
#include "quant/iq3_quantize.h"
#include "quant/iq4_nl_quantize.h"
#include "util/half.h"

namespace qs {
namespace {

using u8 = std::uint8_t;

// These follow the reference's arithmetic literally (float ops in the same
// order, C casts that truncate, roundf for Q8_0). The build does not contract
// x*id + c into an FMA (ISO C++ mode, no -mfma), which decides rare ties.

void store_half(u8* p, float v) {
  const std::uint16_t h = f32_to_f16(v);
  std::memcpy(p, &h, 2);
}

// Q8_0 on explicit 8-lane vectors (the compiler left the scalar loop alone):
// the largest magnitude is exact in any order, and each code is the
// reference's x * id rounded half away from zero (truncate, then step by the
// sign of a fraction of at least one half), so the bytes are the reference's.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wpsabi"  // the vectors never cross a call: everything here is inlined
typedef float v8f __attribute__((vector_size(32)));
typedef std::int32_t v8i __attribute__((vector_size(32)));
typedef float v8f_unaligned __attribute__((vector_size(32), aligned(4)));

[[gnu::always_inline]] inline void q8_0_body(const float* x, u8* b) {
  v8f v[4];
  for (int k = 0; k < 4; ++k) v[k] = *reinterpret_cast<const v8f_unaligned*>(x + 8 * k);
  const v8i abs_mask = v8i{} + 0x7FFFFFFF;
  v8f m = reinterpret_cast<v8f>(reinterpret_cast<v8i>(v[0]) & abs_mask);
  for (int k = 1; k < 4; ++k) {
    const v8f a = reinterpret_cast<v8f>(reinterpret_cast<v8i>(v[k]) & abs_mask);
    m = a > m ? a : m;
  }
  float amax = 0.0f;
  for (int l = 0; l < 8; ++l) amax = amax > m[l] ? amax : m[l];
  const float d = amax / 127.0f;
  const float id = d != 0.0f ? 1.0f / d : 0.0f;
  store_half(b, d);
  v8i r[4];
  for (int k = 0; k < 4; ++k) {
    const v8f q = v[k] * id;
    const v8i t = __builtin_convertvector(q, v8i);  // truncates toward zero
    const v8f frac = q - __builtin_convertvector(t, v8f);
    r[k] = t - (frac >= 0.5f) + (frac <= -0.5f);  // true is -1
  }
  std::int32_t codes[32];
  std::memcpy(codes, r, sizeof codes);
  for (int j = 0; j < 32; ++j) b[2 + j] = static_cast<u8>(codes[j]);  // (a packing loop the compiler vectorises)
}
// Q4_0 likewise: the element of largest magnitude with its sign (the first
// one, as the reference's strict comparison keeps; +0 for a block of zeros),
// then each code min(15, (int8)(x * id + 8.5)) with the conversion's truncation.
[[gnu::always_inline]] inline void q4_0_body(const float* x, u8* b) {
  v8f v[4];
  for (int k = 0; k < 4; ++k) v[k] = *reinterpret_cast<const v8f_unaligned*>(x + 8 * k);
  const v8i abs_mask = v8i{} + 0x7FFFFFFF;
  v8f a[4];
  for (int k = 0; k < 4; ++k) a[k] = reinterpret_cast<v8f>(reinterpret_cast<v8i>(v[k]) & abs_mask);
  v8f m = a[0];
  for (int k = 1; k < 4; ++k) m = a[k] > m ? a[k] : m;
  float amax = 0.0f;
  for (int l = 0; l < 8; ++l) amax = amax > m[l] ? amax : m[l];
  // The first index holding it: the least index among the lanes that do (a
  // branchy scan mispredicted on every block).
  const v8i lane = {0, 1, 2, 3, 4, 5, 6, 7}, none = v8i{} + 32;
  v8i first = none;
  for (int k = 0; k < 4; ++k) {
    const v8i here = a[k] == amax ? lane + 8 * k : none;
    first = here < first ? here : first;
  }
  int at = 32;
  for (int l = 0; l < 8; ++l) at = first[l] < at ? first[l] : at;
  const float max = amax > 0.0f ? x[at] : 0.0f;
  const float d = max / -8.0f;
  const float id = d != 0.0f ? 1.0f / d : 0.0f;
  store_half(b, d);
  v8i q[4];
  for (int k = 0; k < 4; ++k) {
    const v8i t = __builtin_convertvector(v[k] * id + 8.5f, v8i);  // truncates toward zero
    const v8i top = v8i{} + 15;
    q[k] = t < top ? t : top;
  }
  std::int32_t codes[32];
  std::memcpy(codes, q, sizeof codes);
  for (int j = 0; j < 16; ++j) b[2 + j] = static_cast<u8>(codes[j] | (codes[j + 16] << 4));
}
#pragma GCC diagnostic pop

void q8_0(const float* x, u8* b) { q8_0_body(x, b); }
void q4_0(const float* x, u8* b) { q4_0_body(x, b); }

#if defined(__x86_64__) && defined(__GNUC__)
// The same with AVX2 (one register per vector, not two); no FMA, so the same IEEE operations.
__attribute__((target("avx2"))) void q8_0_avx2(const float* x, u8* b) { q8_0_body(x, b); }
__attribute__((target("avx2"))) void q4_0_avx2(const float* x, u8* b) { q4_0_body(x, b); }
#endif
std::atomic<bool> g_portable{false};
bool cpu_has_avx2() {
#if defined(__x86_64__) && defined(__GNUC__)
  static const bool has = __builtin_cpu_supports("avx2");
  return has && !g_portable.load(std::memory_order_relaxed);
#else
  return false;
#endif
}

// The element of largest magnitude, keeping its sign (first one wins).
float signed_absmax(const float* x) {
  float amax = 0.0f, max = 0.0f;
  for (int j = 0; j < 32; ++j)
    if (amax < std::fabs(x[j])) {
      amax = std::fabs(x[j]);
      max = x[j];
    }
  return max;
}

void min_max(const float* x, float& min, float& max) {
  min = FLT_MAX;
  max = -FLT_MAX;
  for (int j = 0; j < 32; ++j) {
    if (x[j] < min) min = x[j];
    if (x[j] > max) max = x[j];
  }
}

void q4_1(const float* x, u8* b) {
  float min, max;
  min_max(x, min, max);
  const float d = (max - min) / 15.0f;
  const float id = d != 0.0f ? 1.0f / d : 0.0f;
  store_half(b, d);
  store_half(b + 2, min);
  for (int j = 0; j < 16; ++j) {
    const int q0 = std::min(15, static_cast<int>(static_cast<std::int8_t>((x[j] - min) * id + 0.5f)));
    const int q1 = std::min(15, static_cast<int>(static_cast<std::int8_t>((x[j + 16] - min) * id + 0.5f)));
    b[4 + j] = static_cast<u8>(q0 | (q1 << 4));
  }
}

// Q5: low nibbles as Q4; bit 4 of element j goes to bit j of the little-endian u32 qh.
void pack5(const int* q, u8* qh_dst, u8* qs) {
  std::uint32_t qh = 0;
  for (int j = 0; j < 16; ++j) {
    qs[j] = static_cast<u8>((q[j] & 0x0F) | ((q[j + 16] & 0x0F) << 4));
    qh |= static_cast<std::uint32_t>((q[j] >> 4) & 1) << j;
    qh |= static_cast<std::uint32_t>((q[j + 16] >> 4) & 1) << (j + 16);
  }
  std::memcpy(qh_dst, &qh, 4);
}

void q5_0(const float* x, u8* b) {
  const float d = signed_absmax(x) / -16.0f;
  const float id = d != 0.0f ? 1.0f / d : 0.0f;
  store_half(b, d);
  int q[32];
  for (int j = 0; j < 32; ++j) q[j] = std::min(31, static_cast<int>(static_cast<std::int8_t>(x[j] * id + 16.5f)));
  pack5(q, b + 2, b + 6);
}

void q5_1(const float* x, u8* b) {
  float min, max;
  min_max(x, min, max);
  const float d = (max - min) / 31.0f;
  const float id = d != 0.0f ? 1.0f / d : 0.0f;
  store_half(b, d);
  store_half(b + 2, min);
  int q[32];
  for (int j = 0; j < 32; ++j) q[j] = static_cast<u8>((x[j] - min) * id + 0.5f);  // no clamp, as the reference
  pack5(q, b + 4, b + 8);
}

// llama-quantize's IQ4_NL (quantize_iq4_nl: the 15-scale search) and IQ4_XS.
void iq4_nl(const float* x, u8* b) { iq4nl::quantize_block(x, b, 7); }
void iq4_xs(const float* x, u8* b) { iq4nl::quantize_xs_block(x, b); }
// The i-quants: the same searches as with an importance matrix, weighted by x^2.
void iq3_xxs(const float* x, u8* b) { iq::quantize_iq3_xxs(x, nullptr, b); }
void iq3_s(const float* x, u8* b) { iq::quantize_iq3_s(x, nullptr, b); }
void iq2_s(const float* x, u8* b) { iq::quantize_iq2_s(x, nullptr, b); }

}  // namespace

void use_portable_quantizers(bool portable) {
  g_portable = portable;
  kquant::use_portable_kquants(portable);
}

bool ggml_quantize_supported(DType t) {
  switch (t) {
    case DType::Q8_0: case DType::Q4_0: case DType::Q4_1: case DType::Q5_0: case DType::Q5_1:
    case DType::Q2_K: case DType::Q3_K: case DType::Q4_K: case DType::Q5_K: case DType::Q6_K:
    case DType::IQ4_NL: case DType::IQ4_XS: case DType::IQ3_XXS: case DType::IQ3_S: case DType::IQ2_S:
    case DType::IQ2_XXS: case DType::IQ2_XS: case DType::IQ1_S: case DType::IQ1_M:  // with an importance matrix only
      return true;
    default:
      return false;
  }
}

GgmlBlockQuantizer ggml_block_quantizer(DType t) {
  switch (t) {
    case DType::Q8_0:
#if defined(__x86_64__) && defined(__GNUC__)
      if (cpu_has_avx2()) return q8_0_avx2;
#endif
      return q8_0;
    case DType::Q4_0:
#if defined(__x86_64__) && defined(__GNUC__)
      if (cpu_has_avx2()) return q4_0_avx2;
#endif
      return q4_0;
    case DType::Q4_1: return q4_1;
    case DType::Q5_0: return q5_0;
    case DType::Q5_1: return q5_1;
    case DType::Q2_K: return kquant::quantize_q2_k;
    case DType::Q3_K: return kquant::quantize_q3_k;
    case DType::Q4_K: return kquant::quantize_q4_k;
    case DType::Q5_K: return kquant::quantize_q5_k;
    case DType::Q6_K: return kquant::quantize_q6_k;
    case DType::IQ4_NL: return iq4_nl;
    case DType::IQ4_XS: return iq4_xs;
    case DType::IQ3_XXS: return iq3_xxs;
    case DType::IQ3_S: return iq3_s;
    case DType::IQ2_S: return iq2_s;
    default: return nullptr;
  }
}

std::size_t first_non_finite(const float* x, std::size_t n) {
  // An exponent of all ones is inf or nan. OR-ing the test over runs of 64 is
  // branch-free and vectorises; only a run with a hit is searched.
  constexpr std::size_t kRun = 64;
  for (std::size_t i = 0; i < n; i += kRun) {
    const std::size_t e = std::min(n, i + kRun);
    std::uint32_t any = 0;
    for (std::size_t j = i; j < e; ++j) {
      std::uint32_t b;
      std::memcpy(&b, x + j, 4);
      any |= static_cast<std::uint32_t>((b & 0x7F800000u) == 0x7F800000u);
    }
    if (any)
      for (std::size_t j = i; j < e; ++j)
        if (!std::isfinite(x[j])) return j;
  }
  return n;
}

Result<void> quantize_ggml_blocks(DType t, const float* src, std::size_t blocks, std::byte* dst) {
  const GgmlBlockQuantizer fn = ggml_block_quantizer(t);
  if (!fn && ggml_needs_importance(t))
    return Error::unsupported(std::string(dtype_name(t)) + " needs an importance matrix (llama-quantize --imatrix; "
                              "quantscope-cli calibrate --imatrix makes one)");
  if (!fn) return Error::unsupported("quantizing to " + std::string(dtype_name(t)) + " is not implemented yet");
  const std::size_t n = blocks * dtype_block_elems(t);
  if (const std::size_t i = first_non_finite(src, n); i < n)
    return Error::invalid("value " + std::to_string(i) + " is not finite (" + std::to_string(src[i]) +
                          "): quantizing it would write undefined bytes");
  auto* out = reinterpret_cast<u8*>(dst);
  const std::size_t elems = dtype_block_elems(t), bytes = dtype_block_bytes(t);
  // Blocks are independent: spread them over the pool (K-quants search 16-21 candidate scales per sub-block).
  constexpr std::size_t kBlocksPerTask = 256;
  const std::size_t tasks = (blocks + kBlocksPerTask - 1) / kBlocksPerTask;
  ThreadPool::global().parallel_for(tasks, [&](std::size_t task, unsigned) {
    const std::size_t end = std::min(blocks, (task + 1) * kBlocksPerTask);
    for (std::size_t i = task * kBlocksPerTask; i < end; ++i) fn(src + elems * i, out + bytes * i);
  });
  return {};
}

Result<void> quantize_ggml_rows(DType t, const float* src, std::int64_t rows, std::int64_t cols, const float* importance,
                                std::byte* dst) {
  if (!importance || !ggml_uses_importance(t))
    return quantize_ggml_blocks(t, src, static_cast<std::size_t>(rows * cols) / dtype_block_elems(t), dst);
  const std::size_t n = static_cast<std::size_t>(rows * cols);
  if (cols % static_cast<std::int64_t>(dtype_block_elems(t)) != 0)
    return Error::invalid("rows of " + std::to_string(cols) + " are not whole " + std::string(dtype_name(t)) + " blocks");
  if (const std::size_t i = first_non_finite(src, n); i < n)
    return Error::invalid("value " + std::to_string(i) + " is not finite (" + std::to_string(src[i]) +
                          "): quantizing it would write undefined bytes");
  const std::size_t row_bytes = static_cast<std::size_t>(cols) / dtype_block_elems(t) * dtype_block_bytes(t);
  auto* out = reinterpret_cast<u8*>(dst);
  // Rows are independent; a task takes rows worth about 64k values (the weighted searches cost ~40 fits per value).
  const std::size_t per_task = std::max<std::size_t>(1, 65536 / static_cast<std::size_t>(cols));
  const std::size_t tasks = (static_cast<std::size_t>(rows) + per_task - 1) / per_task;
  ThreadPool::global().parallel_for(tasks, [&](std::size_t task, unsigned) {
    const std::size_t end = std::min(static_cast<std::size_t>(rows), (task + 1) * per_task);
    for (std::size_t r = task * per_task; r < end; ++r)
      quantize_ggml_row_with_importance(t, src + r * static_cast<std::size_t>(cols), cols, importance, out + r * row_bytes);
  });
  return {};
}

}  // namespace qs
