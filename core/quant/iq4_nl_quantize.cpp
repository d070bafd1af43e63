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
    fit(x, weight, id, L, sumqx, sumq2);
    d = sumq2 > 0 ? sumqx / sumq2 : 0.0f;
    float best = d * sumqx;
    std::uint8_t Ltry[32];
    for (int itry = -ntry; itry <= ntry; ++itry) {
      id = static_cast<float>(itry + values[0]) / max;
      fit(x, weight, id, Ltry, sumqx, sumq2);
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
    for (int j = 0; j < 32; ++j) L[j] = best_index(id * x[j]);
  }
  for (int j = 0; j < 16; ++j) out[2 + j] = static_cast<std::uint8_t>(L[j] | (L[j + 16] << 4));
}

}  // namespace qs::iq4nl
