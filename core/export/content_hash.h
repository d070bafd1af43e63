#pragma once
// Content hashes for the exporters' read-back verification: each exporter
// hashes a tensor's bytes while it writes them (in memory, in cache) and
// compares with the hash of the bytes its reader gets back from the written
// file, so a verification costs one read of the file and no second copy of
// the model. Not cryptographic: it only has to tell that the bytes read back
// are the bytes written, at memory speed.
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

namespace qs {

// One piece: a multiply-xorshift over 8-byte words in four interleaved
// chains (one chain is bound by its multiply's latency), then the tail.
std::uint64_t piece_hash(const std::byte* p, std::size_t n);
// Piece hashes folded in order.
std::uint64_t fold_hashes(const std::vector<std::uint64_t>& pieces);

// Pieces of this size by default: large enough to amortise a task, small
// enough to spread a tensor over every core.
inline constexpr std::size_t kHashPieceBytes = std::size_t{1} << 20;

// `bytes` cut into pieces of `piece_bytes`, hashed independently on the
// thread pool and folded in order: the same value however many threads run,
// and the same as a writer folding piece_hash of the same pieces itself.
std::uint64_t content_hash(std::span<const std::byte> bytes, std::size_t piece_bytes = kHashPieceBytes);

template <typename T>
std::uint64_t content_hash_of(const std::vector<T>& v) {
  return content_hash(std::as_bytes(std::span<const T>(v)));
}

}  // namespace qs
