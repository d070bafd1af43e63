#pragma once
// The two FP4 (E2M1) block formats with hardware support:
//
// MXFP4 (OCP Microscaling Formats v1.0, sections 5 and 6.3): blocks of 32
// along the row, one E8M0 scale X = 2^e per block with
// e = floor(log2(amax)) - 2 (2 = emax of E2M1), clamped to the E8M0 range
// [-127, 127]; elements = RNE(x / X) on E2M1, saturating at +-6 (a block whose
// amax mantissa exceeds 1.5 loses its top to the clamp, as the spec's
// conversion does). 4 + 8/32 = 4.25 bits/weight.
//
// NVFP4 (NVIDIA TensorRT-Model-Optimizer NVFP4QTensor; Transformer Engine's
// nvfp4 recipe uses the same 6 * 448 factor): a F32 tensor scale
// g = amax_tensor / (6 * 448), blocks of 16 along the row with an FP8 E4M3
// scale s = E4M3(amax_block / (6 * g)) (RNE, saturating), elements =
// RNE(x / (s * g)) on E2M1. 4 + 8/16 = 4.5 bits/weight plus 32 bits per tensor.
//
// Codes are packed two per byte, element 2i in the low nibble (the OCP / ModelOpt order).
#include <cstdint>
#include <vector>

#include "util/result.h"

namespace qs {

class ThreadPool;

inline constexpr int kMxfp4Block = 32;
inline constexpr int kNvfp4Block = 16;

std::uint8_t f32_to_e2m1(float x);   // RNE, saturating at +-6; code = sign << 3 | magnitude
float e2m1_to_f32(std::uint8_t code);

struct Mxfp4Quantized {
  std::int64_t rows = 0, cols = 0;
  std::vector<std::uint8_t> packed;  // rows * cols / 2
  std::vector<std::uint8_t> scales;  // E8M0, rows * cols / 32: X = 2^(code - 127)
  double bits_per_weight() const { return 4.25; }
};

struct Nvfp4Quantized {
  std::int64_t rows = 0, cols = 0;
  std::vector<std::uint8_t> packed;  // rows * cols / 2
  std::vector<std::uint8_t> scales;  // E4M3, rows * cols / 16
  float tensor_scale = 1.0f;         // g
  double bits_per_weight() const;
};

double nvfp4_bits_per_weight(std::int64_t rows, std::int64_t cols);

// Rows not a multiple of the block are Unsupported; NaN/Inf weights Invalid.
Result<Mxfp4Quantized> quantize_mxfp4(const float* w, std::int64_t rows, std::int64_t cols, ThreadPool* pool = nullptr);
void dequantize_mxfp4_into(const Mxfp4Quantized& q, float* out);
Result<Nvfp4Quantized> quantize_nvfp4(const float* w, std::int64_t rows, std::int64_t cols, ThreadPool* pool = nullptr);
void dequantize_nvfp4_into(const Nvfp4Quantized& q, float* out);

}  // namespace qs
