#pragma once
// Pieces every K-quant writer shares, with and without an importance matrix
// (ggml_kquants.cpp, ggml_imatrix_quants.cpp): ggml's rounding, the F16
// fields, and the packings of scales and codes (docs/formats.md 3.6-3.10).
// The layouts are the format's; the writers differ only in how they choose.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>

#include "util/half.h"

namespace qs::kquant::parts {

using u8 = std::uint8_t;
inline constexpr int kSuper = 256;
inline constexpr float kGroupMaxEps = 1e-15f;  // ggml's GROUP_MAX_EPS: below it a group is all zero

// ggml's nearest_int: round to nearest even through the float mantissa.
inline int nearest_int(float v) {
  float f = v + 12582912.0f;
  std::int32_t i;
  std::memcpy(&i, &f, 4);
  return (i & 0x007FFFFF) - 0x00400000;
}

inline void store_half(u8* p, float v) {
  const std::uint16_t h = f32_to_f16(v);
  std::memcpy(p, &h, 2);
}
inline float load_half(const u8* p) {
  std::uint16_t h;
  std::memcpy(&h, p, 2);
  return f16_to_f32(h);
}

// sum x^2 over n values, in order (the reference's sigma2 starts from it).
inline float sum_of_squares(const float* x, std::int64_t n) {
  float s = 0;
  for (std::int64_t j = 0; j < n; ++j) s += x[j] * x[j];
  return s;
}

// The weights every ggml search takes with an importance matrix,
// imp * sqrt(sigma2 + x^2); without one (imp null), x^2.
inline void importance_weights(const float* x, const float* imp, float sigma2, int n, float* w) {
  if (imp)
    for (int j = 0; j < n; ++j) w[j] = imp[j] * std::sqrt(sigma2 + x[j] * x[j]);
  else
    for (int j = 0; j < n; ++j) w[j] = x[j] * x[j];
}

// A symmetric scale for codes l in [-nmax, nmax - 1] under weights w (ggml's
// make_qx_quants, weighted least squares): a start at -nmax / (the extreme
// value), 18 more candidates (nmax + 0.1 k) around it, the one maximising
// (sum w x l)^2 / (sum w l^2) kept. L gets l + nmax; an all-zero group gets
// codes 0 and scale 0, as the reference. (Q3_K/Q6_K sub-blocks, Q4_0/Q5_0 with
// an importance matrix, the K-quants' sub-block scales.)
float fit_symmetric_scale(int n, int nmax, const float* x, const float* w, std::int8_t* L);

// A scale for non-negative values on codes 0..nmax under weights w (ggml's
// make_qp_quants: the K-quants' sub-block scales and mins with an importance
// matrix, IQ2_XXS's first scale): the best of 9 inverse scales by weighted
// error, then up to 5 sweeps moving single codes while the fit improves.
float fit_positive_scale(int n, int nmax, const float* x, const float* w, u8* L);

// A scale and a non-positive offset for codes 0..nmax (n <= 32) under
// weights w, by weighted least squares over the candidate inverse scales
// (rmin + rdelta k + nmax) / (max - min), k = 0..steps (ggml's make_qkx2_quants
// with `absolute` error for Q2_K, make_qkx3_quants with squared error for the
// importance-weighted Q2_K/Q4_1/Q5_1/Q4_K/Q5_K). Returns the scale; neg_min
// gets -offset. (The 4-/5-bit fit without importance has a vector twin in
// ggml_kquants.cpp.)
struct AsymmetricSweep {
  float rmin, rdelta;
  int steps;
  bool absolute;  // mean absolute error instead of squared
};
float fit_asymmetric_scale(int n, int nmax, const float* x, const float* w, const AsymmetricSweep& sweep, u8* L,
                           float& neg_min);

// Q6_K from per-value weights: x^2 (llama-quantize without an importance
// matrix) or the importance itself (with one; Q6_K adds no sigma2 term).
void q6_k_with_weights(const float* x, const float* w, u8* out);

// Q4_K / Q5_K: eight 6-bit scales and mins into 12 bytes.
inline void pack_scales_k4(const u8* sc, const u8* mn, u8* s) {
  for (int j = 0; j < 4; ++j) {
    s[j] = sc[j];
    s[j + 4] = mn[j];
  }
  for (int j = 4; j < 8; ++j) {
    s[j + 4] = static_cast<u8>((sc[j] & 0x0F) | ((mn[j] & 0x0F) << 4));
    s[j - 4] = static_cast<u8>(s[j - 4] | ((sc[j] >> 4) << 6));
    s[j] = static_cast<u8>(s[j] | ((mn[j] >> 4) << 6));
  }
}

// Q3_K: sixteen 6-bit scales (stored with +32, so 0..63) into 12 bytes: low
// nibbles in bytes 0-7 (sub-blocks j and j + 8 share one), the top bits in 8-11.
inline void pack_scales_q3(const int* ls, u8* s) {
  std::memset(s, 0, 12);
  for (int j = 0; j < 16; ++j) {
    const int l = ls[j];
    if (j < 8) s[j] = static_cast<u8>(l & 0xF);
    else s[j - 8] = static_cast<u8>(s[j - 8] | ((l & 0xF) << 4));
    s[8 + j % 4] = static_cast<u8>(s[8 + j % 4] | ((l >> 4) << (2 * (j / 4))));
  }
}
inline int q3_scale(const u8* s, int j) {
  const int low = j < 8 ? s[j] & 0xF : s[j - 8] >> 4;
  return (low | (((s[8 + j % 4] >> (2 * (j / 4))) & 3) << 4)) - 32;
}

// 2-bit fields as Q2_K and Q3_K store them: value 128 h + 32 k + l in bits 2k of byte 32 h + l.
template <typename Code>
inline void pack_2bit(const Code* L, u8* qs) {
  for (int h = 0; h < 2; ++h)
    for (int l = 0; l < 32; ++l) {
      const Code* q = L + 128 * h + l;
      qs[32 * h + l] = static_cast<u8>(q[0] | (q[32] << 2) | (q[64] << 4) | (q[96] << 6));
    }
}

// Q2_K's last step, its scales (out[0..16)), d and dmin (out + 80, + 82) stored:
// codes again against the stored grid (a sub-block whose scale is zero keeps
// the fit's codes), then packed.
inline void q2_k_requantize_and_pack(const float* x, u8* L, u8* out) {
  const float d = load_half(out + 80), dmin = load_half(out + 82);
  for (int j = 0; j < 16; ++j) {
    const float D = d * static_cast<float>(out[j] & 0xF);
    if (D == 0.0f) continue;
    const float M = dmin * static_cast<float>(out[j] >> 4);
    for (int i = 0; i < 16; ++i) L[16 * j + i] = static_cast<u8>(std::clamp(nearest_int((x[16 * j + i] + M) / D), 0, 3));
  }
  pack_2bit(L, out + 16);
}

// Q3_K's last step, its scales (out + 96) and d (out + 108) stored: hmask[32],
// qs[64]. L holds the fit's codes 0..7 and is used as scratch.
inline void q3_k_requantize_and_pack(const float* x, std::int8_t* L, u8* out) {
  const float d = load_half(out + 108);
  for (int j = 0; j < 16; ++j) {
    const float D = d * static_cast<float>(q3_scale(out + 96, j));
    if (D == 0.0f) continue;
    for (int i = 0; i < 16; ++i)
      L[16 * j + i] = static_cast<std::int8_t>(std::clamp(nearest_int(x[16 * j + i] / D), -4, 3) + 4);
  }
  // The high bit of value j goes to bit j / 32 of byte j % 32.
  u8* hmask = out;
  std::memset(hmask, 0, 32);
  for (int j = 0; j < kSuper; ++j)
    if (L[j] > 3) {
      hmask[j % 32] = static_cast<u8>(hmask[j % 32] | (1 << (j / 32)));
      L[j] = static_cast<std::int8_t>(L[j] - 4);
    }
  pack_2bit(L, out + 32);
}

// Q4_K codes (qs at out + 16): value 64 c + l low nibble, 64 c + 32 + l high.
inline void pack_q4_k_codes(const u8* L, u8* out) {
  u8* qs = out + 16;
  for (int c = 0; c < 4; ++c)
    for (int l = 0; l < 32; ++l) qs[32 * c + l] = static_cast<u8>(L[64 * c + l] | (L[64 * c + 32 + l] << 4));
}
// Q5_K codes: qh[32] at out + 16 (bit 2c / 2c + 1 the fifth bits), qs at out + 48.
inline void pack_q5_k_codes(const u8* L, u8* out) {
  u8* qh = out + 16;
  u8* qs = out + 48;
  std::memset(qh, 0, 32);
  for (int c = 0; c < 4; ++c)
    for (int l = 0; l < 32; ++l) {
      const int lo = L[64 * c + l], hi = L[64 * c + 32 + l];
      qs[32 * c + l] = static_cast<u8>((lo & 0x0F) | ((hi & 0x0F) << 4));
      qh[l] = static_cast<u8>(qh[l] | ((lo >> 4) << (2 * c)) | ((hi >> 4) << (2 * c + 1)));
    }
}
// Q6_K codes 0..63: ql[128] at out, qh[64] at out + 128.
inline void pack_q6_k_codes(const u8* L, u8* out) {
  u8* ql = out;
  u8* qh = out + 128;
  for (int h = 0; h < 2; ++h)
    for (int l = 0; l < 32; ++l) {
      const u8* q = L + 128 * h;
      ql[64 * h + l] = static_cast<u8>((q[l] & 0x0F) | ((q[l + 64] & 0x0F) << 4));
      ql[64 * h + l + 32] = static_cast<u8>((q[l + 32] & 0x0F) | ((q[l + 96] & 0x0F) << 4));
      qh[32 * h + l] = static_cast<u8>((q[l] >> 4) | ((q[l + 32] >> 4) << 2) | ((q[l + 64] >> 4) << 4) | ((q[l + 96] >> 4) << 6));
    }
}

}  // namespace qs::kquant::parts
