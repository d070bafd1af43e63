#include "quant/iq_lattice.h"

#include <algorithm>
#include <utility>

#include "backend/thread_pool.h"

namespace qs::iq {

Lattice::Lattice(const std::uint16_t* points, int count, int dims, int bits, int max_level, int nwant)
    : dims_(dims), bits_(bits), mask_((1 << bits) - 1), points_(points, points + count) {
  const std::size_t codes = std::size_t{1} << (dims * bits);
  map_.assign(codes, -1);
  for (int i = 0; i < count; ++i) map_[points_[static_cast<std::size_t>(i)]] = i;
  // The codes a quantizer can form (every level <= max_level) that are no point.
  std::vector<std::uint32_t> off;
  for (std::uint32_t c = 0; c < codes; ++c) {
    if (map_[c] >= 0) continue;
    bool reachable = true;
    for (int i = 0; i < dims; ++i) reachable = reachable && static_cast<int>((c >> (bits * i)) & static_cast<std::uint32_t>(mask_)) <= max_level;
    if (reachable) off.push_back(c);
  }
  std::vector<std::vector<std::uint16_t>> found(off.size());
  ThreadPool::global().parallel_for(off.size(), [&](std::size_t k, unsigned) {
    const std::uint32_t c = off[k];
    std::vector<std::pair<int, int>> d2(static_cast<std::size_t>(count));
    for (int j = 0; j < count; ++j) {
      int s = 0;
      for (int i = 0; i < dims; ++i) {
        const int a = 2 * static_cast<int>((c >> (bits * i)) & static_cast<std::uint32_t>(mask_)) + 1;
        const int d = position(j, i) - a;
        s += d * d;
      }
      d2[static_cast<std::size_t>(j)] = {s, j};
    }
    std::sort(d2.begin(), d2.end());  // by distance, then index: a total order, as ggml's comparison
    int distinct = 1, last = d2[0].first;
    for (const auto& [s, j] : d2) {
      if (s > last) {
        if (distinct == nwant) break;
        last = s;
        ++distinct;
      }
      found[k].push_back(static_cast<std::uint16_t>(j));
    }
  });
  first_.assign(codes, 0);
  counts_.assign(codes, 0);
  for (std::size_t k = 0; k < off.size(); ++k) {
    first_[off[k]] = static_cast<std::uint32_t>(lists_.size());
    counts_[off[k]] = static_cast<std::uint16_t>(found[k].size());
    lists_.insert(lists_.end(), found[k].begin(), found[k].end());
  }
}

std::span<const std::uint16_t> Lattice::neighbours(std::uint32_t code) const {
  return {lists_.data() + first_[code], counts_[code]};
}

// Levels: IQ2 and IQ1 quantizers round to 0..2 (their grids use no level 3), IQ3 to 0..7.
const Lattice& iq2xxs_lattice() {
  static const Lattice l(kIq2xxsPoints, 256, 8, 2, 2, 2);
  return l;
}
const Lattice& iq2xs_lattice() {
  static const Lattice l(kIq2xsPoints, 512, 8, 2, 2, 2);
  return l;
}
const Lattice& iq2s_lattice() {
  static const Lattice l(kIq2sPoints, 1024, 8, 2, 2, 1);
  return l;
}
const Lattice& iq1s_lattice() {
  static const Lattice l(kIq1sPoints, 2048, 8, 2, 2, 3);
  return l;
}
const Lattice& iq3xxs_lattice() {
  static const Lattice l(kIq3xxsPoints, 256, 4, 3, 7, 2);
  return l;
}
const Lattice& iq3s_lattice() {
  static const Lattice l(kIq3sPoints, 512, 4, 3, 7, 3);
  return l;
}

}  // namespace qs::iq
