#pragma once
// GPTQ's in-block walk for 8 rows at once, one row per SIMD lane (gptq.cpp
// drives it). Each step quantizes a column, takes its error and pushes it onto
// the rest of the block; the chain of a step is latency-bound for one row, so
// eight rows go side by side. Explicit 8-lane vectors (an AVX2 build chosen at
// run time, SSE2 otherwise; no FMA in either): every lane does the scalar
// arithmetic, so the codes depend neither on the build nor on the lane count.
#include <cstdint>

namespace qs::detail {

constexpr int kGptqLanes = 8;

// The grid of each lane for a run of columns: value = scale * (code - zero) +
// offset, codes clamped to [lo, hi]. A scale of 0 (a ggml block of zeros)
// makes every code mean `offset`.
struct GptqLaneGrid {
  alignas(32) float scale[kGptqLanes], zero[kGptqLanes], offset[kGptqLanes], lo[kGptqLanes], hi[kGptqLanes];
};

// Walks columns [i_begin, i_end) of a block of `count` columns. Arrays are
// [count][8], 32-byte aligned: x the weights as the walk sees them (updated in
// place), x0 the original weights; codes, values and errors (value - x0) are
// written for the walked columns. g points at the factor's row of the block's
// first column, at that column (G[i1][i1]); row stride g_stride.
void gptq_walk_lanes(float* x, const float* x0, float* codes, float* values, float* errors, std::int64_t i_begin,
                     std::int64_t i_end, std::int64_t count, const float* g, std::int64_t g_stride,
                     const GptqLaneGrid& grid);

// Tests: the SSE2 build even where the CPU has AVX2, to check both give the same codes.
void use_portable_gptq_walk(bool portable);

}  // namespace qs::detail
