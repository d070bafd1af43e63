#pragma once
// ggml's 2-bit i-quants (quantize_row_iq2_{xxs,xs,s}_impl), byte-identical to
// llama-quantize: magnitudes of 8 matched to lattice points (iq_lattice.h)
// under a sweep of candidate scales, weighted least squares per group, a
// 4-bit scale per group on one F16 scale per 256. IQ2_XXS and IQ2_XS need an
// importance matrix (llama-quantize refuses them without); IQ2_S does not.
//   IQ2_XXS (66 bytes): f16 d; per 32, a u32 of four 8-bit point indices and
//     a u32 of four 7-bit sign groups with the 4-bit scale on top.
//   IQ2_XS (74 bytes): f16 d; per 8, a u16 of a 9-bit index and 7 sign bits;
//     a 4-bit scale per 16.
//   IQ2_S (82 bytes): f16 d; 32 low index bytes, 32 sign bytes, 8 bytes of
//     the indices' top two bits, a 4-bit scale per 16.
#include <cstdint>

namespace qs::iq {

void quantize_iq2_xxs(const float* x, const float* importance, std::uint8_t* out);  // importance required
void quantize_iq2_xs(const float* x, const float* importance, std::uint8_t* out);   // importance required
void quantize_iq2_s(const float* x, const float* importance, std::uint8_t* out);    // importance or null
void dequantize_iq2_xxs(const std::uint8_t* block, float* y);
void dequantize_iq2_xs(const std::uint8_t* block, float* y);
void dequantize_iq2_s(const std::uint8_t* block, float* y);

}  // namespace qs::iq
