#pragma once
// The target format of a quantization method (AWQ, outlier keeping, ...): an
// integer grid (int_grid.h) or a ggml block type (ggml_quantize.h). The methods
// only need "quantize, then dequantize" of a scaled or edited weight, so both
// kinds go through one fake-quantize call.
#include <cstdint>
#include <string>

#include "model/dtype.h"
#include "quant/int_grid.h"
#include "util/result.h"

namespace qs {

struct QuantTarget {
  enum class Kind { IntGrid, Ggml } kind = Kind::IntGrid;
  IntGridSpec grid;               // Kind::IntGrid
  DType ggml_type = DType::Q4_0;  // Kind::Ggml: a type quantize_ggml_blocks supports

  static QuantTarget int_grid(const IntGridSpec& g) { return {Kind::IntGrid, g, DType::Q4_0}; }
  static QuantTarget ggml(DType t) { return {Kind::Ggml, {}, t}; }

  // Storage of the codes and their scales, as IntQuantized::bits_per_weight or the ggml block size.
  double bits_per_weight(std::int64_t rows, std::int64_t cols) const;
  std::string name() const;  // "int4-g128", "int8-ch-sym", "Q4_K", ...
};

// A row of `cols` values fits the target (group size or ggml block divides it).
Result<void> validate_target(const QuantTarget& t, std::int64_t cols);

// out = dequantize(quantize(w)) for w [rows, cols] row-major (out may not alias w).
// Rows run in parallel on the global pool (inline when called from a pool task).
Result<void> fake_quantize(const QuantTarget& t, const float* w, std::int64_t rows, std::int64_t cols, float* out);

}  // namespace qs
