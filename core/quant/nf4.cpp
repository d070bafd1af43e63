#include "quant/nf4.h"

#include <algorithm>
#include <cmath>

#include "backend/thread_pool.h"
#include "quant/format_checks.h"

namespace qs {

// bitsandbytes functional.py get_4bit_type("nf4"): quantiles of N(0, 1)
// normalised to [-1, 1] (create_normal_map(offset=0.9677083)), as published
// in the QLoRA paper's appendix.
const float kNf4Values[16] = {-1.0f,
                              -0.6961928009986877f,
                              -0.5250730514526367f,
                              -0.39491748809814453f,
                              -0.28444138169288635f,
                              -0.18477343022823334f,
                              -0.09105003625154495f,
                              0.0f,
                              0.07958029955625534f,
                              0.16093020141124725f,
                              0.24611230194568634f,
                              0.33791524171829224f,
                              0.44070982933044434f,
                              0.5626170039176941f,
                              0.7229568362236023f,
                              1.0f};

namespace {

// The 15 decision thresholds: midpoints of neighbouring levels computed in
// double and rounded to float, which gives bitsandbytes' constants (e.g.
// 0.03979014977812767 between 0 and 0.0795...).
std::array<float, 15> make_thresholds() {
  std::array<float, 15> t{};
  for (int i = 0; i < 15; ++i)
    t[static_cast<std::size_t>(i)] = static_cast<float>((static_cast<double>(kNf4Values[i]) + kNf4Values[i + 1]) / 2.0);
  return t;
}
const std::array<float, 15> kThresholds = make_thresholds();

// torch.linspace(start, end, steps) in float32 as ATen's CPU kernel computes
// it: step in float, the first half start + step*i, the second half counted
// back from the end.
std::vector<float> linspace_f32(float start, float end, int steps) {
  std::vector<float> v(static_cast<std::size_t>(steps));
  const float step = (end - start) / static_cast<float>(steps - 1);
  const int half = steps / 2;
  for (int i = 0; i < steps; ++i)
    v[static_cast<std::size_t>(i)] = i < half ? start + step * static_cast<float>(i)
                                              : end - step * static_cast<float>(steps - i - 1);
  return v;
}

std::array<float, 256> make_dynamic_map() {
  // create_dynamic_map(signed=True, max_exponent_bits=7, total_bits=8): for
  // i = 0..6, the 2^i midpoints of linspace(0.1, 1, 2^i + 1) (float32) times
  // 10^(i-6) (Python double), both signs; plus 0 and 1; sorted; stored float32.
  std::vector<float> data;
  for (int i = 0; i < 7; ++i) {
    const auto b = linspace_f32(0.1f, 1.0f, (1 << i) + 1);
    const double p = std::pow(10.0, i - 6);
    for (std::size_t k = 0; k + 1 < b.size(); ++k) {
      const float mean = (b[k] + b[k + 1]) / 2.0f;
      data.push_back(static_cast<float>(p * static_cast<double>(mean)));
      data.push_back(static_cast<float>(-p * static_cast<double>(mean)));
    }
  }
  data.push_back(0.0f);
  data.push_back(1.0f);
  std::sort(data.begin(), data.end());
  std::array<float, 256> out{};
  std::copy(data.begin(), data.end(), out.begin());
  return out;
}

double mean_of(const std::vector<float>& v) {
  double s = 0;
  for (float x : v) s += x;
  return v.empty() ? 0.0 : s / static_cast<double>(v.size());
}

}  // namespace

std::uint8_t nf4_code(float x) {
  // Strictly greater than the midpoint: ties go to the lower level, as the tree's `x > t` tests.
  return static_cast<std::uint8_t>(std::upper_bound(kThresholds.begin(), kThresholds.end(), x,
                                                    [](float v, float t) { return !(v > t); }) -
                                   kThresholds.begin());
}

const std::array<float, 256>& bnb_dynamic_map() {
  static const std::array<float, 256> map = make_dynamic_map();
  return map;
}

std::uint8_t bnb_dynamic_code(float v) {
  const auto& map = bnb_dynamic_map();
  v = std::clamp(v, -1.0f, 1.0f);
  const auto right = std::lower_bound(map.begin(), map.end(), v);
  if (right == map.begin()) return 0;
  if (right == map.end()) return 255;
  const auto idx = static_cast<std::uint8_t>(right - map.begin());
  return std::fabs(*right - v) < std::fabs(v - *(right - 1)) ? idx : static_cast<std::uint8_t>(idx - 1);
}

double nf4_bits_per_weight(std::int64_t rows, std::int64_t cols, bool double_quant) {
  const double n = static_cast<double>(rows) * static_cast<double>(cols);
  if (n <= 0) return 4.0;
  const std::int64_t blocks = rows * cols / kNf4Block;
  if (!double_quant) return 4.0 + 32.0 * static_cast<double>(blocks) / n;
  const std::int64_t blocks2 = (blocks + kNf4ScaleBlock - 1) / kNf4ScaleBlock;
  return 4.0 + (8.0 * static_cast<double>(blocks) + 32.0 * static_cast<double>(blocks2) + 32.0) / n;
}

double Nf4Quantized::bits_per_weight() const { return nf4_bits_per_weight(rows, cols, double_quant); }

Result<Nf4Quantized> quantize_nf4(const float* w, std::int64_t rows, std::int64_t cols, bool double_quant,
                                  ThreadPool* pool) {
  if (auto r = detail::check_whole_blocks(cols, kNf4Block, "NF4"); !r) return r.error();
  if (auto r = detail::check_finite(w, rows, cols); !r) return r.error();
  Nf4Quantized q;
  q.rows = rows;
  q.cols = cols;
  q.double_quant = double_quant;
  const std::int64_t blocks = rows * cols / kNf4Block;
  q.packed.resize(static_cast<std::size_t>(rows * cols / 2));
  q.absmax.resize(static_cast<std::size_t>(blocks));
  ThreadPool& tp = pool ? *pool : ThreadPool::global();
  const std::int64_t bpr = cols / kNf4Block;
  tp.parallel_for(static_cast<std::size_t>(rows), [&](std::size_t r, unsigned) {
    for (std::int64_t b = 0; b < bpr; ++b) {
      const std::int64_t i = static_cast<std::int64_t>(r) * bpr + b;
      const float* x = w + i * kNf4Block;
      float amax = 0.0f;
      for (int j = 0; j < kNf4Block; ++j) amax = std::max(amax, std::fabs(x[j]));
      q.absmax[static_cast<std::size_t>(i)] = amax;
      // bitsandbytes multiplies by the reciprocal. An all-zero block would give
      // 0 * inf = NaN there (code 0, value -0); we give it the level 0.0 (code 7).
      const float inv = amax > 0.0f ? 1.0f / amax : 0.0f;
      std::uint8_t* out = q.packed.data() + i * kNf4Block / 2;
      for (int j = 0; j < kNf4Block; j += 2)
        out[j / 2] = static_cast<std::uint8_t>((nf4_code(x[j] * inv) << 4) | nf4_code(x[j + 1] * inv));
    }
  });
  if (double_quant) {
    // The mean in double, stored as float (torch reduces in float with pairwise sums; the difference is
    // below one float ulp of the mean for any realistic count and does not change the method).
    q.offset = static_cast<float>(mean_of(q.absmax));
    const std::int64_t blocks2 = (blocks + kNf4ScaleBlock - 1) / kNf4ScaleBlock;
    q.absmax_codes.resize(static_cast<std::size_t>(blocks));
    q.absmax2.resize(static_cast<std::size_t>(blocks2));
    const auto& map = bnb_dynamic_map();
    for (std::int64_t b2 = 0; b2 < blocks2; ++b2) {
      const std::int64_t begin = b2 * kNf4ScaleBlock, end = std::min(blocks, begin + kNf4ScaleBlock);
      float m = 0.0f;
      for (std::int64_t i = begin; i < end; ++i) m = std::max(m, std::fabs(q.absmax[static_cast<std::size_t>(i)] - q.offset));
      q.absmax2[static_cast<std::size_t>(b2)] = m;
      const float inv = m > 0.0f ? 1.0f / m : 0.0f;
      for (std::int64_t i = begin; i < end; ++i) {
        const auto k = static_cast<std::size_t>(i);
        // bitsandbytes writes code 0 for an all-zero second-level block; it decodes to 0 * map[0] = 0 as well.
        q.absmax_codes[k] = m > 0.0f ? bnb_dynamic_code((q.absmax[k] - q.offset) * inv) : 0;
        q.absmax[k] = map[q.absmax_codes[k]] * m + q.offset;  // what dequantization will use
      }
    }
  }
  return q;
}

void dequantize_nf4_into(const Nf4Quantized& q, float* out) {
  const std::int64_t bpr = q.cols / kNf4Block;
  ThreadPool::global().parallel_for(static_cast<std::size_t>(q.rows), [&](std::size_t r, unsigned) {
    for (std::int64_t b = 0; b < bpr; ++b) {
      const std::int64_t i = static_cast<std::int64_t>(r) * bpr + b;
      const float s = q.absmax[static_cast<std::size_t>(i)];
      const std::uint8_t* in = q.packed.data() + i * kNf4Block / 2;
      float* y = out + i * kNf4Block;
      for (int j = 0; j < kNf4Block; j += 2) {
        y[j] = kNf4Values[in[j / 2] >> 4] * s;
        y[j + 1] = kNf4Values[in[j / 2] & 0xF] * s;
      }
    }
  });
}

}  // namespace qs
