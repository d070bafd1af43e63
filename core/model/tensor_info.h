#pragma once
// TensorInfo: what a reader knows about one tensor after reading headers only.
// The bytes are a view into a memory map kept alive by the shared pointer.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "model/dtype.h"
#include "util/mapped_file.h"

namespace qs {

struct TensorInfo {
  std::string name;
  std::vector<std::int64_t> shape;  // row-major; for weights [out_features, in_features]
  DType dtype = DType::Unknown;
  std::shared_ptr<const MappedFile> file;  // the mapping these bytes live in
  std::uint64_t offset = 0;                // absolute byte offset in `file`
  std::uint64_t nbytes = 0;
  // Keras kernels are stored with the output channel as the last (fastest)
  // axis: Dense [in, out], Conv2D [kh, kw, in, out]. `shape` is still given in
  // our convention (out first); this flag says the bytes are the transpose.
  bool channels_last = false;

  std::uint64_t numel() const {
    std::uint64_t n = 1;
    for (auto d : shape) n *= static_cast<std::uint64_t>(d);
    return n;
  }
  std::span<const std::byte> bytes() const {
    return file ? file->bytes().subspan(offset, nbytes) : std::span<const std::byte>{};
  }
  // Rows x cols view for channel statistics: rows are the output channels
  // (shape[0]), columns everything else; a 1-D tensor is 1 x n.
  std::int64_t rows() const { return shape.size() >= 2 ? shape[0] : 1; }
  std::int64_t cols() const;
  std::string shape_string() const;
  // "FILE: NAME" (the file its bytes are in), for messages about its values:
  // a NaN or a bad shape is in that file, which the message must name.
  std::string where() const;
};

}  // namespace qs
