#include "export/gptq_pack.h"

#include "util/half.h"

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

Result<std::vector<float>> dequantize_gptq(std::span<const std::int32_t> qweight, std::span<const std::int32_t> qzeros,
                                           std::span<const std::uint16_t> scales, std::span<const std::int32_t> g_idx,
                                           std::int64_t out, std::int64_t in, std::int64_t groups, int bits, bool v2) {
  if (auto p = gptq_shape_problem(out, in, bits); !p.empty()) return Error::invalid(p);
  if (groups <= 0 || groups > in) return Error::invalid(std::to_string(groups) + " groups for " + std::to_string(in) + " inputs");
  const std::int64_t rows = in * bits / 32, zcols = out * bits / 32;
  if (qweight.size() != static_cast<std::size_t>(rows * out) || qzeros.size() != static_cast<std::size_t>(groups * zcols) ||
      scales.size() != static_cast<std::size_t>(groups * out) || g_idx.size() != static_cast<std::size_t>(in))
    return Error::invalid("qweight, qzeros, scales or g_idx do not have the sizes of a [" + std::to_string(out) + ", " +
                          std::to_string(in) + "] layer in " + std::to_string(groups) + " groups");
  for (std::int64_t i = 0; i < in; ++i)
    if (g_idx[static_cast<std::size_t>(i)] < 0 || g_idx[static_cast<std::size_t>(i)] >= groups)
      return Error::invalid("g_idx[" + std::to_string(i) + "] = " + std::to_string(g_idx[static_cast<std::size_t>(i)]) +
                            " is not a group");
  std::vector<std::uint8_t> zeros(static_cast<std::size_t>(groups * out));
  for (std::int64_t g = 0; g < groups; ++g)
    unpack_bits(reinterpret_cast<const std::uint32_t*>(qzeros.data() + g * zcols), out, bits, zeros.data() + g * out);
  std::vector<float> w(static_cast<std::size_t>(out * in));
  std::vector<std::uint32_t> column(static_cast<std::size_t>(rows));
  std::vector<std::uint8_t> codes(static_cast<std::size_t>(in));
  for (std::int64_t o = 0; o < out; ++o) {
    for (std::int64_t r = 0; r < rows; ++r)
      column[static_cast<std::size_t>(r)] = static_cast<std::uint32_t>(qweight[static_cast<std::size_t>(r * out + o)]);
    unpack_bits(column.data(), in, bits, codes.data());
    for (std::int64_t i = 0; i < in; ++i) {
      const auto at = static_cast<std::size_t>(g_idx[static_cast<std::size_t>(i)] * out + o);
      const float zero = static_cast<float>(zeros[at] + (v2 ? 0 : 1));
      w[static_cast<std::size_t>(o * in + i)] = f16_to_f32(scales[at]) * (static_cast<float>(codes[static_cast<std::size_t>(i)]) - zero);
    }
  }
  return w;
}

}  // namespace qs
