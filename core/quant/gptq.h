#pragma once
// GPTQ (Frantar et al., 2022): quantize a linear layer's weight column by
// column onto an integer grid, pushing each column's rounding error onto the
// columns not yet quantized through the inverse Hessian, with lazy block
// updates, optional act-order (columns by descending Hessian diagonal) and
// static groups. Rows are independent given H, so they run in parallel.
#include <cstdint>
#include <vector>

#include "model/dtype.h"
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
  // Integer grids: each fitted scale rounded to F16 before it is used, as GPTQ
  // checkpoints store it, so that the walk spreads the error of the values the
  // file will really hold and `dequantized` is exactly what a reader computes
  // (reference tools re-round the codes to the F16 scale after the walk).
  bool f16_scales = false;
  // Q8_0, Q4_0, Q4_1, Q5_0, Q5_1: the ggml block grid instead of `grid`
  // (groups of 32, each fitted as the reference quantizer fits its block, on
  // the weights as they stand when the walk reaches it); the result then holds
  // ordinary ggml blocks. Act-order needs static groups here (blocks are runs
  // of 32 original columns).
  DType block_type = DType::Unknown;
};

struct GptqResult {
  std::int64_t rows = 0, cols = 0;
  std::vector<std::uint8_t> codes;   // [rows, cols], original column order
  std::vector<float> scales, zeros;  // [rows, groups]
  std::vector<int> g_idx;            // group of each input column (original order), as GPTQ checkpoints store it
  int groups = 1;
  std::vector<float> dequantized;    // [rows, cols]: scale * (code - zero) (+ offset for ggml Q4_1/Q5_1)
  std::vector<float> offsets;        // ggml Q4_1/Q5_1: the block minimum m, [rows, groups]
  std::vector<std::byte> ggml_blocks;  // with block_type: rows * cols / 32 blocks, row-major
};

// `w`: [rows, cols] row-major; `h`: [cols, cols], the Hessian X^T X (any positive scale).
Result<GptqResult> gptq(const float* w, std::int64_t rows, std::int64_t cols, const float* h, const GptqSpec& spec,
                        OpContext& ctx);

}  // namespace qs
