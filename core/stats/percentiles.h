#pragma once
// Exact percentiles of float data in two counting passes, used by every
// backend: pass 1 counts the top 16 bits of each value's order key, pass 2
// counts the low 16 bits, but only for the few buckets where a percentile's
// rank falls. No sorting, no copy of the data.
#include <array>
#include <cstdint>
#include <cstring>
#include <vector>

#include "stats/tensor_stats.h"

namespace qs {

// Order-preserving unsigned key of a float (negatives reversed).
inline std::uint32_t float_order_key(float f) {
  std::uint32_t u;
  std::memcpy(&u, &f, 4);
  return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}
inline float float_from_order_key(std::uint32_t k) {
  const std::uint32_t u = (k & 0x80000000u) ? (k & 0x7FFFFFFFu) : ~k;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

class PercentileLocator {
 public:
  static constexpr std::size_t kBuckets = 65536;
  // `hi_counts`: pass-1 counts per top-16-bit bucket over `count` finite values.
  PercentileLocator(const std::vector<std::uint64_t>& hi_counts, std::uint64_t count);

  // Pass 2 looks up each value's bucket here: -1, or the index of its low-count table.
  const std::vector<std::int8_t>& target_of() const { return target_of_; }
  std::size_t target_count() const { return targets_.size(); }

  // `low_counts[t * 65536 + low16]` summed over workers; nullptr: bucket resolution only.
  std::array<double, kStatPercentiles.size()> resolve(const std::uint64_t* low_counts) const;

 private:
  std::uint64_t count_;
  std::array<std::uint32_t, kStatPercentiles.size()> bucket_{};
  std::array<std::uint64_t, kStatPercentiles.size()> rank_in_bucket_{};
  std::vector<std::int8_t> target_of_;
  std::vector<std::uint32_t> targets_;
};

}  // namespace qs
