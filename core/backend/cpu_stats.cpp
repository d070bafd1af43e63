#include "backend/cpu_stats.h"

#include <algorithm>
#include <array>
#include <atomic>
#include <cmath>
#include <cstring>
#include <limits>
#include <mutex>

#include "model/convert.h"
#include "stats/percentiles.h"

namespace qs::cpu {
namespace {

// Elements per task: large enough that scheduling costs nothing, small enough
// for progress, cancel and load balance to be fine-grained.
constexpr std::uint64_t kPatternChunk = 1u << 20;
constexpr std::uint64_t kFloatChunk = 1u << 16;  // a multiple of every block size (32, 256)

struct Moments {
  std::uint64_t count = 0, nan = 0, inf = 0;
  double min = std::numeric_limits<double>::infinity();
  double max = -std::numeric_limits<double>::infinity();
  double sum = 0, sumsq = 0, abs_max = 0;
  double min_abs_nonzero = std::numeric_limits<double>::infinity();

  void merge(const Moments& o) {
    count += o.count; nan += o.nan; inf += o.inf;
    min = std::min(min, o.min); max = std::max(max, o.max);
    sum += o.sum; sumsq += o.sumsq; abs_max = std::max(abs_max, o.abs_max);
    min_abs_nonzero = std::min(min_abs_nonzero, o.min_abs_nonzero);
  }
  // One finite-or-not value, weighted by its count.
  void add(double v, std::uint64_t c) {
    if (std::isnan(v)) { nan += c; return; }
    if (std::isinf(v)) { inf += c; return; }
    count += c;
    min = std::min(min, v); max = std::max(max, v);
    sum += v * static_cast<double>(c);
    sumsq += v * v * static_cast<double>(c);
    const double a = std::fabs(v);
    abs_max = std::max(abs_max, a);
    if (a > 0) min_abs_nonzero = std::min(min_abs_nonzero, a);
  }
};

struct Central {
  double m2 = 0, m3 = 0, m4 = 0;
  void merge(const Central& o) { m2 += o.m2; m3 += o.m3; m4 += o.m4; }
};

void finish(TensorStats& s, const Moments& m, const Central& c) {
  s.count = m.count; s.nan = m.nan; s.inf = m.inf;
  if (m.count == 0) return;
  s.min = m.min; s.max = m.max; s.abs_max = m.abs_max;
  s.mean = m.sum / static_cast<double>(m.count);
  const double var = c.m2 / static_cast<double>(m.count);
  s.std = std::sqrt(var);
  s.kurtosis = var > 0 ? (c.m4 / static_cast<double>(m.count)) / (var * var) - 3.0 : 0.0;
}

// The quantity a histogram bins for value v; false for zeros on a log scale.
inline bool binned_quantity(HistogramScale scale, double v, double& q) {
  if (scale == HistogramScale::Linear) { q = v; return true; }
  if (v == 0) return false;
  q = std::log10(std::fabs(v));
  return true;
}

void setup_histogram(TensorStats& s, const HistogramSpec& spec, const Moments& m) {
  s.hist.scale = spec.scale;
  const double mnz = std::isfinite(m.min_abs_nonzero) ? m.min_abs_nonzero : 0.0;
  resolve_histogram_range(spec, m.count ? m.min : 0.0, m.count ? m.max : 0.0, mnz, m.abs_max, s.hist.lo, s.hist.hi);
  s.hist.counts.assign(static_cast<std::size_t>(spec.bins), 0);
}

inline void bin_into(Histogram& h, double inv_width, double v, std::uint64_t c, std::uint64_t* counts) {
  double q;
  if (!binned_quantity(h.scale, v, q)) { h.zeros += c; return; }
  const int bins = static_cast<int>(h.counts.size());
  const long long b = histogram_bin(q, h.lo, h.hi, inv_width, bins);
  if (b < 0) h.below += c;
  else if (b >= bins) h.above += c;
  else counts[b] += c;
}

// Percentiles from (value, count) pairs sorted by value.
void percentiles_from_sorted(TensorStats& s, const std::vector<std::pair<float, std::uint64_t>>& sorted) {
  for (std::size_t k = 0; k < kStatPercentiles.size(); ++k) {
    const std::uint64_t rank = percentile_rank(kStatPercentiles[k], s.count);
    std::uint64_t seen = 0;
    for (const auto& [v, c] : sorted) {
      seen += c;
      if (seen > rank) {
        s.percentiles[k] = v;
        break;
      }
    }
  }
}

template <class T>
inline T load(const std::byte* p) {
  T v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

}  // namespace

Result<TensorStats> stats_by_pattern(const TensorData& t, const HistogramSpec& spec, ThreadPool& pool, OpContext& ctx) {
  const unsigned bits = dtype_bits(t.dtype);
  if (bits != 8 && bits != 16) return Error::invalid("stats_by_pattern: needs an 8- or 16-bit type");
  const std::size_t patterns = std::size_t{1} << bits;

  // The value of every bit pattern, decoded once.
  std::vector<float> value(patterns);
  for (std::size_t p = 0; p < patterns; ++p) {
    const std::uint16_t raw = static_cast<std::uint16_t>(p);
    std::byte b[2];
    std::memcpy(b, &raw, 2);
    if (auto r = convert_to_f32(t.dtype, b, 1, &value[p]); !r) return r.error();
  }

  // Per worker 32-bit counters (fit in L2), flushed to 64-bit totals before they could overflow.
  const unsigned workers = pool.size();
  std::vector<std::vector<std::uint32_t>> local(workers);
  std::vector<std::uint64_t> since_flush(workers, 0);
  std::vector<std::uint64_t> total(patterns, 0);
  std::mutex total_mutex;
  auto flush = [&](unsigned w) {
    std::lock_guard lock(total_mutex);
    for (std::size_t p = 0; p < patterns; ++p) total[p] += local[w][p];
    std::fill(local[w].begin(), local[w].end(), 0u);
    since_flush[w] = 0;
  };

  const std::uint64_t tasks = (t.numel + kPatternChunk - 1) / kPatternChunk;
  std::atomic<std::uint64_t> done{0};
  pool.parallel_for(tasks, [&](std::size_t task, unsigned w) {
    if (ctx.cancelled()) return;
    if (local[w].empty()) local[w].assign(patterns, 0u);
    const std::uint64_t begin = task * kPatternChunk;
    const std::uint64_t n = std::min<std::uint64_t>(kPatternChunk, t.numel - begin);
    std::uint32_t* cnt = local[w].data();
    if (bits == 16) {
      const std::byte* p = t.data + begin * 2;
      for (std::uint64_t i = 0; i < n; ++i) ++cnt[load<std::uint16_t>(p + 2 * i)];
    } else {
      const auto* p = reinterpret_cast<const std::uint8_t*>(t.data + begin);
      for (std::uint64_t i = 0; i < n; ++i) ++cnt[p[i]];
    }
    since_flush[w] += n;
    if (since_flush[w] > (std::uint64_t{1} << 31)) flush(w);
    ctx.progress(static_cast<double>(++done) / static_cast<double>(tasks));
  });
  if (ctx.cancelled()) return Error::cancelled();
  for (unsigned w = 0; w < workers; ++w)
    if (!local[w].empty()) flush(w);

  Moments m;
  for (std::size_t p = 0; p < patterns; ++p)
    if (total[p]) m.add(value[p], total[p]);
  TensorStats s;
  Central c;
  const double mean = m.count ? m.sum / static_cast<double>(m.count) : 0.0;
  setup_histogram(s, spec, m);
  const double inv_width = static_cast<double>(spec.bins) / (s.hist.hi - s.hist.lo);
  for (std::size_t p = 0; p < patterns; ++p) {
    const double v = value[p];
    if (!total[p] || !std::isfinite(v)) continue;
    const double cw = static_cast<double>(total[p]);
    const double d = v - mean, d2 = d * d;
    c.m2 += cw * d2; c.m3 += cw * d2 * d; c.m4 += cw * d2 * d2;
    bin_into(s.hist, inv_width, v, total[p], s.hist.counts.data());
  }
  finish(s, m, c);
  std::vector<std::pair<float, std::uint64_t>> sorted;
  for (std::size_t p = 0; p < patterns; ++p)
    if (total[p] && std::isfinite(value[p])) sorted.emplace_back(value[p], total[p]);
  std::sort(sorted.begin(), sorted.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  percentiles_from_sorted(s, sorted);
  for (const auto& [v, n] : sorted) {
    const double d = std::fabs(static_cast<double>(v) - s.mean);
    if (d > 3 * s.std) s.beyond_3sigma += n;
    if (d > 6 * s.std) s.beyond_6sigma += n;
  }
  return s;
}

Result<TensorStats> stats_two_pass(const TensorData& t, const HistogramSpec& spec, ThreadPool& pool, OpContext& ctx) {
  if (!dtype_is_float_convertible(t.dtype))
    return Error::unsupported("type " + std::string(dtype_name(t.dtype)) + ": not decodable yet");
  if (!dtype_bytes(t.dtype, t.numel)) return Error::invalid("element count is not a whole number of blocks");
  const std::uint64_t tasks = (t.numel + kFloatChunk - 1) / kFloatChunk;
  const unsigned workers = pool.size();
  std::vector<std::vector<float>> scratch(workers);

  // A chunk as floats: F32 is read in place when aligned, the rest is decoded.
  auto chunk = [&](std::size_t task, unsigned w, std::uint64_t& n) -> const float* {
    const std::uint64_t begin = task * kFloatChunk;
    n = std::min<std::uint64_t>(kFloatChunk, t.numel - begin);
    const std::byte* src = t.data + *dtype_bytes(t.dtype, begin);  // chunks are whole blocks
    if (t.dtype == DType::F32 && reinterpret_cast<std::uintptr_t>(src) % alignof(float) == 0)
      return reinterpret_cast<const float*>(src);
    if (scratch[w].size() < kFloatChunk) scratch[w].resize(kFloatChunk);
    (void)convert_to_f32(t.dtype, src, n, scratch[w].data());  // type checked above
    return scratch[w].data();
  };

  // Pass 1: per-task partials merged in task order, so results do not depend on
  // the thread count; per worker, a count of every order key's top 16 bits (for percentiles).
  std::vector<Moments> part(tasks);
  std::vector<std::vector<std::uint64_t>> key_hi(workers);
  std::atomic<std::uint64_t> done{0};
  pool.parallel_for(tasks, [&](std::size_t task, unsigned w) {
    if (ctx.cancelled()) return;
    if (key_hi[w].empty()) key_hi[w].assign(65536, 0);
    std::uint64_t* kh = key_hi[w].data();
    std::uint64_t n;
    const float* x = chunk(task, w, n);
    // Fast path assumes finite values; a NaN/Inf shows up in the sum and the chunk is redone exactly.
    float mn = std::numeric_limits<float>::infinity(), mx = -mn, amax = 0, mnz = mn;
    double acc[4] = {0, 0, 0, 0}, sq[4] = {0, 0, 0, 0};  // four sums break the add-latency chains
    std::uint64_t i = 0;
    for (; i + 4 <= n; i += 4)
      for (int k = 0; k < 4; ++k) {
        const double v = x[i + static_cast<std::uint64_t>(k)];
        acc[k] += v;
        sq[k] += v * v;
      }
    for (; i < n; ++i) {
      acc[0] += static_cast<double>(x[i]);
      sq[0] += static_cast<double>(x[i]) * x[i];
    }
    const double sum = (acc[0] + acc[1]) + (acc[2] + acc[3]);
    const double sumsq = (sq[0] + sq[1]) + (sq[2] + sq[3]);
    for (i = 0; i < n; ++i) {
      const float v = x[i];
      mn = v < mn ? v : mn;
      mx = v > mx ? v : mx;
      const float a = std::fabs(v);
      amax = a > amax ? a : amax;
      mnz = (a > 0 && a < mnz) ? a : mnz;
    }
    Moments& m = part[task];
    if (std::isfinite(sum) && std::isfinite(mn) && std::isfinite(mx)) {
      m.count = n; m.min = mn; m.max = mx; m.sum = sum; m.sumsq = sumsq; m.abs_max = amax; m.min_abs_nonzero = mnz;
      for (i = 0; i < n; ++i) ++kh[float_order_key(x[i]) >> 16];
    } else {
      for (std::uint64_t j = 0; j < n; ++j) {
        m.add(x[j], 1);
        if (std::isfinite(x[j])) ++kh[float_order_key(x[j]) >> 16];
      }
    }
    ctx.progress(0.5 * static_cast<double>(++done) / static_cast<double>(tasks));
  });
  if (ctx.cancelled()) return Error::cancelled();
  Moments m;
  for (const auto& p : part) m.merge(p);

  // Each percentile's rank falls in one top-16-bit bucket; pass 2 counts the
  // low 16 bits of the keys in those buckets only, which pins the exact value.
  std::vector<std::uint64_t> hi_total(PercentileLocator::kBuckets, 0);
  for (const auto& kh : key_hi)
    for (std::size_t b = 0; !kh.empty() && b < hi_total.size(); ++b) hi_total[b] += kh[b];
  const PercentileLocator locator(hi_total, m.count);
  const std::vector<std::int8_t>& target_of = locator.target_of();
  // Per worker 32-bit low-key counts: a worker never sees 2^32 elements of one bucket below 2^32 elements.
  const bool exact_percentiles = t.numel < (std::uint64_t{1} << 32);
  std::vector<std::vector<std::uint32_t>> low(workers);

  TensorStats s;
  setup_histogram(s, spec, m);
  const double mean = m.count ? m.sum / static_cast<double>(m.count) : 0.0;
  // Tails are counted against the first pass's sigma (sum of squares); it equals the
  // reported std to ~1e-12 relative for any tensor whose mean is not far larger than its spread.
  const double sigma1 = m.count ? std::sqrt(std::max(0.0, m.sumsq / static_cast<double>(m.count) - mean * mean)) : 0.0;
  const double t3 = 3 * sigma1, t6 = 6 * sigma1;
  std::vector<std::array<std::uint64_t, 2>> wtail(workers, {0, 0});
  const double inv_width = static_cast<double>(spec.bins) / (s.hist.hi - s.hist.lo);
  const HistogramScale scale = spec.scale;
  const double lo = s.hist.lo, hi = s.hist.hi;
  const int bins = spec.bins;

  // Pass 2: central moments and bins. Bin counts are per worker (integers: order does not matter).
  std::vector<Central> cpart(tasks);
  // Per worker: `stride` slots (below, bins, above).
  const std::size_t stride = static_cast<std::size_t>(bins) + 2;
  std::vector<std::vector<std::uint64_t>> wcounts(workers);
  std::vector<std::array<std::uint64_t, 3>> wextra(workers, {0, 0, 0});  // below, above, zeros
  pool.parallel_for(tasks, [&](std::size_t task, unsigned w) {
    if (ctx.cancelled()) return;
    if (wcounts[w].empty()) wcounts[w].assign(stride, 0);
    if (exact_percentiles && low[w].empty()) low[w].assign(locator.target_count() * 65536, 0u);
    std::uint64_t* cnt = wcounts[w].data() + 1;  // cnt[-1] below, cnt[bins] above
    std::uint32_t* lw = low[w].data();
    std::uint64_t b3 = 0, b6 = 0;
    // Percentile refinement and tail counts for one finite value.
    auto order_and_tails = [&](float v) {
      const std::uint32_t key = float_order_key(v);
      const int tgt = target_of[key >> 16];
      if (tgt >= 0 && lw) ++lw[static_cast<std::size_t>(tgt) * 65536 + (key & 0xFFFFu)];
      const double d = std::fabs(static_cast<double>(v) - mean);
      b3 += d > t3;
      b6 += d > t6;
    };
    std::uint64_t n;
    const float* x = chunk(task, w, n);
    double m2 = 0, m3 = 0, m4 = 0;
    if (part[task].nan == 0 && part[task].inf == 0 && scale == HistogramScale::Linear) {
      // Common case, all finite: moments with four accumulators each, then bins.
      double a2[4] = {0, 0, 0, 0}, a3[4] = {0, 0, 0, 0}, a4[4] = {0, 0, 0, 0};
      std::uint64_t i = 0;
      for (; i + 4 <= n; i += 4)
        for (int k = 0; k < 4; ++k) {
          const double d = static_cast<double>(x[i + static_cast<std::uint64_t>(k)]) - mean, d2 = d * d;
          a2[k] += d2; a3[k] += d2 * d; a4[k] += d2 * d2;
        }
      for (; i < n; ++i) {
        const double d = static_cast<double>(x[i]) - mean, d2 = d * d;
        a2[0] += d2; a3[0] += d2 * d; a4[0] += d2 * d2;
      }
      m2 = (a2[0] + a2[1]) + (a2[2] + a2[3]);
      m3 = (a3[0] + a3[1]) + (a3[2] + a3[3]);
      m4 = (a4[0] + a4[1]) + (a4[2] + a4[3]);
      for (i = 0; i < n; ++i) {
        ++cnt[histogram_bin(x[i], lo, hi, inv_width, bins)];
        order_and_tails(x[i]);
      }
    } else {
      for (std::uint64_t i = 0; i < n; ++i) {
        const double v = x[i];
        if (!std::isfinite(v)) continue;
        order_and_tails(x[i]);
        const double d = v - mean, d2 = d * d;
        m2 += d2; m3 += d2 * d; m4 += d2 * d2;
        double q = v;
        if (scale == HistogramScale::LogMagnitude) {
          if (v == 0) { ++wextra[w][2]; continue; }
          q = std::log10(std::fabs(v));
        }
        ++cnt[histogram_bin(q, lo, hi, inv_width, bins)];
      }
    }
    cpart[task] = {m2, m3, m4};
    wtail[w][0] += b3;
    wtail[w][1] += b6;
    ctx.progress(0.5 + 0.5 * static_cast<double>(++done - tasks) / static_cast<double>(tasks));
  });
  if (ctx.cancelled()) return Error::cancelled();
  Central c;
  for (const auto& p : cpart) c.merge(p);
  for (unsigned w = 0; w < workers; ++w) {
    if (wcounts[w].empty()) continue;
    const std::uint64_t* wc = wcounts[w].data();
    s.hist.below += wc[0];
    s.hist.above += wc[stride - 1];
    for (std::size_t b = 0; b < static_cast<std::size_t>(bins); ++b) s.hist.counts[b] += wc[b + 1];
    s.hist.zeros += wextra[w][2];
    s.beyond_3sigma += wtail[w][0];
    s.beyond_6sigma += wtail[w][1];
  }
  finish(s, m, c);
  std::vector<std::uint64_t> low_total(exact_percentiles ? locator.target_count() * 65536 : 0, 0);
  for (const auto& lw : low)
    for (std::size_t i = 0; i < lw.size(); ++i) low_total[i] += lw[i];
  s.percentiles = locator.resolve(exact_percentiles ? low_total.data() : nullptr);
  return s;
}

}  // namespace qs::cpu
