#pragma once
// The dtype conversion layer: everything that reads weights as numbers goes
// through here, so a new storage type is taught to the whole tool in one place.
#include <cstddef>
#include <cstdint>
#include <span>

#include "model/dtype.h"
#include "util/result.h"

namespace qs {

// Decodes `count` elements of type `t` starting at `src` into `dst` (F32).
// `src` needs no alignment. Block types (GGUF) need `count` to be a whole number
// of blocks starting at a block boundary. Fails for types dtype_is_float_convertible() rejects.
Result<void> convert_to_f32(DType t, const std::byte* src, std::size_t count, float* dst);

// Bulk F16/BF16 -> F32 (vectorised where the CPU allows).
void f16_to_f32_n(const std::uint16_t* src, std::size_t n, float* dst);
void bf16_to_f32_n(const std::uint16_t* src, std::size_t n, float* dst);

struct TensorInfo;
// Whether `copies` F32 copies of a whole tensor (what every quantizer takes;
// a measurement holds the dequantized one too) fit the memory budget
// (util/memory_budget.h): a file may declare a tensor far larger than memory.
// The error names the file and the tensor.
Result<void> check_f32_memory(const TensorInfo& t, int copies = 1);

float fp8_e4m3_to_f32(std::uint8_t v);
float fp8_e5m2_to_f32(std::uint8_t v);

}  // namespace qs
