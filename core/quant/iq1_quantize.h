#pragma once
// ggml's 1-bit i-quants (quantize_row_iq1_{s,m}_impl), byte-identical to
// llama-quantize --imatrix: each value is -1, 0 or 1 plus a shared shift of
// +-1/8 (IQ1S_DELTA), groups of 8 are points of a 2048-point lattice
// (iq_lattice.h). The split of a group into the three values is searched
// exhaustively over the sorted values (two boundaries), then matched to the
// lattice. Both need an importance matrix (llama-quantize refuses them without).
//   IQ1_S (50 bytes): f16 d; 32 low index bytes; per 32 a u16 of four 3-bit
//     index tops, a 3-bit scale and the shift's sign.
//   IQ1_M (56 bytes): 32 low index bytes; per 16 a byte of two 3-bit index
//     tops and two shift signs; 3-bit scales per 16 in four u16 whose top
//     nibbles hold the f16 d.
#include <cstdint>

namespace qs::iq {

void quantize_iq1_s(const float* x, const float* importance, std::uint8_t* out);
void quantize_iq1_m(const float* x, const float* importance, std::uint8_t* out);
void dequantize_iq1_s(const std::uint8_t* block, float* y);
void dequantize_iq1_m(const std::uint8_t* block, float* y);

}  // namespace qs::iq
