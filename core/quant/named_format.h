#pragma once
// The element formats that are neither ggml blocks nor integer grids: NF4
// (with and without double quantization), FP8 E4M3/E5M2 (per tensor or per
// channel), MXFP4, NVFP4, and "keep 16-bit" (F16/BF16 rounding). One entry
// point quantizes and dequantizes a [rows, cols] weight with any of them, so
// measurement treats them alike.
#include <cstdint>

#include "util/result.h"

namespace qs {

class ThreadPool;

enum class NamedFormat { Nf4, Nf4Dq, Fp8E4M3, Fp8E4M3Ch, Fp8E5M2, Fp8E5M2Ch, Mxfp4, Nvfp4, F16, BF16 };

// Their names, labels and storage facts are rows of the format table (format_table.h).
// The row length must be a multiple of this (1: any).
int named_format_block(NamedFormat f);
// Exact storage cost: codes plus every scale, offset and tensor scale.
double named_format_bits_per_weight(NamedFormat f, std::int64_t rows, std::int64_t cols);
// Unsupported (with the reason) when a row is not whole blocks.
Result<void> check_named_format_shape(NamedFormat f, std::int64_t cols);

// Round-to-nearest quantization of w [rows, cols] and its dequantization into
// `deq` (rows * cols floats). NaN/Inf weights are an Invalid error.
Result<void> rtn_named_format(NamedFormat f, const float* w, std::int64_t rows, std::int64_t cols, float* deq,
                              ThreadPool* pool = nullptr);

}  // namespace qs
