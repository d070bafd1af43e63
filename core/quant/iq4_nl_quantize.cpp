#include "quant/iq4_nl_quantize.h"

#include <cmath>
#include <cstring>

#include "quant/ggml_dequant.h"
#include "util/half.h"

namespace qs::iq4nl {
namespace {

// The reference's arithmetic step by step, in float, in its order: its ties
// and rounding decide the bytes. (No FMA contraction: the build does not
// enable FMA, like ggml-base built without -mfma.)

// Nearest level by bisection; a value exactly between two levels takes the upper one.
inline int best_index(float x) {
  const std::int8_t* val = kIq4nlValues;
  if (x <= static_cast<float>(val[0])) return 0;
  if (x >= static_cast<float>(val[15])) return 15;
  int ml = 0, mu = 15;
  while (mu - ml > 1) {
    const int mav = (ml + mu) / 2;
    if (x < static_cast<float>(val[mav])) mu = mav;
    else ml = mav;
  }
  return x - static_cast<float>(val[mu - 1]) < static_cast<float>(val[mu]) - x ? mu - 1 : mu;
}

constexpr float kGroupMaxEps = 1e-15f;  // GROUP_MAX_EPS

}  // namespace

void quantize_block(const float* x, std::uint8_t* out, int ntry) {
  const std::int8_t* values = kIq4nlValues;
  float weight[32];
  std::uint8_t L[32];
  for (int j = 0; j < 32; ++j) weight[j] = x[j] * x[j];
  float amax = 0.0f, max = 0.0f;
  for (int j = 0; j < 32; ++j) {
    const float ax = std::fabs(x[j]);
    if (ax > amax) {
      amax = ax;
      max = x[j];
    }
  }
  float scale = 0.0f;
  if (amax >= kGroupMaxEps) {
    const float v0 = static_cast<float>(values[0]);
    float d = ntry > 0 ? -max / v0 : max / v0;
    float id = 1.0f / d;
    float sumqx = 0.0f, sumq2 = 0.0f;
    for (int j = 0; j < 32; ++j) {
      const int l = best_index(id * x[j]);
      L[j] = static_cast<std::uint8_t>(l);
      const float q = static_cast<float>(values[l]);
      const float w = weight[j];
      sumqx += w * q * x[j];
      sumq2 += w * q * q;
    }
    d = sumq2 > 0 ? sumqx / sumq2 : 0.0f;
    float best = d * sumqx;
    for (int itry = -ntry; itry <= ntry; ++itry) {
      id = static_cast<float>(itry + values[0]) / max;
      sumqx = sumq2 = 0.0f;
      for (int j = 0; j < 32; ++j) {
        const float q = static_cast<float>(values[best_index(id * x[j])]);
        const float w = weight[j];
        sumqx += w * q * x[j];
        sumq2 += w * q * q;
      }
      if (sumq2 > 0 && sumqx * sumqx > best * sumq2) {
        d = sumqx / sumq2;
        best = d * sumqx;
      }
    }
    scale = d;
  }
  const std::uint16_t h = f32_to_f16(scale);
  std::memcpy(out, &h, 2);
  // The reference re-quantizes only with a search (ntry > 0); for ntry <= 0 the
  // first pass's codes stand. A block below GROUP_MAX_EPS has scale 0, so
  // with the search every code is best_index(0) = 8; without it the reference
  // leaves the codes of its scratch buffer (undefined), and we write 8 too.
  if (ntry > 0 || scale == 0.0f) {
    const float id = scale != 0.0f ? 1.0f / scale : 0.0f;
    for (int j = 0; j < 32; ++j) L[j] = static_cast<std::uint8_t>(best_index(id * x[j]));
  }
  for (int j = 0; j < 16; ++j) out[2 + j] = static_cast<std::uint8_t>(L[j] | (L[j + 16] << 4));
}

}  // namespace qs::iq4nl
