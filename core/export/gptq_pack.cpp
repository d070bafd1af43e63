#include "export/gptq_pack.h"

#include <cstring>
#include <string>

namespace qs {

void pack_bits(const std::uint8_t* codes, std::int64_t count, std::int64_t stride, int bits, std::uint32_t* words) {
  const std::int64_t nwords = count * bits / 32;
  std::memset(words, 0, static_cast<std::size_t>(nwords) * sizeof(std::uint32_t));
  for (std::int64_t k = 0; k < count; ++k) {
    const std::uint64_t v = codes[k * stride];
    const std::int64_t bit = k * bits, w = bit / 32, shift = bit % 32;
    words[w] |= static_cast<std::uint32_t>(v << shift);
    if (shift + bits > 32) words[w + 1] |= static_cast<std::uint32_t>(v >> (32 - shift));  // 3-bit straddle
  }
}

void unpack_bits(const std::uint32_t* words, std::int64_t count, int bits, std::uint8_t* codes) {
  const std::uint32_t mask = (1u << bits) - 1u;
  for (std::int64_t k = 0; k < count; ++k) {
    const std::int64_t bit = k * bits, w = bit / 32, shift = bit % 32;
    std::uint64_t v = words[w] >> shift;
    if (shift + bits > 32) v |= static_cast<std::uint64_t>(words[w + 1]) << (32 - shift);
    codes[k] = static_cast<std::uint8_t>(v & mask);
  }
}

std::string gptq_shape_problem(std::int64_t out, std::int64_t in, int bits) {
  if (bits != 2 && bits != 3 && bits != 4 && bits != 8) return "GPTQ checkpoints hold 2, 3, 4 or 8 bits, not " + std::to_string(bits);
  if (in % 32 != 0) return std::to_string(in) + " inputs are not a multiple of 32";
  const std::int64_t per = bits == 3 ? 32 : 32 / bits;
  if (out % per != 0) return std::to_string(out) + " outputs are not a multiple of " + std::to_string(per);
  return {};
}

Result<std::vector<std::int32_t>> pack_gptq_qweight(const std::uint8_t* codes, std::int64_t out, std::int64_t in, int bits) {
  if (auto p = gptq_shape_problem(out, in, bits); !p.empty()) return Error::invalid(p);
  const std::int64_t rows = in * bits / 32;
  std::vector<std::int32_t> q(static_cast<std::size_t>(rows * out));
  std::vector<std::uint32_t> column(static_cast<std::size_t>(rows));
  for (std::int64_t o = 0; o < out; ++o) {
    pack_bits(codes + o * in, in, 1, bits, column.data());
    for (std::int64_t r = 0; r < rows; ++r) q[static_cast<std::size_t>(r * out + o)] = static_cast<std::int32_t>(column[static_cast<std::size_t>(r)]);
  }
  return q;
}

Result<std::vector<std::int32_t>> pack_gptq_qzeros(const std::uint8_t* zeros, std::int64_t groups, std::int64_t out, int bits) {
  if (auto p = gptq_shape_problem(out, 32, bits); !p.empty()) return Error::invalid(p);
  const std::int64_t cols = out * bits / 32;
  std::vector<std::int32_t> z(static_cast<std::size_t>(groups * cols));
  for (std::int64_t g = 0; g < groups; ++g)
    pack_bits(zeros + g * out, out, 1, bits, reinterpret_cast<std::uint32_t*>(z.data() + g * cols));
  return z;
}

}  // namespace qs
