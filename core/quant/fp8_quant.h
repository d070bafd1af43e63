#pragma once
// FP8 weights (OCP E4M3FN and E5M2) with one F32 scale per tensor or per
// output channel, as FP8 checkpoints store them (weight_scale): scale =
// absmax / max_finite (448 for E4M3FN, 57344 for E5M2), codes = RNE(w / scale)
// with saturation to the largest finite value. Decoding reuses core/model's
// fp8_*_to_f32, the same decoder the readers use.
#include <cstdint>
#include <vector>

#include "util/result.h"

namespace qs {

class ThreadPool;

enum class Fp8Type { E4M3, E5M2 };

struct Fp8Spec {
  Fp8Type type = Fp8Type::E4M3;
  bool per_channel = false;  // one scale per row; else one per tensor
};

// RNE, saturating (never Inf, never the NaN code) for finite input; NaN in gives a NaN code.
std::uint8_t f32_to_fp8_e4m3(float x);
std::uint8_t f32_to_fp8_e5m2(float x);
float fp8_max_finite(Fp8Type t);  // 448 or 57344

struct Fp8Quantized {
  std::int64_t rows = 0, cols = 0;
  Fp8Spec spec;
  std::vector<std::uint8_t> codes;  // rows x cols
  std::vector<float> scales;        // 1 (per tensor) or rows
  // 8 bits per weight plus the F32 scales.
  double bits_per_weight() const;
};

double fp8_bits_per_weight(const Fp8Spec& spec, std::int64_t rows, std::int64_t cols);

// Rows in parallel; NaN/Inf weights are an Invalid error naming the first one.
Result<Fp8Quantized> quantize_fp8(const float* w, std::int64_t rows, std::int64_t cols, const Fp8Spec& spec,
                                  ThreadPool* pool = nullptr);
void dequantize_fp8_into(const Fp8Quantized& q, float* out);  // rows * cols floats

}  // namespace qs
