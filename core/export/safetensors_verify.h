#pragma once
// Read-back verification of a written safetensors file, before it is moved
// into place: our reader must find exactly the tensors written (names, dtypes,
// shapes) and, for each, the bytes the exporter handed to the writer, by
// content hash (export/content_hash.h). The data is read past the page cache
// where the file system allows (util/direct_read.h): what is on the disk.
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "model/dtype.h"
#include "util/result.h"

namespace qs {

struct WrittenTensor {
  std::string name;
  DType dtype = DType::Unknown;
  std::vector<std::int64_t> shape;
  std::uint64_t hash = 0;  // content_hash of the bytes given to the writer
};

// Called with each tensor's bytes as read back, once its hash matched, in
// file order; `index` is its place in `expected`. The span lasts for the call.
// For checks on the decoded values (the per-layer error of what the file holds).
using ReadBackVisitor = std::function<Result<void>(std::size_t index, std::span<const std::byte> bytes)>;

// `path`: the file to read (a staged one); `label`: how messages name it (its
// destination). A failure names the file and the tensor.
Result<void> verify_safetensors_written(const std::string& path, const std::string& label,
                                        const std::vector<WrittenTensor>& expected, const ReadBackVisitor& visit = {});

}  // namespace qs
