#pragma once
// Element types found in checkpoints, with their safetensors names and sizes.
#include <cstdint>
#include <optional>
#include <string_view>

namespace qs {

enum class DType : std::uint8_t {
  F32, F16, BF16, F64,
  I8, U8, I16, U16, I32, U32, I64, U64, BOOL,
  F8_E4M3, F8_E5M2, F8_E8M0,
  F4,       // E2M1, two per byte
  Unknown,
};

// Size in bits of one element (4 for F4). 0 for Unknown.
unsigned dtype_bits(DType t);
std::string_view dtype_name(DType t);
// Parses a safetensors dtype string ("F16", "BF16", ...); nullopt when unknown.
std::optional<DType> dtype_from_safetensors(std::string_view name);
// True when convert_to_f32 can decode this type.
bool dtype_is_float_convertible(DType t);

}  // namespace qs
