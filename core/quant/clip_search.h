#pragma once
// MSE-optimal clipping (ACIQ-like): instead of spanning each group's full
// [min, max], try ranges shrunk by a ratio r in {1, 1 - step, ..., min_ratio}
// and keep, per group (or per output channel, or once per tensor), the r with
// the smallest squared error. Heavy tails make the full range wasteful: one
// extreme weight stretches the step for the other 127; clipping it costs less
// than the coarser grid costs everyone else.
//
// r = 1 is plain RTN and ties go to it, and every chosen r is re-checked
// against r = 1 with the exact quantizer, so the result is never worse than RTN
// in the searched error (weight MSE, or the column-weighted MSE when
// `column_weight` is given).
#include <cstdint>
#include <vector>

#include "model/dtype.h"
#include "quant/int_grid.h"
#include "quant/metrics.h"
#include "util/op_context.h"
#include "util/result.h"

namespace qs {

struct ClipSearchSpec {
  IntGridSpec grid{4, false, 128};
  // Candidates 1, 1 - step, 1 - 2 step, ... down to min_ratio: 51 with these defaults.
  float min_ratio = 0.5f;
  float step = 0.01f;
  // Optional weight of each input column's squared error, [cols] (e.g. diag(H) =
  // mean x_j^2 over calibration tokens, as llama.cpp's imatrix): errors on
  // columns that see large activations count more. nullptr: plain weight MSE.
  const float* column_weight = nullptr;
};

struct ClipSearchResult {
  IntQuantized q;                 // codes, scales and zeros on the chosen ranges
  std::vector<float> ratios;      // chosen r per (row, group): [rows, q.groups_per_row]; per tensor: one value
  std::vector<float> dequantized; // [rows, cols]
  WeightError error, rtn_error;   // of the result and of RTN on the same grid (plain, unweighted)
};

// The candidate ratios, descending from exactly 1.
std::vector<float> clip_candidates(const ClipSearchSpec& spec);

// `w` [rows, cols] row-major. Rows run in parallel on the global pool.
Result<ClipSearchResult> clip_search(const float* w, std::int64_t rows, std::int64_t cols, const ClipSearchSpec& spec,
                                     OpContext& ctx = OpContext::none());

// The same search for a ggml block type: per block, the weights are clamped to
// [r * min, r * max] (range including 0) and handed to the ggml reference
// quantizer, which fits its own scales to the clamped block; the r whose
// dequantized block is closest to the original weights wins (r = 1, the plain
// quantizer's block, on ties). The result is ordinary ggml data. Costs one
// block quantization per candidate: cheap for Q4_0/Q8_0, slow for K-quants
// (pass a coarser step).
struct GgmlClipResult {
  DType type = DType::Q4_0;
  std::vector<std::byte> bytes;    // rows * cols / block_elems blocks, row-major
  std::vector<float> ratios;       // chosen r per block
  std::vector<float> dequantized;  // [rows, cols]
  WeightError error, plain_error;  // of the result and of the plain quantizer
};
// `spec.grid` is ignored; the candidates and column weights are used.
Result<GgmlClipResult> clip_search_ggml(const float* w, std::int64_t rows, std::int64_t cols, DType type,
                                        const ClipSearchSpec& spec, OpContext& ctx = OpContext::none());

namespace detail {
// Scale and zero of the grid spanning [r * min, r * max] of a group whose range
// (already including 0) is [xmin, xmax]: int_grid_params' arithmetic, so r = 1
// reproduces RTN bit for bit (a test holds the two together).
void clipped_grid_params(float xmin, float xmax, float r, const IntGridSpec& spec, float& scale, float& zero);
// The range of n values (stride apart) including 0, as int_grid_params takes it.
void range_with_zero(const float* x, std::size_t n, std::size_t stride, float& xmin, float& xmax);
}  // namespace detail

}  // namespace qs
