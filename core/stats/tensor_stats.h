#pragma once
// Results of the statistics pass over one tensor: moments and a histogram.
#include <array>
#include <cmath>
#include <cstdint>
#include <optional>
#include <vector>

namespace qs {

enum class HistogramScale {
  Linear,        // bins over the value x
  LogMagnitude,  // bins over log10|x|; exact zeros are counted apart
};

struct HistogramSpec {
  int bins = 64;
  HistogramScale scale = HistogramScale::Linear;
  // Range of the binned quantity (x, or log10|x|). Unset: the data's own range.
  std::optional<double> lo, hi;
};

inline constexpr int kMaxHistogramBins = 1 << 16;

struct Histogram {
  HistogramScale scale = HistogramScale::Linear;
  double lo = 0, hi = 0;               // range of the binned quantity
  std::vector<std::uint64_t> counts;   // counts.size() bins of equal width
  std::uint64_t below = 0, above = 0;  // finite values outside [lo, hi]
  std::uint64_t zeros = 0;             // LogMagnitude only: exact zeros (no log)

  double bin_width() const { return counts.empty() ? 0 : (hi - lo) / static_cast<double>(counts.size()); }
  double bin_lower(std::size_t i) const { return lo + bin_width() * static_cast<double>(i); }
  double bin_center(std::size_t i) const { return lo + bin_width() * (static_cast<double>(i) + 0.5); }
};

// The binning rule every backend uses, so that CPU and GPU counts agree exactly:
// b = floor((v - lo) * (bins / (hi - lo))) in double; v == hi falls in the last bin.
// Returns -1 below the range, `bins` above it.
inline long long histogram_bin(double v, double lo, double hi, double inv_width, int bins) {
  if (v < lo) return -1;
  if (v > hi) return bins;
  const long long b = static_cast<long long>((v - lo) * inv_width);
  return b >= bins ? bins - 1 : b;
}

// Percentiles every stats pass reports (nearest rank over the finite values:
// the smallest value with at least p % of the values at or below it).
inline constexpr std::array<double, 6> kStatPercentiles{0.1, 1.0, 50.0, 99.0, 99.9, 99.99};

struct TensorStats {
  std::uint64_t count = 0;  // finite elements (the moments are over these)
  std::uint64_t nan = 0, inf = 0;
  double min = 0, max = 0;
  double mean = 0, std = 0;  // population standard deviation
  double kurtosis = 0;       // excess kurtosis (0 for a Gaussian); heavy tails score high
  double abs_max = 0;
  std::array<double, kStatPercentiles.size()> percentiles{};  // exact, in kStatPercentiles order
  std::uint64_t beyond_3sigma = 0, beyond_6sigma = 0;         // |x - mean| > k * std
  Histogram hist;
};

// 0-based rank of percentile p among n sorted values (nearest rank).
inline std::uint64_t percentile_rank(double p, std::uint64_t n) {
  if (n == 0) return 0;
  const double r = std::ceil(p / 100.0 * static_cast<double>(n));
  const auto k = static_cast<std::uint64_t>(r < 1 ? 1 : r);
  return (k > n ? n : k) - 1;
}

// Resolves an unset histogram range from the data range. For LogMagnitude,
// min_abs_nonzero/abs_max give the range of log10|x|.
void resolve_histogram_range(const HistogramSpec& spec, double min, double max, double min_abs_nonzero,
                             double abs_max, double& lo, double& hi);

}  // namespace qs
