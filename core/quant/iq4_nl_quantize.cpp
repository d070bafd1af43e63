#include "quant/iq4_nl_quantize.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "quant/ggml_dequant.h"
#include "quant/ggml_kquant_parts.h"
#include "util/half.h"

namespace qs::iq4nl {
namespace {

// The reference's arithmetic step by step, in float, in its order: its ties
// and rounding decide the bytes. (No FMA contraction: the build does not
// enable FMA, like ggml-base built without -mfma.)

// The levels as floats (the reference compares and subtracts them promoted to float).
struct Levels {
  float v[16];
  Levels() {
    for (int i = 0; i < 16; ++i) v[i] = static_cast<float>(kIq4nlValues[i]);
  }
};
const Levels kLevels;

// ggml's best_index_int8 without its branches: the bisection ends with
// val[ml] <= x < val[ml + 1] (ml in 0..14, x outside the range clamping to the
// ends), i.e. ml = #{k in 1..14 : val[k] <= x}; then the same float
// comparison picks ml or ml + 1 (a value exactly between two levels takes the
// upper one). The ends need no special case: below val[0] the comparison
// picks 0, above val[15] it picks 15. Branch-free because the bisection's
// branches mispredict on every weight and dominated the scale search.
inline std::uint8_t best_index(float x) {
  const float* v = kLevels.v;
  int ml = 0;
  for (int k = 1; k < 15; ++k) ml += x >= v[k];
  return static_cast<std::uint8_t>(x - v[ml] < v[ml + 1] - x ? ml : ml + 1);
}

// Codes of id * x[j] for a block, and the two sums of the weighted fit in the
// reference's order (j ascending; the products are formed as it forms them).
inline void fit(const float* x, const float* weight, float id, std::uint8_t* L, float& sumqx, float& sumq2) {
  float wq[32], q[32];
  for (int j = 0; j < 32; ++j) {
    L[j] = best_index(id * x[j]);
    q[j] = kLevels.v[L[j]];
    wq[j] = weight[j] * q[j];
  }
  float a = 0.0f, b = 0.0f;
  for (int j = 0; j < 32; ++j) {
    a += wq[j] * x[j];
    b += wq[j] * q[j];
  }
  sumqx = a;
  sumq2 = b;
}


}  // namespace

namespace {

// The weights of one super-block of n values (sigma2: twice its mean square).
void weights_of(const float* x, int n, const float* importance, float* weight) {
  const float sigma2 = importance ? kquant::parts::sum_of_squares(x, n) * (2.0f / static_cast<float>(n)) : 0.0f;
  kquant::parts::importance_weights(x, importance, sigma2, n, weight);
}

// The scale of one block of 32: a first scale -max / values[0] refitted, then
// 2 ntry + 1 candidates (itry + values[0]) / max, the best refit kept. L gets
// the first pass's codes. An all-zero block has scale 0 (L untouched).
float fit_block(const float* x, const float* weight, int ntry, std::uint8_t* L) {
  float amax = 0.0f, max = 0.0f;
  for (int j = 0; j < 32; ++j) {
    const float ax = std::fabs(x[j]);
    if (ax > amax) {
      amax = ax;
      max = x[j];
    }
  }
  if (amax < kquant::parts::kGroupMaxEps) return 0.0f;
  const float v0 = static_cast<float>(kIq4nlValues[0]);
  float d = ntry > 0 ? -max / v0 : max / v0;
  float id = 1.0f / d;
  float sumqx = 0.0f, sumq2 = 0.0f;
  fit(x, weight, id, L, sumqx, sumq2);
  d = sumq2 > 0 ? sumqx / sumq2 : 0.0f;
  float best = d * sumqx;
  std::uint8_t Ltry[32];
  for (int itry = -ntry; itry <= ntry; ++itry) {
    id = static_cast<float>(itry + kIq4nlValues[0]) / max;
    fit(x, weight, id, Ltry, sumqx, sumq2);
    if (sumq2 > 0 && sumqx * sumqx > best * sumq2) {
      d = sumqx / sumq2;
      best = d * sumqx;
    }
  }
  return d;
}

void pack_codes(const std::uint8_t* L, int n, std::uint8_t* qs) {
  for (int i = 0; i < n / 32; ++i)
    for (int j = 0; j < 16; ++j) qs[16 * i + j] = static_cast<std::uint8_t>(L[32 * i + j] | (L[32 * i + 16 + j] << 4));
}

}  // namespace

void quantize_block(const float* x, std::uint8_t* out, int ntry, const float* importance) {
  float weight[32];
  std::uint8_t L[32];
  weights_of(x, 32, importance, weight);
  const float scale = fit_block(x, weight, ntry, L);
  const std::uint16_t h = f32_to_f16(scale);
  std::memcpy(out, &h, 2);
  // The reference re-quantizes only with a search (ntry > 0); for ntry <= 0 the
  // first pass's codes stand. A block below GROUP_MAX_EPS has scale 0, so
  // with the search every code is best_index(0) = 8; without it the reference
  // leaves the codes of its scratch buffer (undefined), and we write 8 too.
  if (ntry > 0 || scale == 0.0f) {
    const float id = scale != 0.0f ? 1.0f / scale : 0.0f;
    for (int j = 0; j < 32; ++j) L[j] = best_index(id * x[j]);
  }
  pack_codes(L, 32, out + 2);
}

void quantize_xs_block(const float* x, std::uint8_t* out, const float* importance) {
  float weight[256], scales[8];
  std::uint8_t L[256];
  weights_of(x, 256, importance, weight);
  float max_scale = 0.0f, amax_scale = 0.0f;
  for (int ib = 0; ib < 8; ++ib) {
    scales[ib] = fit_block(x + 32 * ib, weight + 32 * ib, 7, L + 32 * ib);
    if (std::fabs(scales[ib]) > amax_scale) {
      amax_scale = std::fabs(scales[ib]);
      max_scale = scales[ib];
    }
  }
  // d is negative when the largest scale is positive (and -0 when all are zero, as the reference writes it).
  const float d = -max_scale / 32;
  const std::uint16_t h = f32_to_f16(d);
  std::memcpy(out, &h, 2);
  const float id = d != 0.0f ? 1 / d : 0.0f;
  std::uint16_t scales_h = 0;
  std::uint8_t* scales_l = out + 4;
  std::memset(scales_l, 0, 4);
  for (int ib = 0; ib < 8; ++ib) {
    const int l = std::clamp(kquant::parts::nearest_int(id * scales[ib]), -32, 31);
    const float dl = d * static_cast<float>(l);
    const float idl = dl != 0.0f ? 1 / dl : 0.0f;
    for (int j = 0; j < 32; ++j) L[32 * ib + j] = best_index(idl * x[32 * ib + j]);
    const int stored = l + 32;
    scales_l[ib / 2] = static_cast<std::uint8_t>(scales_l[ib / 2] | ((stored & 0xF) << (4 * (ib % 2))));
    scales_h = static_cast<std::uint16_t>(scales_h | ((stored >> 4) << (2 * ib)));
  }
  std::memcpy(out + 2, &scales_h, 2);
  pack_codes(L, 256, out + 8);
}

}  // namespace qs::iq4nl
