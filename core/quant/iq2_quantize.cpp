#include "quant/iq2_quantize.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "quant/ggml_kquant_parts.h"
#include "quant/iq_lattice.h"

namespace qs::iq {
namespace {

using kquant::parts::nearest_int;

constexpr int kMaxQ = 3;  // levels 0..2, positions 1, 3, 5
// The magnitudes the decoders give levels 0..2 (ggml's iq2*_grid bytes).
constexpr float kLevels[3] = {8, 25, 43};

// Levels of n magnitudes at inverse scale id (positions 2 l + 1 on the grid id * x).
void levels_at(const float* xval, int n, float id, std::int8_t* L) {
  for (int i = 0; i < n; ++i) L[i] = static_cast<std::int8_t>(std::clamp(nearest_int(0.5f * (id * xval[i] - 1)), 0, kMaxQ - 1));
}

// sum w x q and sum w q^2 over n values with q = 2 l + 1.
void fit_sums(const float* weight, const float* xval, const std::int8_t* L, int n, float& sumqx, float& sumq2) {
  sumqx = 0;
  sumq2 = 0;
  for (int i = 0; i < n; ++i) {
    const float w = weight[i], q = static_cast<float>(2 * L[i] + 1);
    sumqx += w * xval[i] * q;
    sumq2 += w * q * q;
  }
}

// The group search IQ2_XS and IQ2_S share (16 values, 2 lattice groups of 8):
// candidate inverse scales (5 + 0.1 is) / max for is = -9..9, each group
// rounded and, off the lattice, replaced by its best neighbour; the best
// weighted fit kept; groups that needed a neighbour are matched again at the
// chosen scale and the scale refitted. Returns the scale (0 for a group below
// eps); L gets the levels.
float search_16(const Lattice& g, const float* xval, const float* weight, const float* waux, float eps, std::int8_t* L) {
  float max = xval[0];
  for (int i = 1; i < 16; ++i) max = std::max(max, xval[i]);
  std::memset(L, 0, 16);
  if (max < eps) return 0.0f;
  std::int8_t Laux[16];
  bool on_grid[2] = {true, true}, on_aux[2];
  float best = 0, scale = max / (2 * kMaxQ - 1);
  for (int is = -9; is <= 9; ++is) {
    const float id = (2 * kMaxQ - 1 + static_cast<float>(is) * 0.1f) / max;
    const float this_scale = 1 / id;
    for (int k = 0; k < 2; ++k) {
      levels_at(xval + 8 * k, 8, id, Laux + 8 * k);
      const std::uint32_t u = g.code_of(Laux + 8 * k);
      on_aux[k] = g.index_of(u) >= 0;
      if (!on_aux[k]) g.best_neighbour(u, xval + 8 * k, waux + 8 * k, this_scale, Laux + 8 * k);
    }
    float sumqx, sumq2;
    fit_sums(weight, xval, Laux, 16, sumqx, sumq2);
    if (sumq2 > 0 && sumqx * sumqx > best * sumq2) {
      scale = sumqx / sumq2;
      best = scale * sumqx;
      std::memcpy(L, Laux, 16);
      on_grid[0] = on_aux[0];
      on_grid[1] = on_aux[1];
    }
  }
  if ((!on_grid[0] || !on_grid[1]) && scale > 0) {
    const float id = 1 / scale;
    for (int k = 0; k < 2; ++k) {
      if (on_grid[k]) continue;
      levels_at(xval + 8 * k, 8, id, L + 8 * k);
      const std::uint32_t u = g.code_of(L + 8 * k);
      if (g.index_of(u) < 0) g.best_neighbour(u, xval + 8 * k, waux + 8 * k, scale, L + 8 * k);
    }
    float sumqx, sumq2;
    fit_sums(weight, xval, L, 16, sumqx, sumq2);
    if (sumq2 > 0) scale = sumqx / sumq2;
  }
  return scale;
}


// 4-bit scales of n groups (l = round((s / d - 1) / 2)), as the decoders read d (0.5 + l) / 4.
int scale_code(float id, float s) { return std::clamp(nearest_int(0.5f * (id * s - 1)), 0, 15); }

}  // namespace

void quantize_iq2_xxs(const float* x, const float* importance, std::uint8_t* out) {
  const Lattice& g = iq2xxs_lattice();
  std::uint32_t q2[16] = {};
  float scales[8], weight[32], waux[32], xval[32];
  std::int8_t L[32], Laux[32];
  std::uint8_t block_signs[4];
  const float sigma2 = kquant::parts::sum_of_squares(x, 256) / 256;
  float max_scale = 0;
  for (int ib = 0; ib < 8; ++ib) {
    const float* xb = x + 32 * ib;
    kquant::parts::importance_weights(xb, importance + 32 * ib, sigma2, 32, weight);
    for (int i = 0; i < 32; ++i) waux[i] = std::sqrt(weight[i]);
    split_signs(xb, weight, 32, true, xval, block_signs);
    float max = xval[0];
    for (int i = 1; i < 32; ++i) max = std::max(max, xval[i]);
    if (max < kquant::parts::kGroupMaxEps) {
      scales[ib] = 0;
      std::memset(L, 0, 32);
      continue;
    }
    // The first scale: the positive-scale fit on 0..kMaxQ+1; the sweep is around it.
    float scale = kquant::parts::fit_positive_scale(32, kMaxQ + 1, xval, weight, reinterpret_cast<std::uint8_t*>(L));
    const float eff_max = scale * kMaxQ;
    if (eff_max <= 0) {
      scales[ib] = 0;
      std::memset(L, 0, 32);
      continue;
    }
    float best = 0;
    for (int is = -6; is <= 6; ++is) {
      const float id = (2 * kMaxQ - 1 + static_cast<float>(is) * 0.1f) / eff_max;
      const float this_scale = 1 / id;
      for (int k = 0; k < 4; ++k) {
        levels_at(xval + 8 * k, 8, id, Laux + 8 * k);
        const std::uint32_t u = g.code_of(Laux + 8 * k);
        if (g.index_of(u) < 0) g.best_neighbour(u, xval + 8 * k, waux + 8 * k, this_scale, Laux + 8 * k);
      }
      float sumqx, sumq2;
      fit_sums(weight, xval, Laux, 32, sumqx, sumq2);
      if (sumq2 > 0 && sumqx * sumqx > best * sumq2) {
        scale = sumqx / sumq2;
        best = scale * sumqx;
        std::memcpy(L, Laux, 32);
      }
    }
    // Every group matched again at the chosen scale, the scale refitted.
    if (scale > 0) {
      const float id = 1 / scale;
      for (int k = 0; k < 4; ++k) {
        std::int8_t l8[8];
        levels_at(xval + 8 * k, 8, id, l8);
        const std::uint32_t u = g.code_of(l8);
        int gi = g.index_of(u);
        if (gi < 0) gi = g.best_neighbour(u, xval + 8 * k, waux + 8 * k, scale, L + 8 * k);
        for (int i = 0; i < 8; ++i) L[8 * k + i] = static_cast<std::int8_t>((g.position(gi, i) - 1) / 2);
      }
      float sumqx, sumq2;
      fit_sums(weight, xval, L, 32, sumqx, sumq2);
      if (sumq2 > 0) scale = sumqx / sumq2;
    }
    if (scale < 0) {
      scale = -scale;
      for (int k = 0; k < 4; ++k) block_signs[k] = static_cast<std::uint8_t>(~block_signs[k] & 127);
    }
    for (int k = 0; k < 4; ++k) {
      const int gi = g.index_of(g.code_of(L + 8 * k));
      q2[2 * ib] |= static_cast<std::uint32_t>(gi) << (8 * k);
      q2[2 * ib + 1] |= static_cast<std::uint32_t>(block_signs[k]) << (7 * k);
    }
    scales[ib] = scale;
    max_scale = std::max(max_scale, scale);
  }
  std::memset(out, 0, 66);
  if (max_scale == 0) return;
  const float d = max_scale / 31;
  kquant::parts::store_half(out, d);
  const float id = 1 / d;
  for (int ib = 0; ib < 8; ++ib) q2[2 * ib + 1] |= static_cast<std::uint32_t>(scale_code(id, scales[ib])) << 28;
  std::memcpy(out + 2, q2, 64);
}

void quantize_iq2_xs(const float* x, const float* importance, std::uint8_t* out) {
  const Lattice& g = iq2xs_lattice();
  std::uint16_t q2[32] = {};
  float scales[16], weight[16], waux[16], xval[16];
  std::int8_t L[16];
  std::uint8_t block_signs[2];
  const float sigma2 = kquant::parts::sum_of_squares(x, 256) / 256;
  float max_scale = 0;
  for (int ib = 0; ib < 16; ++ib) {
    const float* xb = x + 16 * ib;
    kquant::parts::importance_weights(xb, importance + 16 * ib, sigma2, 16, weight);
    for (int i = 0; i < 16; ++i) waux[i] = std::sqrt(weight[i]);
    split_signs(xb, weight, 16, true, xval, block_signs);
    float max = xval[0];
    for (int i = 1; i < 16; ++i) max = std::max(max, xval[i]);
    if (max < kquant::parts::kGroupMaxEps) {
      scales[ib] = 0;
      continue;
    }
    float scale = search_16(g, xval, weight, waux, kquant::parts::kGroupMaxEps, L);
    if (scale < 0) {
      scale = -scale;
      for (int k = 0; k < 2; ++k) block_signs[k] = static_cast<std::uint8_t>(~block_signs[k] & 127);
    }
    for (int k = 0; k < 2; ++k)
      q2[2 * ib + k] = static_cast<std::uint16_t>(g.index_of(g.code_of(L + 8 * k)) | (block_signs[k] << 9));
    scales[ib] = scale;
    max_scale = std::max(max_scale, scale);
  }
  std::memset(out, 0, 74);
  if (max_scale == 0) return;
  const float d = max_scale / 31;
  kquant::parts::store_half(out, d);
  const float id = 1 / d;
  std::uint8_t* sc = out + 66;
  for (int ib = 0; ib < 16; ++ib) sc[ib / 2] = static_cast<std::uint8_t>(sc[ib / 2] | (scale_code(id, scales[ib]) << (4 * (ib % 2))));
  std::memcpy(out + 2, q2, 64);
}

void quantize_iq2_s(const float* x, const float* importance, std::uint8_t* out) {
  const Lattice& g = iq2s_lattice();
  std::memset(out, 0, 82);
  std::uint8_t* qs = out + 2;
  std::uint8_t* signs = out + 2 + 32;
  std::uint8_t* qh = out + 66;
  std::uint8_t* sc = out + 74;
  float scales[16], weight[16], waux[16], xval[16];
  std::int8_t L[16];
  std::uint8_t block_signs[2];
  const float sigma2 = 2 * kquant::parts::sum_of_squares(x, 256) / 256;
  float max_scale = 0;
  for (int ib = 0; ib < 16; ++ib) {
    const float* xb = x + 16 * ib;
    if (importance)
      kquant::parts::importance_weights(xb, importance + 16 * ib, sigma2, 16, weight);
    else
      for (int i = 0; i < 16; ++i) weight[i] = 0.25f * sigma2 + xb[i] * xb[i];
    for (int i = 0; i < 16; ++i) waux[i] = std::sqrt(weight[i]);
    split_signs(xb, weight, 16, false, xval, block_signs);
    constexpr float kEps = 1e-8f;  // ggml's GROUP_MAX_EPS_IQ2_S
    float max = xval[0];
    for (int i = 1; i < 16; ++i) max = std::max(max, xval[i]);
    if (max < kEps) {
      scales[ib] = 0;
      continue;
    }
    float scale = search_16(g, xval, weight, waux, kEps, L);
    if (scale < 0) {
      scale = -scale;
      for (int k = 0; k < 2; ++k) block_signs[k] = static_cast<std::uint8_t>(~block_signs[k]);
    }
    for (int k = 0; k < 2; ++k) {
      const int gi = g.index_of(g.code_of(L + 8 * k)), i8 = 2 * ib + k;
      qs[i8] = static_cast<std::uint8_t>(gi & 255);
      qh[i8 / 4] = static_cast<std::uint8_t>(qh[i8 / 4] | ((gi >> 8) << (2 * (i8 % 4))));
      signs[i8] = block_signs[k];
    }
    scales[ib] = scale;
    max_scale = std::max(max_scale, scale);
  }
  if (max_scale == 0) return;
  const float d = max_scale / 31;
  kquant::parts::store_half(out, d * 0.9875f);  // the reference's fudge factor
  const float id = 1 / d;
  for (int ib = 0; ib < 16; ++ib) sc[ib / 2] = static_cast<std::uint8_t>(sc[ib / 2] | (scale_code(id, scales[ib]) << (4 * (ib % 2))));
}

namespace {

// Eight values of point p at scale db with 8 sign bits.
void put8(const Lattice& g, int p, float db, std::uint8_t signs, float* y) {
  const std::uint16_t point = g.point(p);
  for (int j = 0; j < 8; ++j) y[j] = db * kLevels[(point >> (2 * j)) & 3] * ((signs >> j) & 1 ? -1.0f : 1.0f);
}

}  // namespace

void dequantize_iq2_xxs(const std::uint8_t* block, float* y) {
  const Lattice& g = iq2xxs_lattice();
  const float d = kquant::parts::load_half(block);
  for (int ib = 0; ib < 8; ++ib) {
    std::uint32_t aux[2];
    std::memcpy(aux, block + 2 + 8 * ib, 8);
    const float db = d * (0.5f + static_cast<float>(aux[1] >> 28)) * 0.25f;
    for (int l = 0; l < 4; ++l, y += 8)
      put8(g, (aux[0] >> (8 * l)) & 255, db, signs_with_parity(static_cast<std::uint8_t>((aux[1] >> (7 * l)) & 127)), y);
  }
}

void dequantize_iq2_xs(const std::uint8_t* block, float* y) {
  const Lattice& g = iq2xs_lattice();
  const float d = kquant::parts::load_half(block);
  const std::uint8_t* sc = block + 66;
  for (int ib = 0; ib < 8; ++ib) {
    const float db[2] = {d * (0.5f + static_cast<float>(sc[ib] & 0xF)) * 0.25f, d * (0.5f + static_cast<float>(sc[ib] >> 4)) * 0.25f};
    for (int l = 0; l < 4; ++l, y += 8) {
      std::uint16_t q;
      std::memcpy(&q, block + 2 + 2 * (4 * ib + l), 2);
      put8(g, q & 511, db[l / 2], signs_with_parity(static_cast<std::uint8_t>(q >> 9)), y);
    }
  }
}

void dequantize_iq2_s(const std::uint8_t* block, float* y) {
  const Lattice& g = iq2s_lattice();
  const float d = kquant::parts::load_half(block);
  const std::uint8_t* qs = block + 2;
  const std::uint8_t* signs = block + 34;
  const std::uint8_t* qh = block + 66;
  const std::uint8_t* sc = block + 74;
  for (int ib = 0; ib < 8; ++ib) {
    const float db[2] = {d * (0.5f + static_cast<float>(sc[ib] & 0xF)) * 0.25f, d * (0.5f + static_cast<float>(sc[ib] >> 4)) * 0.25f};
    for (int l = 0; l < 4; ++l, y += 8) {
      const int i8 = 4 * ib + l;
      put8(g, qs[i8] | (((qh[ib] >> (2 * l)) & 3) << 8), db[l / 2], signs[i8], y);
    }
  }
}

}  // namespace qs::iq
