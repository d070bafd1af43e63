#include "quant/clip_search.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "backend/thread_pool.h"
#include "quant/fake_quant.h"
#include "quant/ggml_dequant.h"
#include "quant/ggml_quantize.h"

namespace qs {
namespace detail {

void range_with_zero(const float* x, std::size_t n, std::size_t stride, float& xmin, float& xmax) {
  xmin = 0.0f;
  xmax = 0.0f;
  for (std::size_t i = 0; i < n; ++i) {
    const float v = x[i * stride];
    xmin = std::min(xmin, v);
    xmax = std::max(xmax, v);
  }
}

void clipped_grid_params(float xmin, float xmax, float r, const IntGridSpec& spec, float& scale, float& zero) {
  const int maxq = (1 << spec.bits) - 1;
  xmin *= r;  // r = 1: exact, so the lines below are int_grid_params' own
  xmax *= r;
  if (spec.symmetric) {
    xmax = std::max(std::fabs(xmin), xmax);
    if (xmin < 0) xmin = -xmax;
  }
  if (xmin == 0.0f && xmax == 0.0f) {
    xmin = -1.0f;
    xmax = 1.0f;
  }
  scale = (xmax - xmin) / static_cast<float>(maxq);
  zero = spec.symmetric ? static_cast<float>(maxq + 1) / 2.0f : std::nearbyint(-xmin / scale);
}

}  // namespace detail

namespace {

// Squared error of one group on one candidate grid, for ranking candidates:
// a multiply by 1/scale and eight float lanes so that it vectorises. The
// winner is re-checked with the exact quantizer (exact_error), so the
// approximation can only cost a missed improvement, never a regression.
// Rounding by adding and removing 1.5 * 2^23 without round_even's range test
// (which blocks vectorisation): beyond 2^22 the result is off by a few units,
// but such quotients lie far outside [0, maxq] and the clamp saturates them
// exactly as it would the exact value.
template <bool kWeighted>
float search_error_t(const float* x, const float* cw, std::int64_t n, float scale, float zero, float maxq) {
  const float inv = 1.0f / scale;
  float lane[8] = {};
  const std::int64_t n8 = n / 8 * 8;
  for (std::int64_t c = 0; c < n8; c += 8)
    for (int k = 0; k < 8; ++k) {
      const float v = x[c + k];
      const float q = std::min(std::max(((v * inv + 12582912.0f) - 12582912.0f) + zero, 0.0f), maxq);
      const float d = v - scale * (q - zero);
      lane[k] += kWeighted ? cw[c + k] * d * d : d * d;
    }
  float tail = 0.0f;
  for (std::int64_t c = n8; c < n; ++c) {
    const float q = std::min(std::max(detail::round_even(x[c] * inv) + zero, 0.0f), maxq);
    const float d = x[c] - scale * (q - zero);
    tail += kWeighted ? cw[c] * d * d : d * d;
  }
  return ((lane[0] + lane[1]) + (lane[2] + lane[3])) + ((lane[4] + lane[5]) + (lane[6] + lane[7])) + tail;
}
float search_error(const float* x, const float* cw, std::int64_t n, float scale, float zero, float maxq) {
  return cw ? search_error_t<true>(x, cw, n, scale, zero, maxq) : search_error_t<false>(x, cw, n, scale, zero, maxq);
}

// The same with the quantizer RTN uses (true division), in double.
double exact_error(const float* x, const float* cw, std::int64_t n, float scale, float zero, int maxq) {
  double e = 0;
  for (std::int64_t i = 0; i < n; ++i) {
    const float q = scale * (static_cast<float>(int_grid_code(x[i], scale, zero, maxq)) - zero);
    const double d = static_cast<double>(x[i]) - q;
    e += (cw ? static_cast<double>(cw[i]) : 1.0) * d * d;
  }
  return e;
}

void write_codes(const float* x, std::int64_t n, float scale, float zero, int maxq, std::uint8_t* codes, float* deq) {
  for (std::int64_t i = 0; i < n; ++i) {
    codes[i] = int_grid_code(x[i], scale, zero, maxq);
    deq[i] = scale * (static_cast<float>(codes[i]) - zero);
  }
}

}  // namespace

std::vector<float> clip_candidates(const ClipSearchSpec& spec) {
  std::vector<float> r{1.0f};
  if (!(spec.step > 0.0f)) return r;
  for (int i = 1;; ++i) {
    const double v = 1.0 - static_cast<double>(i) * spec.step;
    if (v < static_cast<double>(spec.min_ratio) - 1e-6 || v <= 0.0) break;
    r.push_back(static_cast<float>(v));
  }
  return r;
}

Result<ClipSearchResult> clip_search(const float* w, std::int64_t rows, std::int64_t cols, const ClipSearchSpec& spec,
                                     OpContext& ctx) {
  if (rows <= 0 || cols <= 0) return Error::invalid("clip search: empty weight");
  if (auto r = validate_int_grid(spec.grid, cols); !r) return r.error();
  if (!(spec.min_ratio > 0.0f && spec.min_ratio <= 1.0f)) return Error::invalid("clip search: min_ratio must be in (0, 1]");
  if (!(spec.step >= 0.0f)) return Error::invalid("clip search: step must be >= 0");
  for (std::int64_t i = 0; i < rows * cols; ++i)
    if (!std::isfinite(w[i])) return Error::invalid("clip search: weight " + std::to_string(i) + " is not finite");
  if (spec.column_weight)
    for (std::int64_t c = 0; c < cols; ++c)
      if (!(spec.column_weight[c] >= 0.0f) || !std::isfinite(spec.column_weight[c]))
        return Error::invalid("clip search: column weight " + std::to_string(c) + " is negative or not finite");

  const std::vector<float> cand = clip_candidates(spec);
  const int maxq = (1 << spec.grid.bits) - 1;
  const auto maxqf = static_cast<float>(maxq);
  ClipSearchResult out;
  IntQuantized& q = out.q;
  q.rows = rows;
  q.cols = cols;
  q.spec = spec.grid;
  q.groups_per_row = spec.grid.group_size > 0 ? static_cast<int>(cols / spec.grid.group_size) : 1;
  q.codes.resize(static_cast<std::size_t>(rows * cols));
  q.scales.resize(static_cast<std::size_t>(rows) * static_cast<std::size_t>(q.groups_per_row));
  q.zeros.resize(q.scales.size());
  out.dequantized.resize(q.codes.size());
  ThreadPool& pool = ThreadPool::global();
  const float* cw_all = spec.column_weight;

  if (spec.grid.group_size == -1) {
    // One range for the tensor: every candidate's error summed over all rows.
    float xmin = 0, xmax = 0;
    detail::range_with_zero(w, static_cast<std::size_t>(rows * cols), 1, xmin, xmax);
    std::vector<float> sc(cand.size()), ze(cand.size());
    for (std::size_t k = 0; k < cand.size(); ++k) detail::clipped_grid_params(xmin, xmax, cand[k], spec.grid, sc[k], ze[k]);
    std::vector<double> per_row(static_cast<std::size_t>(rows) * cand.size());
    pool.parallel_for(static_cast<std::size_t>(rows), [&](std::size_t r, unsigned) {
      for (std::size_t k = 0; k < cand.size(); ++k)
        per_row[r * cand.size() + k] = search_error(w + static_cast<std::int64_t>(r) * cols, cw_all, cols, sc[k], ze[k], maxqf);
    });
    std::size_t best = 0;
    double best_err = 0;
    for (std::size_t k = 0; k < cand.size(); ++k) {
      double e = 0;
      for (std::int64_t r = 0; r < rows; ++r) e += per_row[static_cast<std::size_t>(r) * cand.size() + k];
      if (k == 0 || e < best_err) best = k, best_err = e;
    }
    if (best != 0) {  // exact re-check against RTN's grid
      double e_best = 0, e_rtn = 0;
      for (std::int64_t r = 0; r < rows; ++r) {
        e_best += exact_error(w + r * cols, cw_all, cols, sc[best], ze[best], maxq);
        e_rtn += exact_error(w + r * cols, cw_all, cols, sc[0], ze[0], maxq);
      }
      if (!(e_best < e_rtn)) best = 0;
    }
    std::fill(q.scales.begin(), q.scales.end(), sc[best]);
    std::fill(q.zeros.begin(), q.zeros.end(), ze[best]);
    out.ratios = {cand[best]};
    pool.parallel_for(static_cast<std::size_t>(rows), [&](std::size_t r, unsigned) {
      const std::size_t at = r * static_cast<std::size_t>(cols);
      write_codes(w + at, cols, sc[best], ze[best], maxq, q.codes.data() + at, out.dequantized.data() + at);
    });
  } else {
    const std::int64_t gsize = spec.grid.group_size > 0 ? spec.grid.group_size : cols;
    out.ratios.resize(q.scales.size());
    pool.parallel_for(static_cast<std::size_t>(rows), [&](std::size_t r, unsigned) {
      if (ctx.cancelled()) return;
      for (int g = 0; g < q.groups_per_row; ++g) {
        const std::size_t at = r * static_cast<std::size_t>(cols) + static_cast<std::size_t>(g * gsize);
        const float* x = w + at;
        const float* cw = cw_all ? cw_all + g * gsize : nullptr;
        float xmin = 0, xmax = 0;
        detail::range_with_zero(x, static_cast<std::size_t>(gsize), 1, xmin, xmax);
        std::size_t best = 0;
        float best_err = 0, best_scale = 0, best_zero = 0;
        for (std::size_t k = 0; k < cand.size(); ++k) {
          float s = 0, z = 0;
          detail::clipped_grid_params(xmin, xmax, cand[k], spec.grid, s, z);
          const float e = search_error(x, cw, gsize, s, z, maxqf);
          if (k == 0 || e < best_err) best = k, best_err = e, best_scale = s, best_zero = z;
        }
        if (best != 0) {
          float s0 = 0, z0 = 0;
          detail::clipped_grid_params(xmin, xmax, 1.0f, spec.grid, s0, z0);
          if (!(exact_error(x, cw, gsize, best_scale, best_zero, maxq) < exact_error(x, cw, gsize, s0, z0, maxq)))
            best = 0, best_scale = s0, best_zero = z0;
        }
        const std::size_t gi = r * static_cast<std::size_t>(q.groups_per_row) + static_cast<std::size_t>(g);
        q.scales[gi] = best_scale;
        q.zeros[gi] = best_zero;
        out.ratios[gi] = cand[best];
        write_codes(x, gsize, best_scale, best_zero, maxq, q.codes.data() + at, out.dequantized.data() + at);
      }
    });
    if (ctx.cancelled()) return Error::cancelled();
  }
  out.error = weight_error(w, out.dequantized.data(), static_cast<std::uint64_t>(rows * cols));
  auto rtn = rtn_int(w, rows, cols, spec.grid);
  if (!rtn) return rtn.error();
  const std::vector<float> rq = dequantize_int(*rtn);
  out.rtn_error = weight_error(w, rq.data(), static_cast<std::uint64_t>(rows * cols));
  return out;
}

Result<GgmlClipResult> clip_search_ggml(const float* w, std::int64_t rows, std::int64_t cols, DType type,
                                        const ClipSearchSpec& spec, OpContext& ctx) {
  if (rows <= 0 || cols <= 0) return Error::invalid("clip search: empty weight");
  if (auto r = validate_target(QuantTarget::ggml(type), cols); !r) return r.error();
  if (!(spec.min_ratio > 0.0f && spec.min_ratio <= 1.0f)) return Error::invalid("clip search: min_ratio must be in (0, 1]");
  for (std::int64_t i = 0; i < rows * cols; ++i)
    if (!std::isfinite(w[i])) return Error::invalid("clip search: weight " + std::to_string(i) + " is not finite");
  const std::vector<float> cand = clip_candidates(spec);
  const auto be = static_cast<std::int64_t>(dtype_block_elems(type));
  const std::size_t bb = dtype_block_bytes(type);
  const std::int64_t blocks_per_row = cols / be, blocks = rows * blocks_per_row;
  GgmlClipResult out;
  out.type = type;
  out.bytes.resize(static_cast<std::size_t>(blocks) * bb);
  out.ratios.assign(static_cast<std::size_t>(blocks), 1.0f);
  out.dequantized.resize(static_cast<std::size_t>(rows * cols));
  std::vector<float> plain(out.dequantized.size());
  ThreadPool::global().parallel_for(static_cast<std::size_t>(rows), [&](std::size_t r, unsigned) {
    if (ctx.cancelled()) return;
    std::vector<float> clamped(static_cast<std::size_t>(be)), deq(clamped.size());
    std::vector<std::byte> tmp(bb);
    for (std::int64_t b = 0; b < blocks_per_row; ++b) {
      const std::int64_t at = static_cast<std::int64_t>(r) * cols + b * be;
      const float* x = w + at;
      const float* cw = spec.column_weight ? spec.column_weight + b * be : nullptr;
      std::byte* dst = out.bytes.data() + static_cast<std::size_t>(static_cast<std::int64_t>(r) * blocks_per_row + b) * bb;
      float xmin = 0, xmax = 0;
      detail::range_with_zero(x, static_cast<std::size_t>(be), 1, xmin, xmax);
      double best_err = 0;
      for (std::size_t k = 0; k < cand.size(); ++k) {
        const float lo = xmin * cand[k], hi = xmax * cand[k];
        for (std::int64_t i = 0; i < be; ++i) clamped[static_cast<std::size_t>(i)] = std::clamp(x[i], lo, hi);
        // Finite input, supported type (checked above): neither call can fail.
        (void)quantize_ggml_blocks(type, clamped.data(), 1, tmp.data());
        (void)dequantize_ggml_blocks(type, tmp.data(), 1, deq.data());
        double e = 0;
        for (std::int64_t i = 0; i < be; ++i) {
          const double d = static_cast<double>(x[i]) - deq[static_cast<std::size_t>(i)];
          e += (cw ? static_cast<double>(cw[i]) : 1.0) * d * d;
        }
        if (k == 0) std::copy(deq.begin(), deq.end(), plain.begin() + at);
        if (k == 0 || e < best_err) {  // ties keep r = 1, the plain quantizer's block
          best_err = e;
          std::copy(tmp.begin(), tmp.end(), dst);
          std::copy(deq.begin(), deq.end(), out.dequantized.begin() + at);
          out.ratios[static_cast<std::size_t>(static_cast<std::int64_t>(r) * blocks_per_row + b)] = cand[k];
        }
      }
    }
  });
  if (ctx.cancelled()) return Error::cancelled();
  out.error = weight_error(w, out.dequantized.data(), static_cast<std::uint64_t>(rows * cols));
  out.plain_error = weight_error(w, plain.data(), static_cast<std::uint64_t>(rows * cols));
  return out;
}

}  // namespace qs
