#pragma once
// DirectReader: byte ranges of a file read past the page cache (O_DIRECT into
// an aligned buffer) where the file system allows it, plain pread otherwise:
// for checking what a large export put on the disk without first filling
// hundreds of MiB of fresh page-cache pages (costly on VMs) with it.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>

#include "util/result.h"

namespace qs {

class DirectReader {
 public:
  static Result<DirectReader> open(const std::string& path);
  DirectReader(DirectReader&& other) noexcept;
  DirectReader& operator=(DirectReader&&) = delete;
  ~DirectReader();

  // The bytes [offset, offset + size): all of them, or an error (past the end
  // of the file too). The span stays valid until the next read.
  Result<std::span<const std::byte>> read(std::uint64_t offset, std::size_t size);
  bool direct() const { return direct_; }

 private:
  struct Free {
    void operator()(std::byte* p) const;
  };
  DirectReader(std::string path, int fd, bool direct) : path_(std::move(path)), fd_(fd), direct_(direct) {}
  std::string path_;
  int fd_ = -1;
  bool direct_ = false;
  std::unique_ptr<std::byte, Free> buffer_;
  std::size_t capacity_ = 0;
};

}  // namespace qs
