#pragma once
// The ggml quantizers with an importance matrix, as llama-quantize --imatrix
// runs them (ggml-quants.c quantize_<type> with quant_weights): each column's
// importance (the mean of x^2 over the calibration activations feeding it)
// weights the scale searches, as imp * sqrt(sigma2 + w^2) where sigma2 is a
// mean square of the row (Q4_0..Q5_1), the super-block (K-quants, twice it
// but Q2_K) or the block (IQ4_NL, IQ4_XS). Q6_K weighs by the importance
// alone. Byte-identical to llama-quantize (tests/core/test_ggml_conformance).
#include <cstdint>

#include "model/dtype.h"

namespace qs {

// Whether llama-quantize's quantizer for `t` reads the importance (Q8_0 does not).
bool ggml_uses_importance(DType t);
// Whether it cannot do without one (IQ2_XXS, IQ2_XS, IQ1_S, IQ1_M: llama-quantize refuses them without).
bool ggml_needs_importance(DType t);

// One row of n values (a whole number of t's blocks) with its columns'
// importance[0..n), into n / block * block_bytes bytes. False when `t` takes
// no importance (ggml_uses_importance).
bool quantize_ggml_row_with_importance(DType t, const float* x, std::int64_t n, const float* importance,
                                       std::uint8_t* out);

}  // namespace qs
