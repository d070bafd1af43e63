#pragma once
// Element types found in checkpoints: plain types (safetensors names) and the
// ggml block-quantized types of GGUF files, with their storage geometry.
#include <cstdint>
#include <optional>
#include <string_view>

namespace qs {

enum class DType : std::uint8_t {
  // Plain element types.
  F32, F16, BF16, F64,
  I8, U8, I16, U16, I32, U32, I64, U64, BOOL,
  F8_E4M3, F8_E5M2, F8_E8M0,
  F4,  // E2M1, two per byte
  // ggml block types (GGUF): `block_elems` values stored in `block_bytes` bytes.
  Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q8_1,
  Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, Q8_K,
  IQ2_XXS, IQ2_XS, IQ3_XXS, IQ1_S, IQ4_NL, IQ3_S, IQ2_S, IQ4_XS, IQ1_M,
  TQ1_0, TQ2_0, MXFP4,
  Unknown,
};

std::string_view dtype_name(DType t);
// Elements per storage block (1 for plain types, 2 for F4, 32/256 for ggml blocks).
unsigned dtype_block_elems(DType t);
// Bytes per storage block (0 for Unknown).
unsigned dtype_block_bytes(DType t);
// Bits per element for plain types; 0 for block types and Unknown.
unsigned dtype_bits(DType t);
bool dtype_is_block_quantized(DType t);
// Bytes that `count` elements take; nullopt when count is not a whole number of
// blocks or the product overflows.
std::optional<std::uint64_t> dtype_bytes(DType t, std::uint64_t count);

// Parses a safetensors dtype string ("F16", "BF16", ...); nullopt when unknown.
std::optional<DType> dtype_from_safetensors(std::string_view name);
// The DType of a ggml type id from a GGUF file; nullopt for ids that are not
// valid in files (removed, internal-only, or newer than this table).
std::optional<DType> dtype_from_ggml(std::uint32_t ggml_type);
// The ggml type id of a DType, for writing GGUF; nullopt for types ggml lacks.
std::optional<std::uint32_t> dtype_ggml_id(DType t);
// True when convert_to_f32 can decode this type.
bool dtype_is_float_convertible(DType t);

}  // namespace qs
