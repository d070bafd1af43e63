#pragma once
// The ggml IQ4_NL and IQ4_XS quantizers (ggml-quants.c quantize_row_iq4_nl_impl
// with super-blocks of 32 and of 256): weights x^2, or with an importance
// matrix imp * sqrt(sigma2 + x^2) (sigma2 twice the super-block's mean square); a first scale -max/values[0] refined by weighted least squares,
// then 2*ntry + 1 candidate inverse scales (itry + values[0]) / max, each
// quantized to the nearest level and refitted, the best kept; the codes are
// then re-chosen with the stored scale's inverse (before its f16 rounding).
// ntry = 7 is quantize_iq4_nl (llama-quantize, ggml_quantize_chunk); ntry = -1
// is quantize_row_iq4_nl_ref (one scale, no search, no re-quantization).
// Block: f16 d, then 16 bytes of codes (element j low nibble, j + 16 high).
#include <cstdint>

namespace qs::iq4nl {

inline constexpr int kBlockBytes = 18;

// One block of 32 floats into 18 bytes; `importance`: the 32 columns'
// importance (llama-quantize --imatrix), or null.
void quantize_block(const float* x, std::uint8_t* out, int ntry = 7, const float* importance = nullptr);

// IQ4_XS: 256 floats into 136 bytes (f16 d, u16 high scale bits, 4 bytes of
// low scale nibbles, 128 bytes of codes): the same search per 32, whose scales
// are then stored as 6-bit multiples of d = -(the largest scale) / 32.
inline constexpr int kXsBlockBytes = 136;
void quantize_xs_block(const float* x, std::uint8_t* out, const float* importance = nullptr);

}  // namespace qs::iq4nl
