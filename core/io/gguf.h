#pragma once
// GGUF (llama.cpp's checkpoint format), versions 2 and 3: header, metadata and
// tensor infos, validated like the reference reader (docs/formats.md 2.1-2.4),
// with errors that name the file and the key or tensor.
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "model/tensor_info.h"
#include "util/result.h"

namespace qs {

enum class GgufType : std::uint32_t {
  U8 = 0, I8 = 1, U16 = 2, I16 = 3, U32 = 4, I32 = 5, F32 = 6, BOOL = 7,
  STRING = 8, ARRAY = 9, U64 = 10, I64 = 11, F64 = 12,
};
std::string_view gguf_type_name(GgufType t);

// An array value: the raw little-endian elements stay in the file's bytes;
// string arrays are indexed as views into them.
struct GgufArray {
  GgufType elem = GgufType::U8;
  std::uint64_t count = 0;
  std::span<const std::byte> raw;          // numeric arrays: count * element size bytes
  std::vector<std::string_view> strings;   // string arrays

  std::optional<double> number(std::uint64_t i) const;  // numeric element as double
};

struct GgufValue {
  GgufType type = GgufType::U8;
  std::variant<std::uint64_t, std::int64_t, double, bool, std::string, GgufArray> v;

  // Integer value of any integer type (nullopt for others or out of range).
  std::optional<std::int64_t> as_int() const;
  std::optional<double> as_number() const;  // any integer or float type
  const std::string* as_string() const { return std::get_if<std::string>(&v); }
  const GgufArray* as_array() const { return std::get_if<GgufArray>(&v); }
  std::string to_display_string(std::size_t max_items = 8) const;
};

struct GgufFile {
  std::uint32_t version = 3;
  std::uint64_t alignment = 32;
  std::uint64_t data_start = 0;
  std::vector<std::pair<std::string, GgufValue>> metadata;  // in file order
  std::vector<TensorInfo> tensors;                           // in file order; `file` set by read_gguf
  std::shared_ptr<const MappedFile> file;                    // keeps string views and tensor bytes alive

  const GgufValue* find(std::string_view key) const;
};

inline constexpr std::uint64_t kGgufMaxStringLength = std::uint64_t{1} << 30;
inline constexpr std::uint64_t kGgufMaxArrayCount = std::uint64_t{1} << 30;
inline constexpr std::size_t kGgufMaxTensorName = 63;  // GGML_MAX_NAME = 64 with the NUL
inline constexpr std::size_t kGgufMaxDims = 4;

// Parses a whole GGUF file held in `bytes`; `label` starts every error message.
// String views in the result point into `bytes`.
Result<GgufFile> parse_gguf(std::span<const std::byte> bytes, const std::string& label);
// Memory-maps `path` and parses it; tensors get byte views into the mapping.
Result<GgufFile> read_gguf(const std::string& path);

}  // namespace qs
