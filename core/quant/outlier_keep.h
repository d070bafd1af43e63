#pragma once
// Outlier keeping (LLM.int8() / SpQR style): the few weights (or whole input
// channels) that would stretch the quantization grid stay in F16 in a sparse
// side table; the rest is quantized with them removed from the scale
// computation (zeroed first: every grid here includes 0). The dequantized
// weight is the quantized rest plus the side table.
//
// Cost counted (bits/weight = the target's + side table bits / (rows * cols)):
//  - single weights: 48 bits each, an F16 value and a 32-bit flat position
//    row * cols + col (so rows * cols < 2^32);
//  - whole input channels: per channel a 32-bit column index plus rows F16
//    values. The quantized part keeps its codes for those columns (groups stay
//    aligned), so they are counted too.
#include <cstdint>
#include <vector>

#include "quant/fake_quant.h"
#include "quant/int_grid.h"
#include "quant/metrics.h"
#include "util/result.h"

namespace qs {

struct OutlierSpec {
  QuantTarget target = QuantTarget::int_grid({4, false, 128});
  enum class Select {
    Weights,                    // the largest |w_ij| (times column_importance[j] when given)
    InputChannelsByActivation,  // whole columns with the largest act_absmax[j] (LLM.int8())
    InputChannelsByWeight,      // whole columns with the largest max_i |w_ij|
  } select = Select::Weights;
  // Share kept: of all weights (Weights) or of the input channels (channel modes),
  // rounded to the nearest count.
  double fraction = 0.01;
  const float* column_importance = nullptr;  // [cols], e.g. sqrt(diag H): SpQR-like sensitivity
  const float* act_absmax = nullptr;         // [cols], InputChannelsByActivation
};

struct OutlierResult {
  // Every kept weight, sorted by (row, col); value is F16 (stored as float) and
  // is added to the quantized rest at that position.
  std::vector<std::int32_t> row, col;
  std::vector<float> value;
  std::vector<std::int32_t> kept_columns;  // channel modes: the kept input channels, ascending
  IntQuantized q;                          // integer targets: codes of the rest
  std::vector<float> dequantized;          // rest + side table, [rows, cols]
  double side_table_bits = 0;
  double bits_per_weight = 0;
  WeightError error;
};

Result<OutlierResult> outlier_keep(const float* w, std::int64_t rows, std::int64_t cols, const OutlierSpec& spec);

}  // namespace qs
