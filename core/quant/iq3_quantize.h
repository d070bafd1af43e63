#pragma once
// ggml's IQ3_XXS and IQ3_S quantizers (quantize_row_iq3_*_impl), byte-identical to
// llama-quantize with or without an importance matrix: per 32 values, signs
// taken out (even parity per 8: the least important value may be flipped),
// the magnitudes matched to lattice points of 4 (iq_lattice.h) under 31
// candidate scales, the best by weighted least squares kept; a 4-bit scale
// per 32 on one F16 scale per 256.
// Block (98 bytes): f16 d, 64 point indices (8 per 32), then per 32 a u32 of
// four 7-bit sign groups and the 4-bit scale in the top bits.
#include <cstdint>

namespace qs::iq {

inline constexpr int kIq3xxsBlockBytes = 98;
inline constexpr int kIq3sBlockBytes = 110;

// 256 values; `importance`: their 256 columns' importance, or null (weights x^2).
void quantize_iq3_xxs(const float* x, const float* importance, std::uint8_t* out);
void dequantize_iq3_xxs(const std::uint8_t* block, float* y);

// IQ3_S (quantize_row_iq3_s_impl): the same search on a 512-point lattice,
// all 8 signs stored, no parity flip. Block (110 bytes): f16 d, 64 low bytes
// of the point indices, 8 bytes of their ninth bits, 32 sign bytes, eight
// 4-bit scales (d * (1 + 2 s)).
void quantize_iq3_s(const float* x, const float* importance, std::uint8_t* out);
void dequantize_iq3_s(const std::uint8_t* block, float* y);

}  // namespace qs::iq
