#pragma once
// The target format of a quantization method (AWQ, outlier keeping, ...): an
// integer grid (int_grid.h), a ggml block type (ggml_quantize.h) or an element
// format (NF4, FP8, MXFP4, NVFP4: named_format.h). The methods
// only need "quantize, then dequantize" of a scaled or edited weight, so all
// kinds go through one fake-quantize call.
#include <cstdint>
#include <string>

#include "model/dtype.h"
#include "quant/int_grid.h"
#include "quant/named_format.h"
#include "util/result.h"

namespace qs {

struct QuantTarget {
  enum class Kind { IntGrid, Ggml, Named } kind = Kind::IntGrid;
  IntGridSpec grid;               // Kind::IntGrid
  DType ggml_type = DType::Q4_0;  // Kind::Ggml: a type quantize_ggml_blocks supports
  NamedFormat named = NamedFormat::Nf4;  // Kind::Named: NF4, FP8, MXFP4, NVFP4, F16/BF16

  static QuantTarget int_grid(const IntGridSpec& g) { return {Kind::IntGrid, g, DType::Q4_0}; }
  static QuantTarget ggml(DType t) { return {Kind::Ggml, {}, t}; }
  static QuantTarget named_format(NamedFormat f) { return {Kind::Named, {}, DType::Q4_0, f}; }

  // Storage of the codes and their scales, as IntQuantized::bits_per_weight, the ggml block
  // size or named_format_bits_per_weight.
  double bits_per_weight(std::int64_t rows, std::int64_t cols) const;
  std::string name() const;  // "int4-g128", "int8-ch-sym", "Q4_K", "nf4", ...
  // The columns one scale covers, for methods that normalise per group (AWQ's w̄):
  // the int group (all columns per channel), the ggml (sub-)block of 32, the named block.
  std::int64_t scale_group(std::int64_t cols) const;
};

// A row of `cols` values fits the target (group size or ggml block divides it).
Result<void> validate_target(const QuantTarget& t, std::int64_t cols);

// out = dequantize(quantize(w)) for w [rows, cols] row-major (out may not alias w).
// Rows run in parallel on the global pool (inline when called from a pool task).
Result<void> fake_quantize(const QuantTarget& t, const float* w, std::int64_t rows, std::int64_t cols, float* out);

}  // namespace qs
