#include "export/content_hash.h"

#include <algorithm>
#include <cstring>

#include "backend/thread_pool.h"

namespace qs {

std::uint64_t piece_hash(const std::byte* p, std::size_t n) {
  std::uint64_t h[4] = {0x9E3779B97F4A7C15ull ^ n, 0xC2B2AE3D27D4EB4Full, 0x165667B19E3779F9ull, 0xD6E8FEB86659FD93ull};
  std::size_t i = 0;
  for (; i + 32 <= n; i += 32)
    for (int k = 0; k < 4; ++k) {
      std::uint64_t w;
      std::memcpy(&w, p + i + 8 * k, 8);
      h[k] = (h[k] ^ w) * 0xBF58476D1CE4E5B9ull;
      h[k] ^= h[k] >> 31;
    }
  std::uint64_t r = h[0];
  for (int k = 1; k < 4; ++k) {
    r = (r ^ h[k]) * 0xBF58476D1CE4E5B9ull;
    r ^= r >> 31;
  }
  for (; i < n; ++i) r = (r ^ static_cast<std::uint64_t>(p[i])) * 0x94D049BB133111EBull;
  return r;
}

std::uint64_t fold_hashes(const std::vector<std::uint64_t>& pieces) {
  std::uint64_t h = 0x94D049BB133111EBull ^ pieces.size();
  for (std::uint64_t p : pieces) {
    h = (h ^ p) * 0xBF58476D1CE4E5B9ull;
    h ^= h >> 31;
  }
  return h;
}

std::uint64_t content_hash(std::span<const std::byte> b, std::size_t piece) {
  const std::size_t n = (b.size() + piece - 1) / piece;
  std::vector<std::uint64_t> pieces(n);
  if (n <= 1) {
    if (n == 1) pieces[0] = piece_hash(b.data(), b.size());
    return fold_hashes(pieces);
  }
  ThreadPool::global().parallel_for(n, [&](std::size_t k, unsigned) {
    pieces[k] = piece_hash(b.data() + k * piece, std::min(piece, b.size() - k * piece));
  });
  return fold_hashes(pieces);
}

}  // namespace qs
