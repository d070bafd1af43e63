#pragma once
// Outlier channels. The magnitude rule (LLM.int8): a channel whose abs-max
// exceeds k times the median channel abs-max (k = 6 by default). The IQR rule
// (AIMET): a channel range above the upper Tukey fence.
#include <cstddef>
#include <vector>

namespace qs {

inline constexpr double kDefaultOutlierFactor = 6.0;

// Indices of the outlier channels, ascending.
std::vector<std::size_t> outlier_channels(const std::vector<float>& channel_absmax, double k = kDefaultOutlierFactor);
// AIMET's rule: channels whose range exceeds Q3 + 1.5 x IQR of all channel ranges
// (quartiles by nearest rank).
std::vector<std::size_t> outlier_channels_iqr(const std::vector<float>& channel_range);
double median_of(std::vector<float> values);

}  // namespace qs
