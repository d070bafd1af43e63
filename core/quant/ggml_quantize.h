#pragma once
// The ggml reference quantizers (quantize_row_*_ref), byte-exact with
// llama-quantize without an importance matrix (docs/formats.md 3.3-3.10).
#include <cstddef>

#include "model/dtype.h"
#include "util/result.h"

namespace qs {

// Quantizes `blocks` blocks of dtype_block_elems(t) floats from `src` into `dst`
// (blocks * dtype_block_bytes(t) bytes). Supported: Q8_0, Q4_0, Q4_1, Q5_0, Q5_1,
// Q4_K, Q5_K, Q6_K, IQ4_NL (quantize_iq4_nl without imatrix, as llama-quantize).
// Non-finite input is refused with the index of the first bad value: the
// reference would write undefined bytes for it.
Result<void> quantize_ggml_blocks(DType t, const float* src, std::size_t blocks, std::byte* dst);

bool ggml_quantize_supported(DType t);

}  // namespace qs
