#include "stats/outliers.h"

#include <algorithm>
#include <cmath>

namespace qs {

double median_of(std::vector<float> v) {
  if (v.empty()) return 0;
  const std::size_t mid = v.size() / 2;
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(mid), v.end());
  if (v.size() % 2) return v[mid];
  const float upper = v[mid];
  const float lower = *std::max_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(mid));
  return 0.5 * (static_cast<double>(lower) + static_cast<double>(upper));
}

std::vector<std::size_t> outlier_channels(const std::vector<float>& absmax, double k) {
  std::vector<std::size_t> out;
  const double threshold = k * median_of(absmax);
  for (std::size_t i = 0; i < absmax.size(); ++i)
    if (static_cast<double>(absmax[i]) > threshold) out.push_back(i);
  return out;
}

std::vector<std::size_t> outlier_channels_iqr(const std::vector<float>& range) {
  std::vector<std::size_t> out;
  if (range.empty()) return out;
  std::vector<float> sorted = range;
  std::sort(sorted.begin(), sorted.end());
  auto quartile = [&](double p) {
    const auto k = static_cast<std::size_t>(std::max(1.0, std::ceil(p * static_cast<double>(sorted.size()))));
    return static_cast<double>(sorted[k - 1]);
  };
  const double q1 = quartile(0.25), q3 = quartile(0.75);
  const double fence = q3 + 1.5 * (q3 - q1);
  for (std::size_t i = 0; i < range.size(); ++i)
    if (static_cast<double>(range[i]) > fence) out.push_back(i);
  return out;
}

}  // namespace qs
