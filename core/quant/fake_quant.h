#pragma once
// The target format of a quantization method (AWQ, outlier keeping, ...): any
// row of the format table (format_table.h). The methods only need "quantize,
// then dequantize" of a scaled or edited weight, so every kind goes through
// the row's reference quantizer.
#include <cstdint>

#include "quant/format_table.h"
#include "util/result.h"

namespace qs {

using QuantTarget = QuantChoice;

// A row of `cols` values fits the target (group size or block divides it, a quantizer exists).
inline Result<void> validate_target(const QuantTarget& t, std::int64_t cols) { return t.fits(cols); }

// out = dequantize(quantize(w)) for w [rows, cols] row-major (out may not alias w).
// Rows run in parallel on the global pool (inline when called from a pool task).
inline Result<void> fake_quantize(const QuantTarget& t, const float* w, std::int64_t rows, std::int64_t cols,
                                  float* out) {
  return t.fake_quantize(w, rows, cols, out);
}

}  // namespace qs
