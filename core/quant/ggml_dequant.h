#pragma once
// Dequantization of ggml block types to F32, following the block layouts in
// docs/formats.md section 3 (and ggml-common.h for Q2_K, Q3_K, IQ4_NL).
#include <cstddef>
#include <cstdint>

#include "model/dtype.h"

namespace qs {

// Decodes `blocks` consecutive blocks of type `t` from `src` (no alignment
// needed) into blocks * dtype_block_elems(t) floats. Returns false for block
// types it cannot decode.
bool dequantize_ggml_blocks(DType t, const std::byte* src, std::size_t blocks, float* dst);

// The six-bit scale and min of sub-block j (0..7) of a Q4_K / Q5_K block from
// its 12 packed scale bytes (formats.md 3.8, ggml's get_scale_min_k4).
void ggml_k4_scale_min(int j, const std::uint8_t* scales, int& sc, int& m);

// The 16 non-linear levels of IQ4_NL (and IQ4_XS).
extern const std::int8_t kIq4nlValues[16];

}  // namespace qs
