#include "quant/ggml_kquants.h"

#include <algorithm>
#include <atomic>
#include <bit>
#include <cmath>
#include <cstring>

#include "quant/ggml_dequant.h"
#include "quant/ggml_kquant_parts.h"

namespace qs::kquant {
namespace {

using namespace parts;

// Scale and offset of each of the 8 sub-blocks of 32 of a super-block on an
// asymmetric grid 0..nmax, by weighted least squares over a sweep of candidate
// inverse scales (ggml's make_qkx2_quants), with the reference's weights
// av_x + |x| (av_x the sub-block's RMS): writes the scales, the (positive)
// offsets and the codes. The 8 sub-blocks run side by side as the 8 lanes of
// a vector: each lane does exactly the scalar reference's arithmetic in its
// order (so the bytes do not change), and the branches become per-lane
// selects. The sweep is sequential within a sub-block (a winning candidate's
// offset becomes the base of the later ones), so lanes across sub-blocks are
// where the width is. Explicit vector types, because left to itself GCC
// vectorised the wrong loop (each lane's sums became in-order horizontal
// reductions, slower than scalar code).
// Always inlined, so that each entry point below gets its own copy compiled
// for its instruction set (two SSE registers per vector, or one AVX register).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wpsabi"  // the vectors never cross a call: everything here is inlined
typedef float v8f __attribute__((vector_size(32)));
typedef std::int32_t v8i __attribute__((vector_size(32)));

// nearest_int (bit for bit, even where it wraps) and the clamp to [0, nmax].
// (By reference: vectors passed by value would change the call ABI.)
[[gnu::always_inline]] inline void code_of(const v8f& v, const v8f& top, v8f& out) {
  const v8f zero = {};
  v8f f = __builtin_convertvector((reinterpret_cast<v8i>(v + 12582912.0f) & 0x007FFFFF) - 0x00400000, v8f);
  f = f < zero ? zero : f;
  out = f > top ? top : f;
}

[[gnu::always_inline]] inline void fit_scales_and_mins_x8(const float* x, int nmax, float rmin, float rdelta,
                                                          int nstep, u8* codes, float* scales, float* neg_mins) {
  constexpr int n = 32, L = 8;
  const v8f zero = {};
  const v8f top = zero + static_cast<float>(nmax);
  v8f xt[n], wt[n];
  for (int b = 0; b < L; ++b)
    for (int i = 0; i < n; ++i) xt[i][b] = x[b * n + i];
  v8f sum_x2 = zero;
  for (int i = 0; i < n; ++i) sum_x2 += xt[i] * xt[i];
  v8f av_x;
  for (int b = 0; b < L; ++b) av_x[b] = std::sqrt(sum_x2[b] / 32);
  const v8i abs_mask = v8i{} + 0x7FFFFFFF;
  for (int i = 0; i < n; ++i) wt[i] = av_x + reinterpret_cast<v8f>(reinterpret_cast<v8i>(xt[i]) & abs_mask);
  v8f lo = xt[0], hi = xt[0], sum_w = wt[0], sum_x = wt[0] * xt[0];
  for (int i = 1; i < n; ++i) {
    lo = xt[i] < lo ? xt[i] : lo;
    hi = xt[i] > hi ? xt[i] : hi;
    sum_w += wt[i];
    sum_x += wt[i] * xt[i];
  }
  v8f best[n], trial[n];
  lo = lo > zero ? zero : lo;  // the offset only ever shifts down
  v8f base = lo, best_err = zero;
  const v8f iscale = top / (hi - lo);
  v8f scale = 1.0f / iscale;
  for (int i = 0; i < n; ++i) {
    code_of(iscale * (xt[i] - lo), top, best[i]);
    const v8f diff = scale * best[i] + lo - xt[i];
    best_err += wt[i] * (diff * diff);  // the reference's grouping: (w * d) * d rounds differently
  }
  for (int step = 0; step <= nstep; ++step) {
    const v8f is = (rmin + rdelta * static_cast<float>(step) + top) / (hi - base);
    v8f sum_l = zero, sum_l2 = zero, sum_xl = zero;
    for (int i = 0; i < n; ++i) {
      code_of(is * (xt[i] - base), top, trial[i]);
      const v8f l = trial[i];
      sum_l += wt[i] * l;
      sum_l2 += wt[i] * l * l;
      sum_xl += wt[i] * l * xt[i];
    }
    const v8f det = sum_w * sum_l2 - sum_l * sum_l;
    const v8i valid = det > zero;
    v8f s = (sum_w * sum_xl - sum_x * sum_l) / det;
    v8f m = (sum_l2 * sum_x - sum_l * sum_xl) / det;
    const v8i above = m > zero;  // offsets above zero are not representable: refit the scale alone
    m = above ? zero : m;
    s = above ? sum_xl / sum_l2 : s;
    v8f err = zero;
    for (int i = 0; i < n; ++i) {
      const v8f diff = s * trial[i] + m - xt[i];
      err += wt[i] * (diff * diff);
    }
    const v8i win = valid & (err < best_err);  // strictly better: ties keep the earlier candidate
    best_err = win ? err : best_err;
    scale = win ? s : scale;
    base = win ? m : base;  // the reference's quirk: the next candidates start from here
    for (int i = 0; i < n; ++i) best[i] = win ? trial[i] : best[i];
  }
  for (int b = 0; b < L; ++b) {
    const bool flat = hi[b] == lo[b];  // all values equal (after the shift): codes 0, scale 0
    scales[b] = flat ? 0.0f : scale[b];
    neg_mins[b] = flat ? -lo[b] : -base[b];
    for (int i = 0; i < n; ++i) codes[b * n + i] = flat ? u8{0} : static_cast<u8>(best[i][b]);
  }
}
#pragma GCC diagnostic pop

// Shared by Q4_K and Q5_K: codes in [0, nmax] for all 256 values plus d, dmin and packed scales.
[[gnu::always_inline]] inline void quantize_k_asym(const float* x, int nmax, float rmin, int nstep,
                                                   u8* head /* d, dmin, scales[12] */, u8* L) {
  float scales[8], mins[8];
  fit_scales_and_mins_x8(x, nmax, rmin, 0.1f, nstep, L, scales, mins);
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
    ggml_k4_scale_min(b, head + 4, s, m);
    const float D = d * static_cast<float>(s);
    if (D == 0.0f) continue;
    const float M = dmin * static_cast<float>(m);
    for (int l = 0; l < 32; ++l) L[32 * b + l] = static_cast<u8>(std::clamp(nearest_int((x[32 * b + l] + M) / D), 0, nmax));
  }
}

// Q3_K's sub-block fit (ggml's make_q3_quants with its refinement): 16 values
// onto -4..3, weights x^2, a start at -4 / (the extreme value), then up to 5
// sweeps that move single codes while that raises (sum w x l)^2 / (sum w l^2).
// Codes out are 0..7 (an all-zero sub-block: 0 with scale 0, as the reference).
float fit_q3_sub_block(const float* x, std::int8_t* L) {
  constexpr int n = 16, nmax = 4;
  float amax = 0, extreme = 0;
  for (int i = 0; i < n; ++i) {
    const float a = std::fabs(x[i]);
    if (a > amax) {
      amax = a;
      extreme = x[i];
    }
  }
  if (amax < 1e-15f) {
    std::memset(L, 0, n);
    return 0.0f;
  }
  const float iscale = -nmax / extreme;
  float sum_lx = 0, sum_l2 = 0;
  for (int i = 0; i < n; ++i) {
    const int l = std::clamp(nearest_int(iscale * x[i]), -nmax, nmax - 1);
    L[i] = static_cast<std::int8_t>(l);
    const float w = x[i] * x[i];
    sum_lx += w * x[i] * l;
    sum_l2 += w * l * l;
  }
  for (int sweep = 0; sweep < 5; ++sweep) {
    int changed = 0;
    for (int i = 0; i < n; ++i) {
      const float w = x[i] * x[i];
      float slx = sum_lx - w * x[i] * L[i];
      if (!(slx > 0)) continue;
      float sl2 = sum_l2 - w * L[i] * L[i];
      const int l = std::clamp(nearest_int(x[i] * sl2 / slx), -nmax, nmax - 1);
      if (l == L[i]) continue;
      slx += w * x[i] * l;
      sl2 += w * l * l;
      if (sl2 > 0 && slx * slx * sum_l2 > sum_lx * sum_lx * sl2) {
        L[i] = static_cast<std::int8_t>(l);
        sum_lx = slx;
        sum_l2 = sl2;
        ++changed;
      }
    }
    if (!changed) break;
  }
  for (int i = 0; i < n; ++i) L[i] = static_cast<std::int8_t>(L[i] + nmax);
  return sum_l2 > 0 ? sum_lx / sum_l2 : 0.0f;
}

}  // namespace

// Q2_K: scales[16] (low nibble scale, high nibble min), qs[64], d, dmin (formats.md 3.6).
void quantize_q2_k(const float* x, u8* out) {
  u8 L[kSuper];
  float scales[16], mins[16];
  float max_scale = 0, max_min = 0;
  for (int j = 0; j < 16; ++j) {
    // ggml's make_qkx2_quants for Q2_K: weights |x|, 16 candidates, mean absolute error.
    float w[16];
    for (int i = 0; i < 16; ++i) w[i] = std::fabs(x[16 * j + i]);
    scales[j] = fit_asymmetric_scale(16, 3, x + 16 * j, w, {-0.5f, 0.1f, 15, true}, L + 16 * j, mins[j]);
    max_scale = scales[j] > max_scale ? scales[j] : max_scale;
    max_min = mins[j] > max_min ? mins[j] : max_min;
  }
  u8* sc = out;
  std::memset(sc, 0, 16);
  store_half(out + 80, 0.0f);
  store_half(out + 82, 0.0f);
  if (max_scale > 0) {
    const float iscale = 15.0f / max_scale;
    for (int j = 0; j < 16; ++j) sc[j] = static_cast<u8>(nearest_int(iscale * scales[j]));
    store_half(out + 80, max_scale / 15.0f);
  }
  if (max_min > 0) {
    const float iscale = 15.0f / max_min;
    for (int j = 0; j < 16; ++j) sc[j] = static_cast<u8>(sc[j] | (nearest_int(iscale * mins[j]) << 4));
    store_half(out + 82, max_min / 15.0f);
  }
  q2_k_requantize_and_pack(x, L, out);
}

void quantize_q3_k(const float* x, u8* out) {
  std::int8_t L[kSuper];
  float scales[16];
  float max_scale = 0, amax = 0;
  for (int j = 0; j < 16; ++j) {
    scales[j] = fit_q3_sub_block(x + 16 * j, L + 16 * j);
    if (std::fabs(scales[j]) > amax) {
      amax = std::fabs(scales[j]);
      max_scale = scales[j];
    }
  }
  int ls[16] = {};
  if (max_scale != 0.0f) {
    const float iscale = -32.0f / max_scale;
    // (int8_t, as the reference holds it, before the clamp)
    for (int j = 0; j < 16; ++j) ls[j] = std::clamp<int>(static_cast<std::int8_t>(nearest_int(iscale * scales[j])), -32, 31) + 32;
    pack_scales_q3(ls, out + 96);
    store_half(out + 108, 1 / iscale);
  } else {
    std::memset(out + 96, 0, 12);
    store_half(out + 108, 0.0f);
  }
  q3_k_requantize_and_pack(x, L, out);
}

namespace {

[[gnu::always_inline]] inline void q4_k_body(const float* x, u8* out) {
  u8 L[kSuper];
  quantize_k_asym(x, 15, -1.0f, 20, out, L);
  pack_q4_k_codes(L, out);
}

[[gnu::always_inline]] inline void q5_k_body(const float* x, u8* out) {
  u8 L[kSuper];
  quantize_k_asym(x, 31, -0.5f, 15, out, L);
  pack_q5_k_codes(L, out);
}

// The scale search runs its 8 sub-blocks as 8 float lanes: one AVX register
// where the CPU has AVX2 (picked at run time), two SSE ones otherwise. Only
// "avx2" is enabled, not "fma": every operation stays the reference's single
// IEEE operation, so both builds write the same bytes.
#if defined(__x86_64__) && defined(__GNUC__)
#define QS_KQUANT_AVX2 1
__attribute__((target("avx2"))) void q4_k_avx2(const float* x, u8* out) { q4_k_body(x, out); }
__attribute__((target("avx2"))) void q5_k_avx2(const float* x, u8* out) { q5_k_body(x, out); }
#endif
std::atomic<bool> g_portable{false};

bool use_avx2() {
#ifdef QS_KQUANT_AVX2
  static const bool has = __builtin_cpu_supports("avx2");
  return has && !g_portable.load(std::memory_order_relaxed);
#else
  return false;
#endif
}

}  // namespace

void use_portable_kquants(bool portable) { g_portable = portable; }

void quantize_q4_k(const float* x, u8* out) {
#ifdef QS_KQUANT_AVX2
  if (use_avx2()) return q4_k_avx2(x, out);
#endif
  q4_k_body(x, out);
}

void quantize_q5_k(const float* x, u8* out) {
#ifdef QS_KQUANT_AVX2
  if (use_avx2()) return q5_k_avx2(x, out);
#endif
  q5_k_body(x, out);
}

namespace parts {

float fit_asymmetric_scale(int n, int nmax, const float* x, const float* w, const AsymmetricSweep& sweep, u8* L,
                           float& neg_min) {
  float lo = x[0], hi = x[0], sum_w = w[0], sum_x = w[0] * x[0];
  for (int i = 1; i < n; ++i) {
    lo = x[i] < lo ? x[i] : lo;
    hi = x[i] > hi ? x[i] : hi;
    sum_w += w[i];
    sum_x += w[i] * x[i];
  }
  if (lo > 0) lo = 0;
  if (hi <= lo) {
    std::memset(L, 0, static_cast<std::size_t>(n));
    neg_min = -lo;
    return 0.0f;
  }
  // (w * e) with e = |d| or d * d: the reference's grouping.
  const auto error_of = [&](float d) { return sweep.absolute ? std::fabs(d) : d * d; };
  float iscale = nmax / (hi - lo), scale = 1 / iscale, best = 0;
  for (int i = 0; i < n; ++i) {
    L[i] = static_cast<u8>(std::clamp(nearest_int(iscale * (x[i] - lo)), 0, nmax));
    best += w[i] * error_of(scale * L[i] + lo - x[i]);
  }
  u8 trial[32];
  for (int step = 0; step <= sweep.steps; ++step) {
    iscale = (sweep.rmin + sweep.rdelta * static_cast<float>(step) + nmax) / (hi - lo);
    float sum_l = 0, sum_l2 = 0, sum_xl = 0;
    for (int i = 0; i < n; ++i) {
      const int l = std::clamp(nearest_int(iscale * (x[i] - lo)), 0, nmax);
      trial[i] = static_cast<u8>(l);
      sum_l += w[i] * l;
      sum_l2 += w[i] * l * l;
      sum_xl += w[i] * l * x[i];
    }
    const float det = sum_w * sum_l2 - sum_l * sum_l;
    if (!(det > 0)) continue;
    float s = (sum_w * sum_xl - sum_x * sum_l) / det, m = (sum_l2 * sum_x - sum_l * sum_xl) / det;
    if (m > 0) {
      m = 0;
      s = sum_xl / sum_l2;
    }
    float err = 0;
    for (int i = 0; i < n; ++i) err += w[i] * error_of(s * trial[i] + m - x[i]);
    if (err < best) {
      std::memcpy(L, trial, static_cast<std::size_t>(n));
      best = err;
      scale = s;
      lo = m;  // the reference's quirk: later candidates start from the winner's offset
    }
  }
  neg_min = -lo;
  return scale;
}

void q6_k_with_weights(const float* x, const float* w, u8* out) {
  std::int8_t L[kSuper];  // codes + 32
  float scales[16];
  float max_scale = 0, max_abs = 0;
  for (int b = 0; b < 16; ++b) {
    scales[b] = fit_symmetric_scale(16, 32, x + 16 * b, w + 16 * b, L + 16 * b);
    if (std::fabs(scales[b]) > max_abs) {
      max_abs = std::fabs(scales[b]);
      max_scale = scales[b];
    }
  }
  std::memset(out, 0, 210);
  if (max_abs < kGroupMaxEps) return;  // an all-zero super-block is all zero bytes
  const float iscale = -128.0f / max_scale;
  store_half(out + 208, 1.0f / iscale);
  auto* sc = reinterpret_cast<std::int8_t*>(out + 192);
  for (int b = 0; b < 16; ++b) sc[b] = static_cast<std::int8_t>(std::min(127, nearest_int(iscale * scales[b])));
  const float d = load_half(out + 208);
  for (int b = 0; b < 16; ++b) {
    const float D = d * static_cast<float>(sc[b]);
    if (D == 0.0f) continue;  // sub-blocks whose stored scale is zero keep their first-pass codes
    for (int l = 0; l < 16; ++l)
      L[16 * b + l] = static_cast<std::int8_t>(std::clamp(nearest_int(x[16 * b + l] / D), -32, 31) + 32);
  }
  pack_q6_k_codes(reinterpret_cast<const u8*>(L), out);
}

}  // namespace parts

// Without an importance matrix the sub-block fits weigh by x^2.
void quantize_q6_k(const float* x, u8* out) {
  float w[kSuper];
  for (int i = 0; i < kSuper; ++i) w[i] = x[i] * x[i];
  parts::q6_k_with_weights(x, w, out);
}

}  // namespace qs::kquant
