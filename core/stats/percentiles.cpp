#include "stats/percentiles.h"

namespace qs {

PercentileLocator::PercentileLocator(const std::vector<std::uint64_t>& hi, std::uint64_t count)
    : count_(count), target_of_(kBuckets, -1) {
  if (count == 0 || hi.size() != kBuckets) return;
  for (std::size_t k = 0; k < kStatPercentiles.size(); ++k) {
    const std::uint64_t rank = percentile_rank(kStatPercentiles[k], count);
    std::uint64_t seen = 0;
    std::uint32_t b = 0;
    while (b + 1 < kBuckets && seen + hi[b] <= rank) seen += hi[b++];
    bucket_[k] = b;
    rank_in_bucket_[k] = rank - seen;
    if (target_of_[b] < 0) {
      target_of_[b] = static_cast<std::int8_t>(targets_.size());
      targets_.push_back(b);
    }
  }
}

std::array<double, kStatPercentiles.size()> PercentileLocator::resolve(const std::uint64_t* low) const {
  std::array<double, kStatPercentiles.size()> out{};
  if (count_ == 0) return out;
  for (std::size_t k = 0; k < out.size(); ++k) {
    const std::uint32_t b = bucket_[k];
    std::uint32_t lo16 = 0;  // without pass 2: the bucket's smallest key
    if (low) {
      const std::uint64_t* table = low + static_cast<std::size_t>(target_of_[b]) * kBuckets;
      std::uint64_t seen = 0;
      for (lo16 = 0; lo16 + 1 < kBuckets; ++lo16) {
        seen += table[lo16];
        if (seen > rank_in_bucket_[k]) break;
      }
    }
    out[k] = float_from_order_key((b << 16) | lo16);
  }
  return out;
}

}  // namespace qs
