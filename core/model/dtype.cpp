#include "model/dtype.h"

#include <array>

namespace qs {
namespace {

struct DTypeRow {
  DType type;
  std::string_view name;
  unsigned block_elems, block_bytes;
  bool safetensors;  // a safetensors dtype string
  int ggml;          // ggml type id, -1 if none
};

// ggml ids and block geometry: ggml.h / ggml-common.h (docs/formats.md 2.8).
constexpr std::array<DTypeRow, 42> kRows{{
    {DType::F32, "F32", 1, 4, true, 0},
    {DType::F16, "F16", 1, 2, true, 1},
    {DType::BF16, "BF16", 1, 2, true, 30},
    {DType::F64, "F64", 1, 8, true, 28},
    {DType::I8, "I8", 1, 1, true, 24},
    {DType::U8, "U8", 1, 1, true, -1},
    {DType::I16, "I16", 1, 2, true, 25},
    {DType::U16, "U16", 1, 2, true, -1},
    {DType::I32, "I32", 1, 4, true, 26},
    {DType::U32, "U32", 1, 4, true, -1},
    {DType::I64, "I64", 1, 8, true, 27},
    {DType::U64, "U64", 1, 8, true, -1},
    {DType::BOOL, "BOOL", 1, 1, true, -1},
    {DType::F8_E4M3, "F8_E4M3", 1, 1, true, -1},
    {DType::F8_E5M2, "F8_E5M2", 1, 1, true, -1},
    {DType::F8_E8M0, "F8_E8M0", 1, 1, true, -1},
    {DType::F4, "F4", 2, 1, true, -1},
    {DType::Q4_0, "Q4_0", 32, 18, false, 2},
    {DType::Q4_1, "Q4_1", 32, 20, false, 3},
    {DType::Q5_0, "Q5_0", 32, 22, false, 6},
    {DType::Q5_1, "Q5_1", 32, 24, false, 7},
    {DType::Q8_0, "Q8_0", 32, 34, false, 8},
    {DType::Q8_1, "Q8_1", 32, 36, false, 9},
    {DType::Q2_K, "Q2_K", 256, 84, false, 10},
    {DType::Q3_K, "Q3_K", 256, 110, false, 11},
    {DType::Q4_K, "Q4_K", 256, 144, false, 12},
    {DType::Q5_K, "Q5_K", 256, 176, false, 13},
    {DType::Q6_K, "Q6_K", 256, 210, false, 14},
    {DType::Q8_K, "Q8_K", 256, 292, false, 15},
    {DType::IQ2_XXS, "IQ2_XXS", 256, 66, false, 16},
    {DType::IQ2_XS, "IQ2_XS", 256, 74, false, 17},
    {DType::IQ3_XXS, "IQ3_XXS", 256, 98, false, 18},
    {DType::IQ1_S, "IQ1_S", 256, 50, false, 19},
    {DType::IQ4_NL, "IQ4_NL", 32, 18, false, 20},
    {DType::IQ3_S, "IQ3_S", 256, 110, false, 21},
    {DType::IQ2_S, "IQ2_S", 256, 82, false, 22},
    {DType::IQ4_XS, "IQ4_XS", 256, 136, false, 23},
    {DType::IQ1_M, "IQ1_M", 256, 56, false, 29},
    {DType::TQ1_0, "TQ1_0", 256, 54, false, 34},
    {DType::TQ2_0, "TQ2_0", 256, 66, false, 35},
    {DType::MXFP4, "MXFP4", 32, 17, false, 39},
    {DType::Unknown, "unknown", 1, 0, false, -1},
}};

const DTypeRow& row(DType t) {
  for (const auto& r : kRows)
    if (r.type == t) return r;
  return kRows.back();
}

}  // namespace

std::string_view dtype_name(DType t) { return row(t).name; }
unsigned dtype_block_elems(DType t) { return row(t).block_elems; }
unsigned dtype_block_bytes(DType t) { return row(t).block_bytes; }
bool dtype_is_block_quantized(DType t) { return row(t).block_elems >= 32; }

unsigned dtype_bits(DType t) {
  const auto& r = row(t);
  if (r.block_bytes == 0 || dtype_is_block_quantized(t)) return 0;
  return r.block_bytes * 8 / r.block_elems;
}

std::optional<std::uint64_t> dtype_bytes(DType t, std::uint64_t count) {
  const auto& r = row(t);
  if (r.block_bytes == 0 || count % r.block_elems != 0) return std::nullopt;
  std::uint64_t out;
  if (__builtin_mul_overflow(count / r.block_elems, static_cast<std::uint64_t>(r.block_bytes), &out)) return std::nullopt;
  return out;
}

std::optional<DType> dtype_from_safetensors(std::string_view name) {
  for (const auto& r : kRows)
    if (r.safetensors && r.name == name) return r.type;
  return std::nullopt;
}

std::optional<DType> dtype_from_ggml(std::uint32_t id) {
  for (const auto& r : kRows)
    if (r.ggml >= 0 && static_cast<std::uint32_t>(r.ggml) == id) return r.type;
  return std::nullopt;
}

std::optional<std::uint32_t> dtype_ggml_id(DType t) {
  for (const auto& r : kRows)
    if (r.type == t && r.ggml >= 0) return static_cast<std::uint32_t>(r.ggml);
  return std::nullopt;
}

bool dtype_is_float_convertible(DType t) {
  switch (t) {
    case DType::F32: case DType::F16: case DType::BF16: case DType::F64:
    case DType::I8: case DType::U8: case DType::I16: case DType::U16: case DType::I32:
    case DType::F8_E4M3: case DType::F8_E5M2:
    case DType::Q4_0: case DType::Q4_1: case DType::Q5_0: case DType::Q5_1: case DType::Q8_0:
    case DType::Q2_K: case DType::Q3_K: case DType::Q4_K: case DType::Q5_K: case DType::Q6_K:
    case DType::IQ4_NL:
      return true;
    default:
      return false;
  }
}

}  // namespace qs
