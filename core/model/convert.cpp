#include "model/convert.h"

#include <cmath>
#include <cstring>
#include <limits>
#include <string>

#include "model/tensor_info.h"
#include "quant/ggml_dequant.h"
#include "util/half.h"
#include "util/memory_budget.h"

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#include <immintrin.h>
#define QS_X86 1
#endif

namespace qs {

Result<void> check_f32_memory(const TensorInfo& t, int copies) {
  return check_memory(copies * 4.0 * static_cast<double>(t.numel()),
                      t.where() + (copies > 1 ? " as F32 with its dequantized copy" : " as F32"));
}

namespace {

template <class T>
T load_unaligned(const std::byte* p) {
  T v;
  std::memcpy(&v, p, sizeof(T));
  return v;
}

#ifdef QS_X86
// Built for F16C/AVX2 and only called after a run-time CPU check, so the binary
// still runs on x86-64 machines without them.
__attribute__((target("avx2,f16c"))) void f16_to_f32_f16c(const std::uint16_t* src, std::size_t n,
                                                           float* dst) {
  std::size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(src + i));
    _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(h));
  }
  for (; i < n; ++i) dst[i] = f16_to_f32(src[i]);
}

bool cpu_has_f16c() {
  static const bool has = [] {
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return false;
    const bool f16c = (c >> 29) & 1u;  // CPUID.1:ECX.F16C
    return f16c && __builtin_cpu_supports("avx2");
  }();
  return has;
}
#endif

}  // namespace

void f16_to_f32_n(const std::uint16_t* src, std::size_t n, float* dst) {
#ifdef QS_X86
  if (cpu_has_f16c()) return f16_to_f32_f16c(src, n, dst);
#endif
  for (std::size_t i = 0; i < n; ++i) dst[i] = f16_to_f32(src[i]);
}

void bf16_to_f32_n(const std::uint16_t* src, std::size_t n, float* dst) {
  // A shift per element; the compiler vectorises this loop.
  for (std::size_t i = 0; i < n; ++i) dst[i] = bf16_to_f32(src[i]);
}

float fp8_e4m3_to_f32(std::uint8_t v) {
  // OCP E4M3 "fn": bias 7, no infinities, S.1111.111 is NaN, max 448.
  const bool neg = v & 0x80;
  const int exp = (v >> 3) & 0xF;
  const int mant = v & 0x7;
  float r;
  if (exp == 0xF && mant == 0x7) return std::numeric_limits<float>::quiet_NaN();
  if (exp == 0)
    r = std::ldexp(static_cast<float>(mant), -9);  // subnormal: mant/8 * 2^-6
  else
    r = std::ldexp(1.0f + static_cast<float>(mant) / 8.0f, exp - 7);
  return neg ? -r : r;
}

float fp8_e5m2_to_f32(std::uint8_t v) {
  // E5M2 is the upper byte of an IEEE binary16.
  return f16_to_f32(static_cast<std::uint16_t>(v) << 8);
}

Result<void> convert_to_f32(DType t, const std::byte* src, std::size_t count, float* dst) {
  if (count == 0) return {};  // a zero-element tensor: nothing to read (its pointers may be null; memcpy must not see them)
  switch (t) {
    case DType::F32:
      std::memcpy(dst, src, count * sizeof(float));
      return {};
    case DType::F16:
    case DType::BF16: {
      // Source may be unaligned (safetensors does not guarantee alignment).
      if (reinterpret_cast<std::uintptr_t>(src) % alignof(std::uint16_t) == 0) {
        const auto* s = reinterpret_cast<const std::uint16_t*>(src);
        t == DType::F16 ? f16_to_f32_n(s, count, dst) : bf16_to_f32_n(s, count, dst);
      } else {
        for (std::size_t i = 0; i < count; ++i) {
          const auto h = load_unaligned<std::uint16_t>(src + 2 * i);
          dst[i] = t == DType::F16 ? f16_to_f32(h) : bf16_to_f32(h);
        }
      }
      return {};
    }
    case DType::F64:
      for (std::size_t i = 0; i < count; ++i) dst[i] = static_cast<float>(load_unaligned<double>(src + 8 * i));
      return {};
    case DType::I8:
      for (std::size_t i = 0; i < count; ++i) dst[i] = static_cast<float>(load_unaligned<std::int8_t>(src + i));
      return {};
    case DType::U8:
      for (std::size_t i = 0; i < count; ++i) dst[i] = static_cast<float>(load_unaligned<std::uint8_t>(src + i));
      return {};
    case DType::I16:
      for (std::size_t i = 0; i < count; ++i) dst[i] = static_cast<float>(load_unaligned<std::int16_t>(src + 2 * i));
      return {};
    case DType::U16:
      for (std::size_t i = 0; i < count; ++i) dst[i] = static_cast<float>(load_unaligned<std::uint16_t>(src + 2 * i));
      return {};
    case DType::I32:
      for (std::size_t i = 0; i < count; ++i) dst[i] = static_cast<float>(load_unaligned<std::int32_t>(src + 4 * i));
      return {};
    case DType::F8_E4M3:
      for (std::size_t i = 0; i < count; ++i) dst[i] = fp8_e4m3_to_f32(load_unaligned<std::uint8_t>(src + i));
      return {};
    case DType::F8_E5M2:
      for (std::size_t i = 0; i < count; ++i) dst[i] = fp8_e5m2_to_f32(load_unaligned<std::uint8_t>(src + i));
      return {};
    default:
      if (dtype_is_block_quantized(t)) {
        const unsigned blk = dtype_block_elems(t);
        if (count % blk != 0)
          return Error::invalid("convert_to_f32: " + std::to_string(count) + " is not a whole number of " +
                                std::string(dtype_name(t)) + " blocks");
        if (dequantize_ggml_blocks(t, src, count / blk, dst)) return {};
      }
      return Error::unsupported("type " + std::string(dtype_name(t)) + ": not decodable yet");
  }
}

}  // namespace qs
