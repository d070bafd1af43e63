#include "quant/iq1_quantize.h"

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstring>
#include <numeric>

#include "quant/ggml_kquant_parts.h"
#include "quant/iq_lattice.h"

namespace qs::iq {
namespace {

using kquant::parts::nearest_int;

constexpr float kDelta = 0.125f;  // ggml's IQ1S_DELTA (= IQ1M_DELTA)
constexpr float kPlus[3] = {-1 + kDelta, kDelta, 1 + kDelta};
constexpr float kMinus[3] = {-1 - kDelta, -kDelta, 1 - kDelta};

// The values of a block in ascending order (equal values in their original
// order: the reference sorts 32 or 16 pairs with glibc's qsort, a stable merge
// sort at these sizes); returns the permutation.
void sort_order(const float* xb, int n, int* order) {
  std::iota(order, order + n, 0);
  std::stable_sort(order, order + n, [&](int a, int b) { return xb[a] < xb[b]; });
}

// Levels 0/1/2 by the two boundaries over the sorted order.
void split_levels(const int* order, int n, int i1, int i2, std::int8_t* L) {
  for (int j = 0; j < n; ++j) L[order[j]] = static_cast<std::int8_t>(j < i1 ? 0 : j < i2 ? 1 : 2);
}


}  // namespace

void quantize_iq1_s(const float* x, const float* importance, std::uint8_t* out) {
  const Lattice& g = iq1s_lattice();
  constexpr int bs = 32;
  std::memset(out, 0, 50);
  std::uint8_t* qs = out + 2;
  std::uint16_t qh[8] = {};
  float scales[8], weight[bs], sumx[bs + 1], sumw[bs + 1];
  int order[bs];
  std::int8_t L[bs];
  int shifts[8];
  const float sigma2 = 2 * kquant::parts::sum_of_squares(x, 256) / 256;
  float max_scale = 0;
  for (int ib = 0; ib < 8; ++ib) {
    const float* xb = x + bs * ib;
    kquant::parts::importance_weights(xb, importance + bs * ib, sigma2, bs, weight);
    float max = std::fabs(xb[0]);
    for (int i = 1; i < bs; ++i) max = std::max(max, std::fabs(xb[i]));
    if (max < 1e-12f) {  // ggml's GROUP_MAX_EPS_IQ1_S
      scales[ib] = 0;
      shifts[ib] = 1;
      continue;
    }
    // Exhaustive over the two boundaries of the sorted values, both shifts:
    // prefix sums of w x and w give each split's least-squares scale.
    sort_order(xb, bs, order);
    sumx[0] = sumw[0] = 0;
    for (int j = 0; j < bs; ++j) {
      const int i = order[j];
      sumx[j + 1] = sumx[j] + weight[i] * xb[i];
      sumw[j + 1] = sumw[j] + weight[i];
    }
    float best = -FLT_MAX, scale = max;
    int b1 = -1, b2 = -1, shift = 0;
    for (int i1 = 0; i1 <= bs; ++i1)
      for (int i2 = i1; i2 <= bs; ++i2)
        for (int sgn : {1, -1}) {
          const float* v = sgn == 1 ? kPlus : kMinus;
          const float sumqx = (sumx[i1] - sumx[0]) * v[0] + (sumx[i2] - sumx[i1]) * v[1] + (sumx[bs] - sumx[i2]) * v[2];
          const float sumq2 = (sumw[i1] - sumw[0]) * v[0] * v[0] + (sumw[i2] - sumw[i1]) * v[1] * v[1] +
                              (sumw[bs] - sumw[i2]) * v[2] * v[2];
          if (sumq2 > 0 && sumqx * sumqx > best * sumq2) {
            scale = sumqx / sumq2;
            best = scale * sumqx;
            b1 = i1;
            b2 = i2;
            shift = sgn;
          }
        }
    if (b1 < 0 || b2 < 0 || shift == 0) {
      scales[ib] = 0;
      shifts[ib] = 1;
      continue;
    }
    split_levels(order, bs, b1, b2, L);
    if (scale < 0) {
      for (int j = 0; j < bs; ++j) L[j] = static_cast<std::int8_t>(2 - L[j]);
      scale = -scale;
      shift = -shift;
    }
    const float* xx = shift == 1 ? kPlus : kMinus;
    int index[4];
    bool all_on = true;
    for (int k = 0; k < 4; ++k) {
      const std::uint32_t u = g.code_of(L + 8 * k);
      index[k] = g.index_of(u);
      if (index[k] < 0) {
        all_on = false;
        index[k] = g.best_neighbour(u, xb + 8 * k, weight + 8 * k, scale, L + 8 * k, xx);
      }
    }
    if (!all_on) {
      float sumqx = 0, sumq2 = 0;
      for (int k = 0; k < 4; ++k)
        for (int j = 0; j < 8; ++j) {
          const float w = weight[8 * k + j], q = xx[(g.position(index[k], j) - 1) / 2];
          sumqx += w * q * xb[8 * k + j];
          sumq2 += w * q * q;
        }
      if (sumqx > 0 && sumq2 > 0) scale = sumqx / sumq2;
    }
    std::uint16_t h = 0;
    for (int k = 0; k < 4; ++k) {
      qs[4 * ib + k] = static_cast<std::uint8_t>(index[k] & 255);
      h = static_cast<std::uint16_t>(h | ((index[k] >> 8) << (3 * k)));
    }
    qh[ib] = h;
    scales[ib] = scale;
    shifts[ib] = shift;
    max_scale = std::max(max_scale, scale);
  }
  if (max_scale > 0) {
    const float d = max_scale / 15;
    kquant::parts::store_half(out, d * 1.125f);  // the reference's fudge factor
    const float id = 1 / d;
    for (int ib = 0; ib < 8; ++ib) {
      int l = std::clamp(nearest_int(0.5f * (id * scales[ib] - 1)), 0, 7);
      if (shifts[ib] == -1) l |= 8;
      qh[ib] = static_cast<std::uint16_t>(qh[ib] | (l << 12));
    }
  }
  std::memcpy(out + 34, qh, 16);
}

void quantize_iq1_m(const float* x, const float* importance, std::uint8_t* out) {
  const Lattice& g = iq1s_lattice();
  constexpr int bs = 16;
  std::memset(out, 0, 56);
  std::uint8_t* qs = out;
  std::uint8_t* qh = out + 32;
  std::uint16_t sc[4] = {};
  constexpr std::uint8_t kMasks[4] = {0x00, 0x80, 0x08, 0x88};
  float scales[16], weight[bs];
  int order[bs];
  std::int8_t L[bs];
  int shifts[16];
  const float sigma2 = 2 * kquant::parts::sum_of_squares(x, 256) / 256;
  // Shift k: bit 1 the first group of 8's sign (0 +, 1 -), bit 0 the second's.
  const auto values = [](int k, int group) { return (group == 0 ? k < 2 : k % 2 == 0) ? kPlus : kMinus; };
  float max_scale = 0;
  for (int ib = 0; ib < 16; ++ib) {
    const float* xb = x + bs * ib;
    kquant::parts::importance_weights(xb, importance ? importance + bs * ib : nullptr, sigma2, bs, weight);
    float max = std::fabs(xb[0]);
    for (int i = 1; i < bs; ++i) max = std::max(max, std::fabs(xb[i]));
    if (max < 1e-7f) {  // ggml's GROUP_MAX_EPS_IQ1_M
      scales[ib] = 0;
      shifts[ib] = 0;
      continue;
    }
    sort_order(xb, bs, order);
    float best = -FLT_MAX, scale = max;
    int b1 = -1, b2 = -1, best_k = -1;
    for (int i1 = 0; i1 <= bs; ++i1)
      for (int i2 = i1; i2 <= bs; ++i2) {
        // Sums in the sorted order, one per shift pair, as the reference accumulates them.
        float sumqx[4] = {}, sumq2[4] = {};
        for (int j = 0; j < bs; ++j) {
          const int i = order[j], level = j < i1 ? 0 : j < i2 ? 1 : 2;
          const float p = kPlus[level], m = kMinus[level];
          const float wp = weight[i] * p * xb[i], wm = weight[i] * m * xb[i];
          const float pp = weight[i] * p * p, mm = weight[i] * m * m;
          if (i < bs / 2) {
            sumqx[0] += wp; sumqx[1] += wp; sumqx[2] += wm; sumqx[3] += wm;
            sumq2[0] += pp; sumq2[1] += pp; sumq2[2] += mm; sumq2[3] += mm;
          } else {
            sumqx[0] += wp; sumqx[2] += wp; sumqx[1] += wm; sumqx[3] += wm;
            sumq2[0] += pp; sumq2[2] += pp; sumq2[1] += mm; sumq2[3] += mm;
          }
        }
        for (int k = 0; k < 4; ++k)
          if (sumq2[k] > 0 && sumqx[k] * sumqx[k] > best * sumq2[k]) {
            scale = sumqx[k] / sumq2[k];
            best = scale * sumqx[k];
            b1 = i1;
            b2 = i2;
            best_k = k;
          }
      }
    if (b1 < 0 || b2 < 0 || best_k < 0) {
      scales[ib] = 0;
      shifts[ib] = 0;
      continue;
    }
    split_levels(order, bs, b1, b2, L);
    if (scale < 0) {
      for (int j = 0; j < bs; ++j) L[j] = static_cast<std::int8_t>(2 - L[j]);
      scale = -scale;
      best_k = 3 - best_k;
    }
    int index[2];
    bool all_on = true;
    for (int k = 0; k < 2; ++k) {
      const std::uint32_t u = g.code_of(L + 8 * k);
      index[k] = g.index_of(u);
      if (index[k] < 0) {
        all_on = false;
        index[k] = g.best_neighbour(u, xb + 8 * k, weight + 8 * k, scale, L + 8 * k, values(best_k, k));
      }
    }
    if (!all_on) {
      float sumqx = 0, sumq2 = 0;
      for (int k = 0; k < 2; ++k) {
        const float* xx = values(best_k, k);
        for (int j = 0; j < 8; ++j) {
          const float w = weight[8 * k + j], q = xx[(g.position(index[k], j) - 1) / 2];
          sumqx += w * q * xb[8 * k + j];
          sumq2 += w * q * q;
        }
      }
      if (sumqx > 0 && sumq2 > 0) scale = sumqx / sumq2;
    }
    qs[2 * ib] = static_cast<std::uint8_t>(index[0] & 255);
    qs[2 * ib + 1] = static_cast<std::uint8_t>(index[1] & 255);
    qh[ib] = static_cast<std::uint8_t>((index[0] >> 8) | ((index[1] >> 8) << 4));
    scales[ib] = scale;
    shifts[ib] = best_k;
    max_scale = std::max(max_scale, scale);
  }
  if (max_scale > 0) {
    float d = max_scale / 15;
    const float id = 1 / d;
    // The stored scales fixed, d is refitted by least squares over the whole block.
    float sumqx = 0, sumq2 = 0;
    for (int ib = 0; ib < 16; ++ib) {
      const int l = std::clamp(nearest_int(0.5f * (id * scales[ib] - 1)), 0, 7);
      sc[ib / 4] = static_cast<std::uint16_t>(sc[ib / 4] | (l << (3 * (ib % 4))));
      qh[ib] = static_cast<std::uint8_t>(qh[ib] | kMasks[shifts[ib]]);
      const float* xb = x + bs * ib;
      kquant::parts::importance_weights(xb, importance ? importance + bs * ib : nullptr, sigma2, bs, weight);
      for (int k = 0; k < 2; ++k) {
        const float* xx = values(shifts[ib], k);
        const int gi = qs[2 * ib + k] | (((qh[ib] >> (4 * k)) & 7) << 8);
        for (int j = 0; j < 8; ++j) {
          const float w = weight[8 * k + j], q = xx[(g.position(gi, j) - 1) / 2] * static_cast<float>(2 * l + 1);
          sumqx += w * q * xb[8 * k + j];
          sumq2 += w * q * q;
        }
      }
    }
    if (sumq2 > 0) d = sumqx / sumq2;
    const std::uint16_t h = f32_to_f16(d * 1.1125f);  // the reference's fudge factor
    sc[0] = static_cast<std::uint16_t>(sc[0] | ((h & 0x000F) << 12));
    sc[1] = static_cast<std::uint16_t>(sc[1] | ((h & 0x00F0) << 8));
    sc[2] = static_cast<std::uint16_t>(sc[2] | ((h & 0x0F00) << 4));
    sc[3] = static_cast<std::uint16_t>(sc[3] | (h & 0xF000));
  }
  std::memcpy(out + 48, sc, 8);
}

void dequantize_iq1_s(const std::uint8_t* block, float* y) {
  const Lattice& g = iq1s_lattice();
  const float d = kquant::parts::load_half(block);
  const std::uint8_t* qs = block + 2;
  for (int ib = 0; ib < 8; ++ib) {
    std::uint16_t qh;
    std::memcpy(&qh, block + 34 + 2 * ib, 2);
    const float dl = d * static_cast<float>(2 * ((qh >> 12) & 7) + 1);
    const float delta = qh & 0x8000 ? -kDelta : kDelta;
    for (int l = 0; l < 4; ++l, y += 8) {
      const int gi = qs[4 * ib + l] | (((qh >> (3 * l)) & 7) << 8);
      for (int j = 0; j < 8; ++j) y[j] = dl * (static_cast<float>((g.position(gi, j) - 1) / 2 - 1) + delta);
    }
  }
}

void dequantize_iq1_m(const std::uint8_t* block, float* y) {
  const Lattice& g = iq1s_lattice();
  std::uint16_t sc[4];
  std::memcpy(sc, block + 48, 8);
  const std::uint16_t h = static_cast<std::uint16_t>((sc[0] >> 12) | ((sc[1] >> 8) & 0x00F0) | ((sc[2] >> 4) & 0x0F00) | (sc[3] & 0xF000));
  const float d = f16_to_f32(h);
  const std::uint8_t* qs = block;
  const std::uint8_t* qh = block + 32;
  for (int ib = 0; ib < 16; ++ib) {  // blocks of 16: two groups of 8
    const float dl = d * static_cast<float>(2 * ((sc[ib / 4] >> (3 * (ib % 4))) & 7) + 1);
    for (int k = 0; k < 2; ++k, y += 8) {
      const int gi = qs[2 * ib + k] | (((qh[ib] >> (4 * k)) & 7) << 8);
      const float delta = qh[ib] & (k == 0 ? 0x08 : 0x80) ? -kDelta : kDelta;
      for (int j = 0; j < 8; ++j) y[j] = dl * (static_cast<float>((g.position(gi, j) - 1) / 2 - 1) + delta);
    }
  }
}

}  // namespace qs::iq
