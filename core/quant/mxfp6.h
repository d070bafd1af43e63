#pragma once
// MXFP6 E3M2 (OCP Microscaling Formats v1.0, sections 5 and 6.3): blocks of
// 32 along the row, one E8M0 scale X = 2^e per block with
// e = floor(log2(amax)) - 4 (4 = emax of E3M2), clamped to [-127, 127];
// elements = RNE(x / X) on E3M2 (bias 3, no Inf/NaN, largest 28), saturating.
// 6 + 8/32 = 6.25 bits/weight. The format the table's design was checked
// with: its row in format_table.cpp and this file are all it takes.
#include <cstdint>

#include "util/result.h"

namespace qs {

class ThreadPool;

inline constexpr int kMxfp6Block = 32;
inline constexpr double kMxfp6BitsPerWeight = 6.25;

std::uint8_t f32_to_e3m2(float x);  // RNE, saturating at +-28; code = sign << 5 | magnitude
float e3m2_to_f32(std::uint8_t code);

// out = dequantize(quantize(w)) for w [rows, cols]; rows not whole blocks are
// Unsupported, NaN/Inf weights Invalid.
Result<void> fake_quantize_mxfp6(const float* w, std::int64_t rows, std::int64_t cols, float* out,
                                 ThreadPool* pool = nullptr);

}  // namespace qs
