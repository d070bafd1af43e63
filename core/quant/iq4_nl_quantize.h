#pragma once
// The ggml IQ4_NL quantizer without an importance matrix (ggml-quants.c
// quantize_row_iq4_nl_impl with super_block_size = block_size = 32):
// weights x^2; a first scale -max/values[0] refined by weighted least squares,
// then 2*ntry + 1 candidate inverse scales (itry + values[0]) / max, each
// quantized to the nearest level and refitted, the best kept; the codes are
// then re-chosen with the stored scale's inverse (before its f16 rounding).
// ntry = 7 is quantize_iq4_nl (llama-quantize, ggml_quantize_chunk); ntry = -1
// is quantize_row_iq4_nl_ref (one scale, no search, no re-quantization).
// Block: f16 d, then 16 bytes of codes (element j low nibble, j + 16 high).
#include <cstdint>

namespace qs::iq4nl {

inline constexpr int kBlockBytes = 18;

// One block of 32 floats into 18 bytes.
void quantize_block(const float* x, std::uint8_t* out, int ntry = 7);

}  // namespace qs::iq4nl
