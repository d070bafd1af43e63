#pragma once
// Outlier channels by LLM.int8's magnitude rule: a channel whose abs-max
// exceeds k times the median channel abs-max (k = 6 by default).
#include <cstddef>
#include <vector>

namespace qs {

inline constexpr double kDefaultOutlierFactor = 6.0;

// Indices of the outlier channels, ascending.
std::vector<std::size_t> outlier_channels(const std::vector<float>& channel_absmax, double k = kDefaultOutlierFactor);
double median_of(std::vector<float> values);

}  // namespace qs
