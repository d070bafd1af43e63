#pragma once
// NF4 (QLoRA, Dettmers et al. 2023, arXiv:2305.14314), as bitsandbytes
// stores it (bitsandbytes functional.py get_4bit_type / quantize_4bit and
// csrc/kernels.cu dQuantizeNF4, 2026-08):
// - blocks of 64 consecutive weights (along the row here), absmax per block
//   as F32; each weight x * (1 / absmax) goes to the nearest of the 16 NF4
//   levels by bitsandbytes' comparison tree (thresholds = midpoints between
//   neighbouring levels, a value exactly on a midpoint takes the lower level);
//   two codes per byte, the first element in the HIGH nibble (bitsandbytes order).
// - double quantization (compress_statistics=True): offset = mean(absmax);
//   absmax - offset is quantized with quantize_blockwise in blocks of 256
//   scales: one F32 absmax per 256, each scale an 8-bit index into the signed
//   "dynamic" map (create_dynamic_map(signed=True): 256 sorted levels in
//   [-1, 1]), nearest level, ties to the lower index (cpu_ops.cpp
//   lookup_code_index). Dequantized absmax = map[code] * absmax2 + offset.
// Storage: 4 + 32/64 = 4.5 bits/weight; with double quantization
// 4 + 8/64 + 32/(64*256) = 4.127 bits/weight plus 32 bits for the offset.
#include <array>
#include <cstdint>
#include <vector>

#include "util/result.h"

namespace qs {

class ThreadPool;

inline constexpr int kNf4Block = 64;
inline constexpr int kNf4ScaleBlock = 256;  // double quantization: scales per second-level block

// The 16 NF4 levels, code order (bitsandbytes get_4bit_type("nf4"), the QLoRA paper's appendix E).
extern const float kNf4Values[16];

// The NF4 code of a value already divided by its block's absmax.
std::uint8_t nf4_code(float normalized);

// bitsandbytes' signed 8-bit dynamic map (create_dynamic_map(signed=True, 7, 8)), sorted.
const std::array<float, 256>& bnb_dynamic_map();
// The index of the nearest map level to v (clamped to [-1, 1]); ties to the lower index.
std::uint8_t bnb_dynamic_code(float v);

struct Nf4Quantized {
  std::int64_t rows = 0, cols = 0;
  bool double_quant = false;
  std::vector<std::uint8_t> packed;  // rows * cols / 2
  std::vector<float> absmax;         // per block of 64: as stored, or as double quantization gives it back
  // Double quantization only:
  std::vector<std::uint8_t> absmax_codes;  // per block of 64
  std::vector<float> absmax2;              // per 256 blocks (last one may be partial)
  float offset = 0.0f;
  double bits_per_weight() const;
};

double nf4_bits_per_weight(std::int64_t rows, std::int64_t cols, bool double_quant);

// Rows not a multiple of 64 are Unsupported; NaN/Inf weights Invalid.
Result<Nf4Quantized> quantize_nf4(const float* w, std::int64_t rows, std::int64_t cols, bool double_quant,
                                  ThreadPool* pool = nullptr);
void dequantize_nf4_into(const Nf4Quantized& q, float* out);

}  // namespace qs
