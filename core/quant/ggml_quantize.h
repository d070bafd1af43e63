#pragma once
// The ggml reference quantizers (quantize_row_*_ref), byte-exact with
// llama-quantize without an importance matrix (docs/formats.md 3.3-3.10).
#include <cstddef>
#include <cstdint>

#include "model/dtype.h"
#include "util/result.h"

namespace qs {

// Quantizes `blocks` blocks of dtype_block_elems(t) floats from `src` into `dst`
// (blocks * dtype_block_bytes(t) bytes). Supported: Q8_0, Q4_0, Q4_1, Q5_0, Q5_1,
// Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, IQ4_NL, IQ4_XS, IQ3_XXS, IQ3_S and IQ2_S
// (without imatrix, as llama-quantize). IQ2_XXS, IQ2_XS, IQ1_S and IQ1_M are
// refused: they need an importance matrix (quantize_ggml_rows).
// Non-finite input is refused with the index of the first bad value: the
// reference would write undefined bytes for it.
Result<void> quantize_ggml_blocks(DType t, const float* src, std::size_t blocks, std::byte* dst);

// With an importance matrix (llama-quantize --imatrix): `rows` rows of `cols`
// values, column c's importance importance[c] (ggml_imatrix_quants.h). Null,
// or a type that reads none (Q8_0): quantize_ggml_blocks. Rows in parallel.
Result<void> quantize_ggml_rows(DType t, const float* src, std::int64_t rows, std::int64_t cols, const float* importance,
                                std::byte* dst);

// Whether QuantScope writes `t` (IQ2_XXS, IQ2_XS, IQ1_S, IQ1_M: given an importance matrix).
bool ggml_quantize_supported(DType t);

// The reference quantizer of one block of `t` (nullptr when unsupported), for
// callers that run their own chunks in parallel (the GGUF export fuses it with
// decoding and error measurement). It does not check for non-finite input.
using GgmlBlockQuantizer = void (*)(const float* src, std::uint8_t* dst);
GgmlBlockQuantizer ggml_block_quantizer(DType t);

// Tests: the portable (SSE2) builds of the quantizers that have an AVX2 one
// (Q8_0, Q4_0, Q4_K, Q5_K) even where the CPU has AVX2, to check both write the same bytes.
void use_portable_quantizers(bool portable);

// The index of the first non-finite value of x[0..n), or n when all are finite.
std::size_t first_non_finite(const float* x, std::size_t n);

}  // namespace qs
