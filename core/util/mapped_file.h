#pragma once
// A read-only memory map of a whole file. Opening a model maps its weight
// files and reads nothing but headers; pages come in when a tensor is used.
#include <cstddef>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "util/result.h"

namespace qs {

class MappedFile {
 public:
  static Result<std::shared_ptr<const MappedFile>> open(const std::string& path);
  // Bytes held in memory instead of a map (datasets that HDF5 stores chunked
  // or compressed have to be read); `label` names where they came from.
  static std::shared_ptr<const MappedFile> from_buffer(std::vector<std::byte> bytes, std::string label);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const std::string& path() const { return path_; }
  std::size_t size() const { return size_; }
  std::span<const std::byte> bytes() const { return {data_ptr(), size_}; }
  const std::byte* data() const { return data_ptr(); }
  // Lets the kernel drop the pages of [offset, offset + size) from this
  // process: a streaming pass (export, model-wide statistics) calls it behind
  // itself so its resident memory stays one tensor, not the whole file. The
  // bytes stay readable (clean file pages come back on the next touch).
  void release(std::size_t offset, std::size_t size) const;

 private:
  MappedFile() = default;
  const std::byte* data_ptr() const;
  std::string path_;
  const std::byte* data_ = nullptr;
  std::size_t size_ = 0;
  std::vector<std::byte> owned_;  // from_buffer() only
};

}  // namespace qs
