#include "quant/iq_lattice.h"

#include <algorithm>
#include <cfloat>
#include <utility>

#include "backend/thread_pool.h"

namespace qs::iq {

Lattice::Lattice(const std::uint16_t* points, int count, int dims, int bits, int max_level, int nwant)
    : dims_(dims), bits_(bits), mask_((1 << bits) - 1), points_(points, points + count) {
  positions_.resize(static_cast<std::size_t>(count * dims));
  for (int j = 0; j < count; ++j)
    for (int i = 0; i < dims; ++i)
      positions_[static_cast<std::size_t>(j * dims + i)] =
          static_cast<std::int8_t>(2 * ((points_[static_cast<std::size_t>(j)] >> (bits * i)) & mask_) + 1);
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

int Lattice::best_neighbour(std::uint32_t code, const float* xval, const float* weight, float scale, std::int8_t* L,
                            const float* level_value) const {
  float best = FLT_MAX;
  int index = -1;
  for (std::uint16_t j : neighbours(code)) {
    float d2 = 0;
    for (int i = 0; i < dims_; ++i) {
      const float q = level_value ? level_value[(position(j, i) - 1) / 2] : static_cast<float>(position(j, i));
      const float diff = scale * q - xval[i];
      d2 += weight[i] * diff * diff;
    }
    if (d2 < best) {
      best = d2;
      index = j;
    }
  }
  for (int i = 0; i < dims_; ++i) L[i] = static_cast<std::int8_t>((position(index, i) - 1) / 2);
  return index;
}

void split_signs(const float* x, const float* weight, int n, bool even_parity, float* xval, std::uint8_t* signs) {
  for (int k = 0; k < n / 8; ++k) {
    int flips = 0;
    std::uint8_t s = 0;
    for (int i = 0; i < 8; ++i) {
      const float v = x[8 * k + i];
      if (v >= 0) {
        xval[8 * k + i] = v;
      } else {
        xval[8 * k + i] = -v;
        ++flips;
        s = static_cast<std::uint8_t>(s | (1 << i));
      }
    }
    if (even_parity && flips % 2) {
      int imin = 0;
      float least = weight[8 * k] * x[8 * k] * x[8 * k];
      for (int i = 1; i < 8; ++i) {
        const float a = weight[8 * k + i] * x[8 * k + i] * x[8 * k + i];
        if (a < least) {
          least = a;
          imin = i;
        }
      }
      xval[8 * k + imin] = -xval[8 * k + imin];
      s = static_cast<std::uint8_t>(s ^ (1 << imin));
    }
    signs[k] = even_parity ? s & 127 : s;
  }
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
