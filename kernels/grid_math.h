#pragma once
// Integer-grid arithmetic shared by the CUDA kernels and the host: plain C++
// (no CUDA or core headers) that nvcc also compiles for the device, so the CPU
// tests run the very code the kernels run. Each step is one IEEE
// round-to-nearest operation, written with the _rn intrinsics on the device so
// that nvcc cannot contract a * b + c into an FMA; core/quant/int_grid.cpp is
// built for baseline x86-64 (no FMA) with ISO C++ (no contraction), so the
// same steps give the same bits on both sides.
#include <cmath>
#include <cstdint>

#if defined(__CUDACC__)
#define QS_HD __host__ __device__ __forceinline__
#else
#define QS_HD inline
#endif

namespace qs::grid_math {

QS_HD float add_rn(float a, float b) {
#if defined(__CUDA_ARCH__)
  return __fadd_rn(a, b);
#else
  return a + b;
#endif
}
QS_HD float sub_rn(float a, float b) {
#if defined(__CUDA_ARCH__)
  return __fsub_rn(a, b);
#else
  return a - b;
#endif
}
QS_HD float mul_rn(float a, float b) {
#if defined(__CUDA_ARCH__)
  return __fmul_rn(a, b);
#else
  return a * b;
#endif
}
QS_HD float div_rn(float a, float b) {
#if defined(__CUDA_ARCH__)
  return __fdiv_rn(a, b);
#else
  return a / b;
#endif
}
// Round half to even (std::nearbyint in the default rounding mode).
QS_HD float round_even_int(float v) {
#if defined(__CUDA_ARCH__)
  return rintf(v);
#else
  return std::nearbyint(v);
#endif
}

// std::min / std::max exactly (b < a ? b : a), so signed zeros and ties pick
// the same operand as the CPU code.
QS_HD float min_of(float a, float b) { return b < a ? b : a; }
QS_HD float max_of(float a, float b) { return a < b ? b : a; }

// The grid of a group whose smallest and largest values are `lo` and `hi`:
// int_grid.cpp's group_params / int_grid_params (the GPTQ reference's
// find_params), step for step. The range always includes 0; symmetric grids
// mirror it and put the zero point at 2^(bits-1).
QS_HD void grid_from_range(float lo, float hi, int bits, bool symmetric, float& scale, float& zero) {
  const int maxq = (1 << bits) - 1;
  float xmin = min_of(0.0f, lo), xmax = max_of(0.0f, hi);
  if (symmetric) {
    xmax = max_of(-xmin, xmax);
    if (xmin < 0.0f) xmin = -xmax;
  }
  if (xmin == 0.0f && xmax == 0.0f) {
    xmin = -1.0f;
    xmax = 1.0f;
  }
  scale = div_rn(sub_rn(xmax, xmin), static_cast<float>(maxq));
  zero = symmetric ? static_cast<float>(maxq + 1) / 2.0f : round_even_int(div_rn(-xmin, scale));
}

// The code of x as a float in [0, top]: round_half_even(x / scale) + zero,
// clamped. Rounding adds and removes 1.5 * 2^23 as int_grid.cpp does; for
// quotients beyond 2^22, where that is inexact, the result clamps to the same
// end as an exact rounding would (0 <= zero <= 255).
QS_HD float grid_code(float x, float scale, float zero, float top) {
  constexpr float kMagic = 12582912.0f;
  float q = add_rn(sub_rn(add_rn(div_rn(x, scale), kMagic), kMagic), zero);
  q = q < 0.0f ? 0.0f : q;
  return q > top ? top : q;
}

// The value a code stands for: scale * (code - zero).
QS_HD float grid_value(float code, float scale, float zero) { return mul_rn(scale, sub_rn(code, zero)); }

}  // namespace qs::grid_math
