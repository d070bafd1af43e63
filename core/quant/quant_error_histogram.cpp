#include "quant/quant_error_histogram.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "backend/thread_pool.h"

namespace qs {
namespace {

constexpr std::size_t kChunk = 1 << 16;

struct Range {
  float lo = std::numeric_limits<float>::infinity(), hi = -std::numeric_limits<float>::infinity();
  float err = 0;  // max |deq - w|
};

Histogram empty_histogram(double lo, double hi, int bins) {
  Histogram h;
  h.scale = HistogramScale::Linear;
  h.lo = lo;
  h.hi = hi;
  h.counts.assign(static_cast<std::size_t>(bins), 0);
  return h;
}

std::size_t bin(double v, double lo, double hi, double inv_width, int bins) {
  return static_cast<std::size_t>(std::clamp<long long>(histogram_bin(v, lo, hi, inv_width, bins), 0, bins - 1));
}

}  // namespace

Result<QuantErrorHistograms> quant_error_histograms(const TensorInfo& t, const QuantChoice& choice, int bins,
                                                    OpContext& ctx) {
  if (bins < 1 || bins > kMaxHistogramBins) return error_histograms_of(nullptr, nullptr, 0, bins);  // its message
  std::vector<float> w, deq;
  if (auto r = quantize_dequantize(t, choice, w, deq, ctx); !r) return r.error();
  if (ctx.cancelled()) return Error::cancelled();
  return error_histograms_of(w.data(), deq.data(), w.size(), bins);
}

Result<QuantErrorHistograms> error_histograms_of(const float* w, const float* deq, std::size_t n, int bins) {
  if (bins < 1 || bins > kMaxHistogramBins)
    return Error::invalid("histogram bins must be in [1, " + std::to_string(kMaxHistogramBins) + "], not " +
                          std::to_string(bins));
  const std::size_t chunks = (n + kChunk - 1) / kChunk;
  ThreadPool& pool = ThreadPool::global();

  // Pass 1: the common value range and the largest error (the quantizers refuse NaN/Inf).
  std::vector<Range> ranges(chunks);
  pool.parallel_for(chunks, [&](std::size_t c, unsigned) {
    Range r;
    for (std::size_t i = c * kChunk, end = std::min(n, (c + 1) * kChunk); i < end; ++i) {
      r.lo = std::min({r.lo, w[i], deq[i]});
      r.hi = std::max({r.hi, w[i], deq[i]});
      r.err = std::max(r.err, std::fabs(deq[i] - w[i]));
    }
    ranges[c] = r;
  });
  Range all;
  for (const Range& r : ranges) {
    all.lo = std::min(all.lo, r.lo);
    all.hi = std::max(all.hi, r.hi);
    all.err = std::max(all.err, r.err);
  }
  double lo = n ? all.lo : 0.0, hi = n ? all.hi : 0.0;
  if (!(hi > lo)) {  // constant layer: one bin around the value
    lo -= 0.5;
    hi += 0.5;
  }
  // An exact round trip still gets a visible (tiny) range, with every count in the middle.
  const double m = all.err > 0 ? static_cast<double>(all.err) : 1e-12;

  // Pass 2: counts per chunk, merged in chunk order.
  QuantErrorHistograms out;
  out.before = empty_histogram(lo, hi, bins);
  out.after = empty_histogram(lo, hi, bins);
  out.error = empty_histogram(-m, m, bins);
  const double inv_value = bins / (hi - lo), inv_error = bins / (2 * m);
  const std::size_t nb = static_cast<std::size_t>(bins);
  std::vector<std::vector<std::uint64_t>> part(pool.size(), std::vector<std::uint64_t>(3 * nb, 0));
  pool.parallel_for(chunks, [&](std::size_t c, unsigned worker) {
    std::uint64_t* before = part[worker].data();
    std::uint64_t* after = before + nb;
    std::uint64_t* error = after + nb;
    for (std::size_t i = c * kChunk, end = std::min(n, (c + 1) * kChunk); i < end; ++i) {
      // In range by construction (the error in float, as pass 1 measured it); clamped all the same.
      const float d = deq[i] - w[i];
      ++before[bin(w[i], lo, hi, inv_value, bins)];
      ++after[bin(deq[i], lo, hi, inv_value, bins)];
      ++error[bin(d, -m, m, inv_error, bins)];
    }
  });
  for (const auto& p : part)
    for (std::size_t b = 0; b < nb; ++b) {
      out.before.counts[b] += p[b];
      out.after.counts[b] += p[nb + b];
      out.error.counts[b] += p[2 * nb + b];
    }
  out.figures = weight_error(w, deq, n);
  return out;
}

}  // namespace qs
