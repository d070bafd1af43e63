#pragma once
// Round-to-nearest-even encoding of a float onto a small binary float format
// (FP8 E4M3 / E5M2, FP4 E2M1): shared by the FP8, MXFP4 and NVFP4 quantizers.
// The formats differ only in mantissa width, exponent bias and the largest
// finite code, so one encoder serves them all.
#include <bit>
#include <cstdint>

#include "quant/int_grid.h"  // detail::round_even

namespace qs::minifloat {

struct Format {
  int mbits;          // mantissa bits
  int bias;           // exponent bias; the smallest normal exponent is 1 - bias
  std::uint32_t max;  // largest finite magnitude code (exponent << mbits | mantissa)
  std::uint32_t sign; // the sign bit of a code
};

inline constexpr Format kE4M3{3, 7, 0x7E, 0x80};    // OCP E4M3FN: max 448 (0x7F is NaN, no Inf)
inline constexpr Format kE5M2{2, 15, 0x7B, 0x80};   // OCP E5M2: max 57344 (0x7C.. are Inf/NaN)
inline constexpr Format kE2M1{1, 1, 0x7, 0x8};      // OCP FP4: +-{0, 0.5, 1, 1.5, 2, 3, 4, 6}

// The code of a finite float: RNE on the format's grid, magnitudes past the
// largest finite value saturate to it (OCP "satfinite"; no Inf is ever made).
// Because codes are (biased exponent << mbits) + mantissa, a subnormal's code
// is its count of the smallest step, and a mantissa that rounds up to 2^mbits
// carries into the exponent by plain addition.
inline std::uint32_t encode(float x, const Format& f) {
  const std::uint32_t bits = std::bit_cast<std::uint32_t>(x);
  const std::uint32_t sign = (bits >> 31) ? f.sign : 0u;
  const std::uint32_t mag = bits & 0x7FFFFFFFu;
  const int e = static_cast<int>(mag >> 23) - 127;  // f32 subnormals: -127, far below every format here
  std::uint32_t code;
  if (e < 1 - f.bias) {
    // Subnormal range: count steps of 2^(1 - bias - mbits); scaling by a power of two is exact here.
    const float steps = std::bit_cast<float>(mag) * std::bit_cast<float>(static_cast<std::uint32_t>(127 - (1 - f.bias - f.mbits)) << 23);
    code = static_cast<std::uint32_t>(detail::round_even(steps));
  } else if (e + f.bias > 64) {
    code = f.max;  // far out of range: saturate before the shift below could overflow
  } else {
    const int shift = 23 - f.mbits;
    const std::uint32_t m = mag & 0x7FFFFFu;
    std::uint32_t q = m >> shift;
    const std::uint32_t rem = m & ((1u << shift) - 1u), half = 1u << (shift - 1);
    if (rem > half || (rem == half && (q & 1u))) ++q;
    code = (static_cast<std::uint32_t>(e + f.bias) << f.mbits) + q;
  }
  return sign | (code < f.max ? code : f.max);
}

// The value of a magnitude code with the sign bit (finite codes only).
inline float decode(std::uint32_t code, const Format& f) {
  const std::uint32_t mag = code & (f.sign - 1u);
  const int e = static_cast<int>(mag >> f.mbits);
  const std::uint32_t m = mag & ((1u << f.mbits) - 1u);
  // value = (e ? 2^mbits + m : m) * 2^(max(e,1) - bias - mbits), exact in f32.
  const float steps = static_cast<float>(e ? (1u << f.mbits) + m : m);
  const int p = (e ? e : 1) - f.bias - f.mbits;
  const float v = steps * std::bit_cast<float>(static_cast<std::uint32_t>(127 + p) << 23);
  return (code & f.sign) ? -v : v;
}

}  // namespace qs::minifloat
