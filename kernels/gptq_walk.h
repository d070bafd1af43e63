#pragma once
// One row's GPTQ walk through one lazy-update block, in the reference's
// standard formulation (Frantar et al.): U is the upper Cholesky factor of
// H^-1 (walk order); column p's error err = (w_p - q_p) / U_pp is pushed onto
// the block's later columns as w_j -= err * U_pj, and the block's errors go to
// one GEMM afterwards (W[:, i2:] -= Err U[i1:i2, i2:]). Plain C++ that nvcc
// also compiles for the device: the GPU kernel runs it one thread per row, the
// CPU tests run it to check the algorithm against core/quant/gptq.cpp.
#include <cstdint>

#include "grid_math.h"

namespace qs::gptq_walk {

struct BlockParams {
  const float* w = nullptr;    // [rows, n] walk order, as it stands at the block's start (dead inputs zeroed)
  const float* u = nullptr;    // [n, n] row-major, upper triangular
  std::int64_t rows = 0, n = 0;
  std::int64_t i1 = 0;         // first column of the block (walk order)
  int count = 0;               // columns in the block
  int bits = 4;
  bool symmetric = false;
  int group_size = 0;          // > 0: groups of input columns; 0: one grid per row
  bool static_groups = false;  // grids fitted up front on the original column order
  int groups = 1;              // per row
  const std::int32_t* perm = nullptr;   // walk position -> original column
  const std::int32_t* g_idx = nullptr;  // original column -> group
  const float* static_scale = nullptr;  // [rows, groups], with static groups
  const float* static_zero = nullptr;
  float* cur_scale = nullptr;  // [rows]: the grid in use (per-row grid, or the latest dynamic group); carried across blocks
  float* cur_zero = nullptr;
  std::uint8_t* codes = nullptr;        // [rows, n] original column order
  float* dequantized = nullptr;         // [rows, n] original column order
  float* scales = nullptr;              // [rows, groups]
  float* zeros = nullptr;
  float* err = nullptr;                 // [rows, err_ld]: the block's errors, for the GEMM
  int err_ld = 0;
};

// The smallest and largest of n values at x[0], x[stride], ...
QS_HD void range_of(const float* x, std::int64_t n, std::int64_t stride, float& lo, float& hi) {
  lo = x[0];
  hi = x[0];
  for (std::int64_t i = 1; i < n; ++i) {
    lo = grid_math::min_of(lo, x[i * stride]);
    hi = grid_math::max_of(hi, x[i * stride]);
  }
}

// Walks row r through the block. `blk` holds the row's block values
// (w[r, i1 + i] at blk[i * stride]) and is updated in place.
QS_HD void walk_block_row(const BlockParams& p, std::int64_t r, float* blk, int stride) {
  using namespace grid_math;
  const float top = static_cast<float>((1 << p.bits) - 1);
  const float* wrow = p.w + r * p.n;
  float scale = p.cur_scale[r], zero = p.cur_zero[r];
  for (int i = 0; i < p.count; ++i) {
    const std::int64_t pos = p.i1 + i;
    const std::int32_t col = p.perm[pos];
    if (p.group_size > 0 && !p.static_groups && pos % p.group_size == 0) {
      // A dynamic group is fitted when the walk reaches it, on the weights as
      // they stood at the start of this block (the reference fits W[:, pos:pos+g]
      // of the matrix that only the between-block GEMMs have updated).
      float lo, hi;
      const std::int64_t len = p.n - pos < p.group_size ? p.n - pos : p.group_size;
      range_of(wrow + pos, len, 1, lo, hi);
      grid_from_range(lo, hi, p.bits, p.symmetric, scale, zero);
    }
    float s = scale, z = zero;
    if (p.group_size > 0 && p.static_groups) {
      const std::int64_t gi = r * p.groups + col / p.group_size;
      s = p.static_scale[gi];
      z = p.static_zero[gi];
    }
    const float x = blk[static_cast<std::int64_t>(i) * stride];
    const float q = grid_code(x, s, z, top);
    const float v = grid_value(q, s, z);
    const float e = div_rn(sub_rn(x, v), p.u[pos * p.n + pos]);
    const std::int64_t at = r * p.n + col;
    p.codes[at] = static_cast<std::uint8_t>(q);
    p.dequantized[at] = v;
    const std::int64_t gi = r * p.groups + p.g_idx[col];
    p.scales[gi] = s;
    p.zeros[gi] = z;
    p.err[r * p.err_ld + i] = e;
    const float* urow = p.u + pos * p.n + p.i1;
    for (int j = i + 1; j < p.count; ++j) {
      float& wj = blk[static_cast<std::int64_t>(j) * stride];
      wj = sub_rn(wj, mul_rn(e, urow[j]));
    }
  }
  p.cur_scale[r] = scale;
  p.cur_zero[r] = zero;
}

}  // namespace qs::gptq_walk
