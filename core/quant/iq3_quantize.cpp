#include "quant/iq3_quantize.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "quant/ggml_kquant_parts.h"
#include "quant/iq_lattice.h"

namespace qs::iq {
namespace {

using kquant::parts::nearest_int;

constexpr float kGroupMaxEps = 1e-8f;  // ggml's GROUP_MAX_EPS_IQ3_XXS
constexpr int kMaxQ = 8;               // levels 0..7, positions 1, 3, ..., 15
// The magnitudes IQ3_XXS's decoder gives levels 0..7 (ggml's iq3xxs_grid bytes: not 2 l + 1 at the top).
constexpr float kLevels[8] = {4, 12, 20, 28, 36, 44, 52, 62};

// The search both IQ3 types run on 32 magnitudes (8 lattice groups of 4):
// inverse scales (15 + 0.2 is) / max for is = -span..span, each group rounded
// to levels and, off the lattice, replaced by its best neighbour at that
// scale; the best weighted fit (sum w x q)^2 / (sum w q^2) kept. Then, if any
// group of the winner needed a neighbour, groups are matched again at the
// chosen scale (IQ3_XXS: those groups; IQ3_S: all, `rematch_all`) and the
// scale refitted. The on-lattice flags start true for IQ3_XXS and false for
// IQ3_S, as the reference's (it matters only when no candidate wins).
float search_32(const Lattice& g, const float* xval, const float* weight, const float* waux, float max, int span,
                bool rematch_all, std::int8_t* L) {
  std::int8_t Laux[32];
  bool on_grid[8], on_aux[8];
  std::fill(on_grid, on_grid + 8, !rematch_all);
  float best = 0, scale = max / (2 * kMaxQ - 1);
  const auto levels_at = [&](float id, int k, std::int8_t* out) {
    for (int i = 0; i < 4; ++i)
      out[i] = static_cast<std::int8_t>(std::clamp(nearest_int(0.5f * (id * xval[4 * k + i] - 1)), 0, kMaxQ - 1));
  };
  const auto fit = [&](const std::int8_t* levels, float& sumqx, float& sumq2) {
    sumqx = 0;
    sumq2 = 0;
    for (int i = 0; i < 32; ++i) {
      const float w = weight[i], q = static_cast<float>(2 * levels[i] + 1);
      sumqx += w * xval[i] * q;
      sumq2 += w * q * q;
    }
  };
  for (int is = -span; is <= span; ++is) {
    const float id = (2 * kMaxQ - 1 + static_cast<float>(is) * 0.2f) / max;
    const float this_scale = 1 / id;
    for (int k = 0; k < 8; ++k) {
      levels_at(id, k, Laux + 4 * k);
      const std::uint32_t u = g.code_of(Laux + 4 * k);
      on_aux[k] = g.index_of(u) >= 0;
      if (!on_aux[k]) g.best_neighbour(u, xval + 4 * k, waux + 4 * k, this_scale, Laux + 4 * k);
    }
    float sumqx, sumq2;
    fit(Laux, sumqx, sumq2);
    if (sumq2 > 0 && sumqx * sumqx > best * sumq2) {
      scale = sumqx / sumq2;
      best = scale * sumqx;
      std::memcpy(L, Laux, 32);
      std::copy(on_aux, on_aux + 8, on_grid);
    }
  }
  const bool any_off = std::find(on_grid, on_grid + 8, false) != on_grid + 8;
  if (any_off && scale > 0) {
    const float id = 1 / scale;
    for (int k = 0; k < 8; ++k) {
      if (on_grid[k] && !rematch_all) continue;
      std::int8_t l4[4];
      levels_at(id, k, l4);
      const std::uint32_t u = g.code_of(l4);
      int gi = g.index_of(u);
      if (gi < 0) gi = g.best_neighbour(u, xval + 4 * k, waux + 4 * k, scale, L + 4 * k);
      for (int i = 0; i < 4; ++i) L[4 * k + i] = static_cast<std::int8_t>((g.position(gi, i) - 1) / 2);
    }
    float sumqx, sumq2;
    fit(L, sumqx, sumq2);
    if (sumq2 > 0) scale = sumqx / sumq2;
  }
  return scale;
}

// One sub-block of 32: its weights (and their square roots, which the
// neighbour search weighs by), magnitudes and sign bits (7 with even parity
// for IQ3_XXS, 8 for IQ3_S). Returns the largest magnitude.
float prepare_32(const float* xb, const float* imp, float sigma2, bool even_parity, float* weight, float* waux,
                 float* xval, std::uint8_t* signs) {
  kquant::parts::importance_weights(xb, imp, sigma2, 32, weight);
  for (int i = 0; i < 32; ++i) waux[i] = std::sqrt(weight[i]);
  split_signs(xb, weight, 32, even_parity, xval, signs);
  float max = xval[0];
  for (int i = 1; i < 32; ++i) max = std::max(max, xval[i]);
  return max;
}

}  // namespace

void quantize_iq3_xxs(const float* x, const float* importance, std::uint8_t* out) {
  const Lattice& g = iq3xxs_lattice();
  std::uint8_t q3[96] = {};
  std::uint8_t* index = q3;                // 64 point indices
  std::uint32_t signs_and_scales[8] = {};  // stored after them
  float scales[8], weight[32], waux[32], xval[32];
  std::int8_t L[32];
  std::uint8_t block_signs[4];
  const float sigma2 = 2 * kquant::parts::sum_of_squares(x, 256) / 256;
  float max_scale = 0;
  for (int ib = 0; ib < 8; ++ib) {
    const float max = prepare_32(x + 32 * ib, importance ? importance + 32 * ib : nullptr, sigma2, true, weight, waux,
                                 xval, block_signs);
    std::memset(L, 0, 32);
    if (max < kGroupMaxEps) {
      scales[ib] = 0;
      continue;
    }
    float scale = search_32(g, xval, weight, waux, max, 15, false, L);
    if (scale < 0) {  // not expected; the reference flips scale and signs so that the stored scale is unsigned
      scale = -scale;
      for (int k = 0; k < 4; ++k) block_signs[k] = static_cast<std::uint8_t>(~block_signs[k] & 127);
    }
    for (int k = 0; k < 8; ++k) index[8 * ib + k] = static_cast<std::uint8_t>(g.index_of(g.code_of(L + 4 * k)));
    signs_and_scales[ib] = block_signs[0] | (block_signs[1] << 7) | (block_signs[2] << 14) | (static_cast<std::uint32_t>(block_signs[3]) << 21);
    scales[ib] = scale;
    max_scale = std::max(max_scale, scale);
  }
  std::memset(out, 0, kIq3xxsBlockBytes);
  if (max_scale == 0) return;  // d = 0 and nothing else
  const float d = max_scale / 31;
  kquant::parts::store_half(out, d * 1.0125f);  // the reference's fudge factor on the stored scale
  const float id = 1 / d;
  for (int ib = 0; ib < 8; ++ib) {
    const int l = std::clamp(nearest_int(0.5f * (id * scales[ib] - 1)), 0, 15);
    signs_and_scales[ib] |= static_cast<std::uint32_t>(l) << 28;
  }
  std::memcpy(q3 + 64, signs_and_scales, 32);
  std::memcpy(out + 2, q3, 96);
}

void dequantize_iq3_xxs(const std::uint8_t* block, float* y) {
  const Lattice& g = iq3xxs_lattice();
  const float d = kquant::parts::load_half(block);
  const std::uint8_t* qs = block + 2;
  const std::uint8_t* ss = block + 2 + 64;
  for (int ib = 0; ib < 8; ++ib, qs += 8) {
    std::uint32_t aux;
    std::memcpy(&aux, ss + 4 * ib, 4);
    const float db = d * (0.5f + static_cast<float>(aux >> 28)) * 0.5f;
    for (int l = 0; l < 4; ++l, y += 8) {
      const std::uint8_t signs = signs_with_parity(static_cast<std::uint8_t>((aux >> (7 * l)) & 127));
      for (int half = 0; half < 2; ++half) {
        const std::uint16_t p = g.point(qs[2 * l + half]);
        for (int j = 0; j < 4; ++j)
          y[4 * half + j] = db * kLevels[(p >> (3 * j)) & 7] * ((signs >> (4 * half + j)) & 1 ? -1.0f : 1.0f);
      }
    }
  }
}

void quantize_iq3_s(const float* x, const float* importance, std::uint8_t* out) {
  const Lattice& g = iq3s_lattice();
  std::memset(out, 0, kIq3sBlockBytes);
  std::uint8_t* qs = out + 2;
  std::uint8_t* qh = out + 66;
  std::uint8_t* signs = out + 74;
  std::uint8_t* packed_scales = out + 106;
  float scales[8], weight[32], waux[32], xval[32];
  std::int8_t L[32];
  std::uint8_t block_signs[4];
  const float sigma2 = 2 * kquant::parts::sum_of_squares(x, 256) / 256;
  float max_scale = 0;
  for (int ib = 0; ib < 8; ++ib) {
    const float max = prepare_32(x + 32 * ib, importance ? importance + 32 * ib : nullptr, sigma2, false, weight, waux,
                                 xval, block_signs);
    std::memset(L, 0, 32);
    if (max == 0) {
      // The reference skips the sub-block without advancing its index and sign
      // pointers: the next sub-block's indices and signs land in this one's place.
      scales[ib] = 0;
      continue;
    }
    float scale = search_32(g, xval, weight, waux, max, 9, true, L);
    if (scale < 0) {
      scale = -scale;
      for (int k = 0; k < 4; ++k) block_signs[k] = static_cast<std::uint8_t>(~block_signs[k]);
    }
    for (int k = 0; k < 8; ++k) {
      const int gi = g.index_of(g.code_of(L + 4 * k));
      qs[k] = static_cast<std::uint8_t>(gi & 255);
      qh[ib] = static_cast<std::uint8_t>(qh[ib] | ((gi >> 8) << k));
    }
    qs += 8;
    std::memcpy(signs, block_signs, 4);
    signs += 4;
    scales[ib] = scale;
    max_scale = std::max(max_scale, scale);
  }
  if (max_scale == 0) return;
  const float d = max_scale / 31;
  kquant::parts::store_half(out, d * 1.033f);  // the reference's fudge factor
  const float id = 1 / d;
  for (int ib = 0; ib < 8; ib += 2) {
    const int l1 = std::clamp(nearest_int(0.5f * (id * scales[ib] - 1)), 0, 15);
    const int l2 = std::clamp(nearest_int(0.5f * (id * scales[ib + 1] - 1)), 0, 15);
    packed_scales[ib / 2] = static_cast<std::uint8_t>(l1 | (l2 << 4));
  }
}

void dequantize_iq3_s(const std::uint8_t* block, float* y) {
  const Lattice& g = iq3s_lattice();
  const float d = kquant::parts::load_half(block);
  const std::uint8_t* qs = block + 2;
  const std::uint8_t* qh = block + 66;
  const std::uint8_t* signs = block + 74;
  const std::uint8_t* sc = block + 106;
  for (int ib = 0; ib < 8; ++ib, qs += 8, signs += 4) {
    const float db = d * static_cast<float>(1 + 2 * ((sc[ib / 2] >> (4 * (ib % 2))) & 0xF));
    for (int k = 0; k < 8; ++k) {
      const int gi = qs[k] | (((qh[ib] >> k) & 1) << 8);
      const std::uint16_t p = g.point(gi);
      for (int j = 0; j < 4; ++j) {
        const int e = 4 * k + j;
        y[32 * ib + e] = db * static_cast<float>(2 * ((p >> (3 * j)) & 7) + 1) * ((signs[e / 8] >> (e % 8)) & 1 ? -1.0f : 1.0f);
      }
    }
  }
}

}  // namespace qs::iq
