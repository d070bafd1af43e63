#pragma once
// GPTQ checkpoint packing (docs/formats.md 4.1): b-bit codes laid end to end
// in a little-endian bit string of 32-bit words, code k at bits b*k .. b*k+b-1.
// For b = 2, 4, 8 no code crosses a word; for b = 3 every 32 codes fill three
// words and codes 10 and 21 straddle word boundaries. qweight packs each
// output column's codes along the input dimension ([in*b/32, out]); qzeros
// packs each group's zero-points along the output dimension ([G, out*b/32]).
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "util/result.h"

namespace qs {

// `count` codes (each < 2^bits) read as codes[i * stride] into count*bits/32 words.
// count*bits must be a multiple of 32.
void pack_bits(const std::uint8_t* codes, std::int64_t count, std::int64_t stride, int bits, std::uint32_t* words);
void unpack_bits(const std::uint32_t* words, std::int64_t count, int bits, std::uint8_t* codes);

// codes: [out, in] row-major (our weight layout) -> qweight [in*bits/32, out].
Result<std::vector<std::int32_t>> pack_gptq_qweight(const std::uint8_t* codes, std::int64_t out, std::int64_t in, int bits);
// zeros: [groups, out] stored values (v1: z - 1, v2: z) -> qzeros [groups, out*bits/32].
Result<std::vector<std::int32_t>> pack_gptq_qzeros(const std::uint8_t* zeros, std::int64_t groups, std::int64_t out, int bits);

// The weight [out, in] (row-major) a module's four tensors decode to:
// scales[g][o] * (code[i][o] - z[g][o]) with g = g_idx[i], codes from qweight
// [in*bits/32, out], z from qzeros [groups, out*bits/32] (v1 checkpoints store
// z - 1, v2 z), scales F16 [groups, out]. Refuses sizes that do not match and
// a g_idx outside [0, groups). What the export's read-back check decodes.
Result<std::vector<float>> dequantize_gptq(std::span<const std::int32_t> qweight, std::span<const std::int32_t> qzeros,
                                           std::span<const std::uint16_t> scales, std::span<const std::int32_t> g_idx,
                                           std::int64_t out, std::int64_t in, std::int64_t groups, int bits, bool v2);

// The shape rules of the format for a layer [out, in]: bits 2/3/4/8, in a
// multiple of 32, out a multiple of 32/bits (of 32 for 3 bits); "" when fine.
std::string gptq_shape_problem(std::int64_t out, std::int64_t in, int bits);

}  // namespace qs
