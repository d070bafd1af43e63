#pragma once
// Writing the simple ggml blocks (Q8_0, Q4_0, Q4_1, Q5_0, Q5_1) from codes and
// block parameters chosen elsewhere (GPTQ on a ggml grid), in the byte layout
// of docs/formats.md 3.3-3.7, and the parameters the reference quantizer would
// fit to a block. Decoding is ggml_dequant's.
#include <cstddef>
#include <cstdint>

#include "model/dtype.h"

namespace qs {

// A block's grid: value = scale * (code - zero) + offset, codes in [lo, hi].
// scale and offset are already rounded to F16 (what the block stores).
struct GgmlBlockGrid {
  float scale = 0, zero = 0, offset = 0;
  int lo = 0, hi = 15;
};

bool ggml_block_pack_supported(DType t);  // Q8_0, Q4_0, Q4_1, Q5_0, Q5_1

// The reference quantizer's parameters for these 32 values (its d, and m for
// the _1 types), as a grid.
GgmlBlockGrid ggml_block_grid(DType t, const float* x);

// One block of dtype_block_bytes(t) bytes from 32 codes on `grid` (codes in [lo, hi]).
void pack_ggml_block(DType t, const GgmlBlockGrid& grid, const std::uint8_t* codes, std::byte* out);

// K-quants (Q4_K, Q5_K, Q6_K): super-blocks of 256 whose sub-block scales are
// themselves quantized, so the grids of all sub-blocks are fitted together.
bool ggml_superblock_supported(DType t);
int ggml_superblock_sub(DType t);  // elements per sub-block: 32 (Q4_K, Q5_K) or 16 (Q6_K)
// Runs the reference quantizer on these 256 values, keeps its block in
// `reference` (dtype_block_bytes(t) bytes: its scale fields are what the
// packed block will carry) and returns the grid of each of the 256 / sub
// sub-blocks as the ggml decoder applies it (value = d*sc*q - dmin*m, or
// d*sc*(q - 32) for Q6_K).
void ggml_superblock_grids(DType t, const float* x, GgmlBlockGrid* grids, std::byte* reference);
// `reference` with its quant fields replaced by these 256 codes.
void pack_ggml_superblock(DType t, const std::byte* reference, const std::uint8_t* codes, std::byte* out);

}  // namespace qs
