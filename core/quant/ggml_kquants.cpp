#include "quant/ggml_kquants.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "util/half.h"

namespace qs::kquant {
namespace {

using u8 = std::uint8_t;
constexpr int kSuper = 256;

// ggml's nearest_int: round to nearest even through the float mantissa.
inline int nearest_int(float v) {
  float f = v + 12582912.0f;
  std::int32_t i;
  std::memcpy(&i, &f, 4);
  return (i & 0x007FFFFF) - 0x00400000;
}

void store_half(u8* p, float v) {
  const std::uint16_t h = f32_to_f16(v);
  std::memcpy(p, &h, 2);
}
float load_half(const u8* p) {
  std::uint16_t h;
  std::memcpy(&h, p, 2);
  return f16_to_f32(h);
}

// Scale and offset of one sub-block on an asymmetric grid 0..nmax, by weighted
// least squares over a sweep of candidate inverse scales: returns the scale,
// writes the (positive) offset to `neg_min` and the codes to `codes`.
float fit_scale_and_min(const float* x, const float* w, int n, int nmax, float rmin, float rdelta, int nstep,
                        u8* codes, float* neg_min) {
  float lo = x[0], hi = x[0], sum_w = w[0], sum_x = w[0] * x[0];
  for (int i = 1; i < n; ++i) {
    lo = x[i] < lo ? x[i] : lo;
    hi = x[i] > hi ? x[i] : hi;
    sum_w += w[i];
    sum_x += w[i] * x[i];
  }
  if (lo > 0) lo = 0;  // the offset only ever shifts down
  if (hi == lo) {
    std::fill(codes, codes + n, u8{0});
    *neg_min = -lo;
    return 0.0f;
  }
  auto code_at = [&](float iscale, float base, int i) { return std::clamp(nearest_int(iscale * (x[i] - base)), 0, nmax); };
  float iscale = static_cast<float>(nmax) / (hi - lo);
  float scale = 1.0f / iscale;
  float best_err = 0;
  for (int i = 0; i < n; ++i) {
    codes[i] = static_cast<u8>(code_at(iscale, lo, i));
    const float diff = scale * codes[i] + lo - x[i];
    best_err += w[i] * diff * diff;
  }
  // The reference's quirk, kept for byte-exactness: once a candidate wins, its
  // offset becomes the base of every later candidate (range and codes).
  float base = lo;
  u8 trial[32];
  for (int step = 0; step <= nstep; ++step) {
    const float is = (rmin + rdelta * static_cast<float>(step) + static_cast<float>(nmax)) / (hi - base);
    float sum_l = 0, sum_l2 = 0, sum_xl = 0;
    for (int i = 0; i < n; ++i) {
      const int l = code_at(is, base, i);
      trial[i] = static_cast<u8>(l);
      sum_l += w[i] * l;
      sum_l2 += w[i] * l * l;
      sum_xl += w[i] * l * x[i];
    }
    const float det = sum_w * sum_l2 - sum_l * sum_l;
    if (!(det > 0)) continue;
    float s = (sum_w * sum_xl - sum_x * sum_l) / det;
    float m = (sum_l2 * sum_x - sum_l * sum_xl) / det;
    if (m > 0) {  // offsets above zero are not representable: refit the scale alone
      m = 0;
      s = sum_xl / sum_l2;
    }
    float err = 0;
    for (int i = 0; i < n; ++i) {
      const float diff = s * trial[i] + m - x[i];
      err += w[i] * diff * diff;
    }
    if (err < best_err) {  // strictly better: ties keep the earlier candidate
      std::copy(trial, trial + n, codes);
      best_err = err;
      scale = s;
      base = m;
    }
  }
  *neg_min = -base;
  return scale;
}

// Pack eight 6-bit scales and mins into 12 bytes (formats.md 3.8).
void pack_scales_k4(const u8* sc, const u8* mn, u8* s) {
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
void unpack_scale_k4(int j, const u8* s, int& sc, int& mn) {
  if (j < 4) {
    sc = s[j] & 63;
    mn = s[j + 4] & 63;
  } else {
    sc = (s[j + 4] & 0x0F) | ((s[j - 4] >> 6) << 4);
    mn = (s[j + 4] >> 4) | ((s[j] >> 6) << 4);
  }
}

// Shared by Q4_K and Q5_K: codes in [0, nmax] for all 256 values plus d, dmin and packed scales.
void quantize_k_asym(const float* x, int nmax, float rmin, int nstep, u8* head /* d, dmin, scales[12] */, u8* L) {
  float scales[8], mins[8], weights[32];
  for (int b = 0; b < 8; ++b) {
    const float* xb = x + 32 * b;
    float sum_x2 = 0;
    for (int l = 0; l < 32; ++l) sum_x2 += xb[l] * xb[l];
    const float av_x = std::sqrt(sum_x2 / 32);
    for (int l = 0; l < 32; ++l) weights[l] = av_x + std::fabs(xb[l]);
    scales[b] = fit_scale_and_min(xb, weights, 32, nmax, rmin, 0.1f, nstep, L + 32 * b, &mins[b]);
  }
  float max_scale = 0, max_min = 0;
  for (int b = 0; b < 8; ++b) {
    max_scale = scales[b] > max_scale ? scales[b] : max_scale;
    max_min = mins[b] > max_min ? mins[b] : max_min;
  }
  const float inv_scale = max_scale > 0 ? 63.0f / max_scale : 0.0f;
  const float inv_min = max_min > 0 ? 63.0f / max_min : 0.0f;
  u8 sc[8], mn[8];
  for (int b = 0; b < 8; ++b) {
    sc[b] = static_cast<u8>(std::min(63, nearest_int(inv_scale * scales[b])));
    mn[b] = static_cast<u8>(std::min(63, nearest_int(inv_min * mins[b])));
  }
  store_half(head, max_scale / 63.0f);
  store_half(head + 2, max_min / 63.0f);
  pack_scales_k4(sc, mn, head + 4);
  // Re-quantize against the scales as stored (f16 d, 6-bit factors).
  const float d = load_half(head), dmin = load_half(head + 2);
  for (int b = 0; b < 8; ++b) {
    int s, m;
    unpack_scale_k4(b, head + 4, s, m);
    const float D = d * static_cast<float>(s);
    if (D == 0.0f) continue;
    const float M = dmin * static_cast<float>(m);
    for (int l = 0; l < 32; ++l) L[32 * b + l] = static_cast<u8>(std::clamp(nearest_int((x[32 * b + l] + M) / D), 0, nmax));
  }
}

// A signed scale for codes in [-nmax, nmax-1] (Q6_K's sub-blocks of 16), fitted with
// weights x^2 over 19 candidate inverse scales around -nmax / (the extreme value).
float fit_signed_scale(const float* x, int n, int nmax, std::int8_t* codes) {
  float amax = 0, extreme = 0;
  for (int i = 0; i < n; ++i) {
    const float a = std::fabs(x[i]);
    if (a > amax) {
      amax = a;
      extreme = x[i];
    }
  }
  if (amax < 1e-15f) {
    // An all-zero group: the reference stores raw code 0 (= -nmax here), not the
    // grid's zero; with scale 0 it decodes to 0 either way, but the bytes differ.
    std::fill(codes, codes + n, static_cast<std::int8_t>(-nmax));
    return 0.0f;
  }
  auto fit = [&](float iscale, float& sum_lx, float& sum_l2) {
    sum_lx = 0;
    sum_l2 = 0;
    for (int i = 0; i < n; ++i) {
      const int l = std::clamp(nearest_int(iscale * x[i]), -nmax, nmax - 1);
      const float w = x[i] * x[i];
      sum_lx += w * x[i] * l;
      sum_l2 += w * l * l;
    }
  };
  auto set_codes = [&](float iscale) {
    for (int i = 0; i < n; ++i) codes[i] = static_cast<std::int8_t>(std::clamp(nearest_int(iscale * x[i]), -nmax, nmax - 1));
  };
  float iscale = -static_cast<float>(nmax) / extreme;
  float sum_lx, sum_l2;
  fit(iscale, sum_lx, sum_l2);
  set_codes(iscale);
  float scale = sum_l2 != 0 ? sum_lx / sum_l2 : 0.0f;
  float best = scale * sum_lx;
  for (int k = -9; k <= 9; ++k) {
    if (k == 0) continue;
    iscale = -(static_cast<float>(nmax) + 0.1f * static_cast<float>(k)) / extreme;
    fit(iscale, sum_lx, sum_l2);
    if (sum_l2 > 0 && sum_lx * sum_lx > best * sum_l2) {
      set_codes(iscale);
      scale = sum_lx / sum_l2;
      best = scale * sum_lx;
    }
  }
  return scale;
}

}  // namespace

void quantize_q4_k(const float* x, u8* out) {
  u8 L[kSuper];
  quantize_k_asym(x, 15, -1.0f, 20, out, L);
  u8* qs = out + 16;
  for (int c = 0; c < 4; ++c)
    for (int l = 0; l < 32; ++l) qs[32 * c + l] = static_cast<u8>(L[64 * c + l] | (L[64 * c + 32 + l] << 4));
}

void quantize_q5_k(const float* x, u8* out) {
  u8 L[kSuper];
  quantize_k_asym(x, 31, -0.5f, 15, out, L);
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

void quantize_q6_k(const float* x, u8* out) {
  std::int8_t codes[kSuper];
  float scales[16];
  float max_scale = 0, max_abs = 0;
  for (int b = 0; b < 16; ++b) {
    scales[b] = fit_signed_scale(x + 16 * b, 16, 32, codes + 16 * b);
    const float a = std::fabs(scales[b]);
    if (a > max_abs) {
      max_abs = a;
      max_scale = scales[b];
    }
  }
  std::memset(out, 0, 210);
  if (max_abs < 1e-15f) return;  // an all-zero super-block is all zero bytes
  const float iscale = -128.0f / max_scale;
  store_half(out + 208, 1.0f / iscale);
  auto* sc = reinterpret_cast<std::int8_t*>(out + 192);
  for (int b = 0; b < 16; ++b) sc[b] = static_cast<std::int8_t>(std::min(127, nearest_int(iscale * scales[b])));
  const float d = load_half(out + 208);
  u8 L[kSuper];
  for (int b = 0; b < 16; ++b) {
    const float D = d * static_cast<float>(sc[b]);
    for (int l = 0; l < 16; ++l) {
      const int i = 16 * b + l;
      // Sub-blocks whose stored scale is zero keep their first-pass codes.
      const int q = D == 0.0f ? codes[i] : std::clamp(nearest_int(x[i] / D), -32, 31);
      L[i] = static_cast<u8>(q + 32);
    }
  }
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

}  // namespace qs::kquant
