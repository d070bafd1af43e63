#pragma once
// safetensors: header parsing (validated like the reference reader, with
// errors that name the file and the tensor), reading into TensorInfo views,
// and writing (reference layout, atomic).
#include <cstdint>
#include <functional>
#include <map>
#include <span>
#include <string>
#include <vector>

#include "model/tensor_info.h"
#include "util/result.h"

namespace qs {

struct SafetensorsEntry {
  std::string name;
  DType dtype = DType::Unknown;
  std::vector<std::int64_t> shape;
  std::uint64_t begin = 0;  // relative to the data area
  std::uint64_t end = 0;
};

struct SafetensorsHeader {
  std::vector<SafetensorsEntry> entries;  // sorted by data offset
  std::map<std::string, std::string> metadata;
  std::uint64_t data_start = 0;  // 8 + header length
};

// Largest header the reference reader accepts.
inline constexpr std::uint64_t kSafetensorsMaxHeader = 100'000'000;
// Most dimensions we accept for one tensor (real checkpoints use <= 5).
inline constexpr std::size_t kSafetensorsMaxDims = 16;

// Parses and validates the header of a whole safetensors file held in `file`
// (a memory map, or a buffer in tests and fuzzing). `label` (the path) starts
// every error message. Reads nothing beyond the header except the file size.
Result<SafetensorsHeader> parse_safetensors_header(std::span<const std::byte> file, const std::string& label);

struct SafetensorsFile {
  std::vector<TensorInfo> tensors;  // in offset order
  std::map<std::string, std::string> metadata;
};
// Memory-maps `path` and parses its header.
Result<SafetensorsFile> read_safetensors(const std::string& path);

// A tensor to write: bytes must be numel * dtype bits / 8 long.
struct SafetensorsWriteEntry {
  std::string name;
  DType dtype = DType::F32;
  std::vector<std::int64_t> shape;
  std::span<const std::byte> data;
};
// Writes in the reference writer's layout (sorted by dtype size then name,
// space-padded header, {"format":"pt"} metadata unless `metadata` is given),
// through a temporary file renamed into place.
Result<void> write_safetensors(const std::string& path, std::vector<SafetensorsWriteEntry> entries,
                               const std::map<std::string, std::string>& metadata = {{"format", "pt"}});

// Streaming variant: the header is laid out from names, dtypes and shapes
// alone, then `produce(i)` is asked for entry i's bytes, one entry at a time in
// file order (the same order as above), so that only one tensor need be in
// memory. The span must stay valid until the next call.
struct SafetensorsLayoutEntry {
  std::string name;
  DType dtype = DType::F32;
  std::vector<std::int64_t> shape;
};
using SafetensorsProducer = std::function<Result<std::span<const std::byte>>(std::size_t entry)>;
Result<void> write_safetensors_streaming(const std::string& path, const std::vector<SafetensorsLayoutEntry>& entries,
                                         const SafetensorsProducer& produce,
                                         const std::map<std::string, std::string>& metadata = {{"format", "pt"}});
// The size of the file write_safetensors_streaming writes for these entries, to the byte.
Result<std::uint64_t> safetensors_file_bytes(const std::vector<SafetensorsLayoutEntry>& entries,
                                             const std::map<std::string, std::string>& metadata = {{"format", "pt"}});

}  // namespace qs
