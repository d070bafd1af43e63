#pragma once
// GgufWriter: lays out a GGUF v3 file (metadata, tensor infos, aligned data
// offsets) and serialises everything up to the data section, so that an
// exporter can then stream the tensors one at a time (docs/formats.md 2.1-2.4).
// It holds no tensor data: peak memory stays one tensor, whatever the model.
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "io/gguf.h"
#include "model/dtype.h"
#include "util/result.h"

namespace qs {

class AtomicFile;

struct GgufTensorLayout {
  std::string name;
  std::vector<std::int64_t> shape;  // our convention (rows first); written as ggml ne (reversed)
  DType dtype = DType::F32;
  std::uint64_t offset = 0;  // relative to the data section, a multiple of the alignment
  std::uint64_t nbytes = 0;
};

class GgufWriter {
 public:
  explicit GgufWriter(std::uint64_t alignment = 32) : alignment_(alignment) {}

  // Adds a key, or replaces it; a replaced key moves to the end, as ggml's
  // gguf_set_val does (so files match what llama.cpp writes). Array values
  // may view bytes of a source file: it must outlive header().
  void set(std::string key, GgufValue value);
  void set_u32(std::string key, std::uint32_t v);
  void set_i32(std::string key, std::int32_t v);
  void set_string(std::string key, std::string v);
  void remove(std::string_view key);
  const GgufValue* find(std::string_view key) const;

  // Appends a tensor at the next aligned offset. Checks what a reader checks:
  // name length, dimensions, a type ggml has, whole blocks per row, no overflow.
  Result<void> add_tensor(std::string name, std::vector<std::int64_t> shape, DType dtype);

  const std::vector<GgufTensorLayout>& tensors() const { return tensors_; }
  std::uint64_t alignment() const { return alignment_; }
  // Bytes of the data section (every tensor padded to the alignment).
  std::uint64_t data_bytes() const { return data_bytes_; }

  // Magic, version, counts, metadata, tensor infos, then zeros up to the
  // alignment: the bytes before the first tensor.
  Result<std::string> header() const;

  // Writes one tensor's bytes (exactly its nbytes) and the zero padding after it.
  static Result<void> write_tensor(AtomicFile& out, const GgufTensorLayout& t, std::span<const std::byte> bytes,
                                   std::uint64_t alignment);

 private:
  std::uint64_t alignment_;
  std::vector<std::pair<std::string, GgufValue>> metadata_;
  std::vector<GgufTensorLayout> tensors_;
  std::uint64_t data_bytes_ = 0;
};

}  // namespace qs
