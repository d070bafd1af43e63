#pragma once
// GPTQ (Frantar et al., 2022): quantize a linear layer's weight column by
// column onto an integer grid, pushing each column's rounding error onto the
// columns not yet quantized through the inverse Hessian, with lazy block
// updates, optional act-order (columns by descending Hessian diagonal) and
// static groups. Rows are independent given H, so they run in parallel.
#include <cstdint>
#include <vector>

#include "quant/int_grid.h"
#include "util/op_context.h"
#include "util/result.h"

namespace qs {

struct GptqSpec {
  IntGridSpec grid{4, false, 128};  // group_size > 0: groups of input columns; 0: per output channel
  double percdamp = 0.01;           // damping: percdamp * mean(diag H) added to the diagonal
  int block_size = 128;             // columns per lazy-update block
  bool act_order = false;           // desc_act
  bool static_groups = false;       // with act_order: groups fixed on the original column order
};

struct GptqResult {
  std::int64_t rows = 0, cols = 0;
  std::vector<std::uint8_t> codes;   // [rows, cols], original column order
  std::vector<float> scales, zeros;  // [rows, groups]
  std::vector<int> g_idx;            // group of each input column (original order), as GPTQ checkpoints store it
  int groups = 1;
  std::vector<float> dequantized;    // [rows, cols]: scale * (code - zero)
};

// `w`: [rows, cols] row-major; `h`: [cols, cols], the Hessian X^T X (any positive scale).
Result<GptqResult> gptq(const float* w, std::int64_t rows, std::int64_t cols, const float* h, const GptqSpec& spec,
                        OpContext& ctx);

}  // namespace qs
