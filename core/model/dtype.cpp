#include "model/dtype.h"

#include <array>
#include <utility>

namespace qs {
namespace {
struct DTypeRow {
  DType type;
  std::string_view name;
  unsigned bits;
};
constexpr std::array<DTypeRow, 17> kRows{{
    {DType::F32, "F32", 32},     {DType::F16, "F16", 16},         {DType::BF16, "BF16", 16},
    {DType::F64, "F64", 64},     {DType::I8, "I8", 8},            {DType::U8, "U8", 8},
    {DType::I16, "I16", 16},     {DType::U16, "U16", 16},         {DType::I32, "I32", 32},
    {DType::U32, "U32", 32},     {DType::I64, "I64", 64},         {DType::U64, "U64", 64},
    {DType::BOOL, "BOOL", 8},    {DType::F8_E4M3, "F8_E4M3", 8},  {DType::F8_E5M2, "F8_E5M2", 8},
    {DType::F8_E8M0, "F8_E8M0", 8}, {DType::F4, "F4", 4},
}};
}  // namespace

unsigned dtype_bits(DType t) {
  for (const auto& r : kRows)
    if (r.type == t) return r.bits;
  return 0;
}

std::string_view dtype_name(DType t) {
  for (const auto& r : kRows)
    if (r.type == t) return r.name;
  return "unknown";
}

std::optional<DType> dtype_from_safetensors(std::string_view name) {
  for (const auto& r : kRows)
    if (r.name == name) return r.type;
  return std::nullopt;
}

bool dtype_is_float_convertible(DType t) {
  switch (t) {
    case DType::F32: case DType::F16: case DType::BF16: case DType::F64:
    case DType::I8: case DType::U8: case DType::I16: case DType::U16: case DType::I32:
    case DType::F8_E4M3: case DType::F8_E5M2:
      return true;
    default:
      return false;
  }
}

}  // namespace qs
