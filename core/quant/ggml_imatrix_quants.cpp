#include "quant/ggml_imatrix_quants.h"

#include <cmath>
#include <cstring>

#include "quant/ggml_kquant_parts.h"
#include "quant/iq1_quantize.h"
#include "quant/iq2_quantize.h"
#include "quant/iq3_quantize.h"
#include "quant/iq4_nl_quantize.h"

namespace qs {
namespace {

using namespace kquant::parts;

// The reference's arithmetic in its order, in float (the build does not
// contract into FMA): its rounding decides ties and so the bytes.

// ggml's make_qkx3_quants as the importance-weighted quantizers call it: 37 candidates, squared error.
constexpr AsymmetricSweep kSweep{-0.9f, 0.05f, 36, false};

// ---- blocks of 32 (sigma2 over the whole row) -------------------------------

void pack_low_high(const std::uint8_t* L, std::uint8_t* qs, std::uint8_t* qh /* or null */) {
  std::uint32_t high = 0;
  for (int j = 0; j < 16; ++j) {
    qs[j] = static_cast<std::uint8_t>((L[j] & 0x0F) | ((L[j + 16] & 0x0F) << 4));
    high |= static_cast<std::uint32_t>((L[j] >> 4) & 1) << j;
    high |= static_cast<std::uint32_t>((L[j + 16] >> 4) & 1) << (j + 16);
  }
  if (qh) std::memcpy(qh, &high, 4);
}

void row_32(DType t, const float* x, std::int64_t n, const float* imp, std::uint8_t* out) {
  const float sigma2 = sum_of_squares(x, n) / static_cast<float>(n);
  const std::size_t bytes = dtype_block_bytes(t);
  float w[32];
  for (std::int64_t b = 0; b < n / 32; ++b, out += bytes) {
    const float* xb = x + 32 * b;
    importance_weights(xb, imp + 32 * b, sigma2, 32, w);
    if (t == DType::Q4_0 || t == DType::Q5_0) {
      std::int8_t L[32];
      const float d = fit_symmetric_scale(32, t == DType::Q4_0 ? 8 : 16, xb, w, L);
      store_half(out, d);
      pack_low_high(reinterpret_cast<const std::uint8_t*>(L), t == DType::Q4_0 ? out + 2 : out + 6,
                    t == DType::Q4_0 ? nullptr : out + 2);
    } else {  // Q4_1, Q5_1
      std::uint8_t L[32];
      float neg_min;
      const float d = fit_asymmetric_scale(32, t == DType::Q4_1 ? 15 : 31, xb, w, kSweep, L, neg_min);
      store_half(out, d);
      store_half(out + 2, -neg_min);
      pack_low_high(L, t == DType::Q4_1 ? out + 4 : out + 8, t == DType::Q4_1 ? nullptr : out + 4);
    }
  }
}

// ---- K-quant super-blocks ---------------------------------------------------

void q2_k(const float* x, const float* imp, std::uint8_t* out) {
  const float sigma2 = sum_of_squares(x, kSuper) / kSuper;
  std::uint8_t L[kSuper], Ls[16], Lm[16];
  float scales[16], mins[16], sw[16], w[16];
  for (int j = 0; j < 16; ++j) {
    importance_weights(x + 16 * j, imp + 16 * j, sigma2, 16, w);
    sw[j] = 0;
    for (int l = 0; l < 16; ++l) sw[j] += w[l];
    scales[j] = fit_asymmetric_scale(16, 3, x + 16 * j, w, kSweep, L + 16 * j, mins[j]);
  }
  const float dm = fit_positive_scale(16, 15, scales, sw, Ls), mm = fit_positive_scale(16, 15, mins, sw, Lm);
  store_half(out + 80, dm);
  store_half(out + 82, mm);
  for (int j = 0; j < 16; ++j) out[j] = static_cast<std::uint8_t>(Ls[j] | (Lm[j] << 4));
  q2_k_requantize_and_pack(x, L, out);
}

void q3_k(const float* x, const float* imp, std::uint8_t* out) {
  const float sigma2 = 2 * (sum_of_squares(x, kSuper) / kSuper);
  std::int8_t L[kSuper], Ls[16];
  float scales[16], sw[16], w[16];
  for (int j = 0; j < 16; ++j) {
    importance_weights(x + 16 * j, imp + 16 * j, sigma2, 16, w);
    sw[j] = 0;
    for (int l = 0; l < 16; ++l) sw[j] += w[l];
    scales[j] = fit_symmetric_scale(16, 4, x + 16 * j, w, L + 16 * j);
  }
  const float d = fit_symmetric_scale(16, 32, scales, sw, Ls);
  int ls[16];
  for (int j = 0; j < 16; ++j) ls[j] = Ls[j];
  pack_scales_q3(ls, out + 96);
  store_half(out + 108, d);
  q3_k_requantize_and_pack(x, L, out);
}

// Q4_K (nmax 15) and Q5_K (nmax 31).
void q45_k(const float* x, const float* imp, int nmax, std::uint8_t* out) {
  const float sigma2 = 2 * (sum_of_squares(x, kSuper) / kSuper);
  std::uint8_t L[kSuper], Ls[8], Lm[8];
  float scales[8], mins[8], sw[8], w[32];
  for (int j = 0; j < 8; ++j) {
    importance_weights(x + 32 * j, imp + 32 * j, sigma2, 32, w);
    sw[j] = 0;
    for (int l = 0; l < 32; ++l) sw[j] += w[l];
    scales[j] = fit_asymmetric_scale(32, nmax, x + 32 * j, w, kSweep, L + 32 * j, mins[j]);
  }
  const float d = fit_positive_scale(8, 63, scales, sw, Ls), dmin = fit_positive_scale(8, 63, mins, sw, Lm);
  pack_scales_k4(Ls, Lm, out + 4);
  store_half(out, d);
  store_half(out + 2, dmin);
  const float D0 = load_half(out), M0 = load_half(out + 2);
  for (int j = 0; j < 8; ++j) {
    const int sc = j < 4 ? out[4 + j] & 63 : (out[8 + j] & 0x0F) | ((out[j] >> 6) << 4);
    const int m = j < 4 ? out[8 + j] & 63 : (out[8 + j] >> 4) | ((out[4 + j] >> 6) << 4);
    const float D = D0 * static_cast<float>(sc);
    if (D == 0.0f) continue;
    const float M = M0 * static_cast<float>(m);
    for (int i = 0; i < 32; ++i)
      L[32 * j + i] = static_cast<std::uint8_t>(std::clamp(nearest_int((x[32 * j + i] + M) / D), 0, nmax));
  }
  if (nmax == 15) pack_q4_k_codes(L, out);
  else pack_q5_k_codes(L, out);
}

}  // namespace

namespace kquant::parts {

// A symmetric scale for codes in [-nmax, nmax - 1] under weights w (ggml's
// make_qx_quants, weighted least squares form): a start at -nmax / (the
// extreme value), then 18 more candidates (nmax + 0.1 k) around it; the one
// that maximises (sum w x l)^2 / (sum w l^2) wins. Codes out are l + nmax; an
// all-zero group gets codes 0 and scale 0, as the reference.
float fit_symmetric_scale(int n, int nmax, const float* x, const float* w, std::int8_t* L) {
  float amax = 0, extreme = 0;
  for (int i = 0; i < n; ++i) {
    const float a = std::fabs(x[i]);
    if (a > amax) {
      amax = a;
      extreme = x[i];
    }
  }
  if (amax < kGroupMaxEps) {
    std::memset(L, 0, static_cast<std::size_t>(n));
    return 0.0f;
  }
  const auto sums = [&](float iscale, float& sum_lx, float& sum_l2) {
    sum_lx = 0;
    sum_l2 = 0;
    for (int i = 0; i < n; ++i) {
      const int l = std::clamp(nearest_int(iscale * x[i]), -nmax, nmax - 1);
      sum_lx += w[i] * x[i] * l;
      sum_l2 += w[i] * l * l;
    }
  };
  const auto set_codes = [&](float iscale) {
    for (int i = 0; i < n; ++i) L[i] = static_cast<std::int8_t>(nmax + std::clamp(nearest_int(iscale * x[i]), -nmax, nmax - 1));
  };
  float iscale = -static_cast<float>(nmax) / extreme;
  float sum_lx, sum_l2;
  sums(iscale, sum_lx, sum_l2);
  set_codes(iscale);
  float scale = sum_l2 != 0 ? sum_lx / sum_l2 : 0.0f;
  float best = scale * sum_lx;
  for (int k = -9; k <= 9; ++k) {
    if (k == 0) continue;
    iscale = -(static_cast<float>(nmax) + 0.1f * static_cast<float>(k)) / extreme;
    sums(iscale, sum_lx, sum_l2);
    if (sum_l2 > 0 && sum_lx * sum_lx > best * sum_l2) {
      set_codes(iscale);
      scale = sum_lx / sum_l2;
      best = scale * sum_lx;
    }
  }
  return scale;
}

// A scale for non-negative values (the sub-block scales or mins of a
// K-quant) on codes 0..nmax, weighted by each sub-block's total weight
// (ggml's make_qp_quants): the best of 9 inverse scales by weighted error,
// then up to 5 sweeps moving single codes while the least-squares fit improves.
float fit_positive_scale(int n, int nmax, const float* x, const float* w, std::uint8_t* L) {
  float max = 0;
  for (int i = 0; i < n; ++i) max = max > x[i] ? max : x[i];
  if (max < kGroupMaxEps) {
    std::memset(L, 0, static_cast<std::size_t>(n));
    return 0.0f;
  }
  float iscale = nmax / max;
  const float scale = 1 / iscale;
  float best = 0;
  for (int i = 0; i < n; ++i) {
    // The reference holds these codes in bytes: a negative input (IQ2_XXS's parity-flipped value) wraps.
    const float diff = x[i] - scale * static_cast<float>(static_cast<std::uint8_t>(nearest_int(iscale * x[i])));
    best += w[i] * diff * diff;
  }
  for (int k = -4; k <= 4; ++k) {
    if (k == 0) continue;
    const float is = (0.1f * static_cast<float>(k) + nmax) / max, s = 1 / is;
    float err = 0;
    for (int i = 0; i < n; ++i) {
      const float diff = x[i] - s * static_cast<float>(std::min(nmax, nearest_int(is * x[i])));
      err += w[i] * diff * diff;
    }
    if (err < best) {
      best = err;
      iscale = is;
    }
  }
  float sum_lx = 0, sum_l2 = 0;
  for (int i = 0; i < n; ++i) {
    const int l = std::min(nmax, nearest_int(iscale * x[i]));
    L[i] = static_cast<std::uint8_t>(l);
    sum_lx += w[i] * x[i] * l;
    sum_l2 += w[i] * l * l;
  }
  for (int sweep = 0; sweep < 5; ++sweep) {
    int changed = 0;
    for (int i = 0; i < n; ++i) {
      float slx = sum_lx - w[i] * x[i] * L[i], sl2 = sum_l2 - w[i] * L[i] * L[i];
      if (!(slx > 0 && sl2 > 0)) continue;
      const int l = std::min(nmax, nearest_int(x[i] * sl2 / slx));
      if (l == L[i]) continue;
      slx += w[i] * x[i] * l;
      sl2 += w[i] * l * l;
      if (slx * slx * sum_l2 > sum_lx * sum_lx * sl2) {
        L[i] = static_cast<std::uint8_t>(l);
        sum_lx = slx;
        sum_l2 = sl2;
        ++changed;
      }
    }
    if (!changed) break;
  }
  return sum_l2 > 0 ? sum_lx / sum_l2 : 0.0f;
}

}  // namespace kquant::parts

bool ggml_uses_importance(DType t) {
  switch (t) {
    case DType::Q4_0: case DType::Q4_1: case DType::Q5_0: case DType::Q5_1:
    case DType::Q2_K: case DType::Q3_K: case DType::Q4_K: case DType::Q5_K: case DType::Q6_K:
    case DType::IQ4_NL: case DType::IQ4_XS: case DType::IQ3_XXS: case DType::IQ3_S:
    case DType::IQ2_XXS: case DType::IQ2_XS: case DType::IQ2_S: case DType::IQ1_S: case DType::IQ1_M:
      return true;
    default:
      return false;
  }
}

bool ggml_needs_importance(DType t) {
  return t == DType::IQ2_XXS || t == DType::IQ2_XS || t == DType::IQ1_S || t == DType::IQ1_M;
}

bool quantize_ggml_row_with_importance(DType t, const float* x, std::int64_t n, const float* imp, std::uint8_t* out) {
  const std::int64_t blocks = n / static_cast<std::int64_t>(dtype_block_elems(t));
  const std::size_t bytes = dtype_block_bytes(t);
  switch (t) {
    case DType::Q4_0: case DType::Q4_1: case DType::Q5_0: case DType::Q5_1:
      row_32(t, x, n, imp, out);
      return true;
    case DType::IQ4_NL:
      for (std::int64_t b = 0; b < blocks; ++b) iq4nl::quantize_block(x + 32 * b, out + bytes * b, 7, imp + 32 * b);
      return true;
    default:
      break;
  }
  void (*super)(const float*, const float*, std::uint8_t*) = nullptr;
  switch (t) {
    case DType::Q2_K: super = q2_k; break;
    case DType::Q3_K: super = q3_k; break;
    case DType::Q4_K: super = [](const float* v, const float* i, std::uint8_t* o) { q45_k(v, i, 15, o); }; break;
    case DType::Q5_K: super = [](const float* v, const float* i, std::uint8_t* o) { q45_k(v, i, 31, o); }; break;
    case DType::Q6_K: super = q6_k_with_weights; break;  // the importance alone, no sigma2 term
    case DType::IQ4_XS: super = [](const float* v, const float* i, std::uint8_t* o) { iq4nl::quantize_xs_block(v, o, i); }; break;
    case DType::IQ3_XXS: super = iq::quantize_iq3_xxs; break;
    case DType::IQ3_S: super = iq::quantize_iq3_s; break;
    case DType::IQ2_XXS: super = iq::quantize_iq2_xxs; break;
    case DType::IQ2_XS: super = iq::quantize_iq2_xs; break;
    case DType::IQ2_S: super = iq::quantize_iq2_s; break;
    case DType::IQ1_S: super = iq::quantize_iq1_s; break;
    case DType::IQ1_M: super = iq::quantize_iq1_m; break;
    default: return false;
  }
  for (std::int64_t b = 0; b < blocks; ++b) super(x + kSuper * b, imp + kSuper * b, out + bytes * b);
  return true;
}

}  // namespace qs
