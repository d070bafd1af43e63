#include "util/direct_read.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

namespace qs {
namespace {
constexpr std::uint64_t kAlign = 4096;
}

void DirectReader::Free::operator()(std::byte* p) const { std::free(p); }

Result<DirectReader> DirectReader::open(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_DIRECT | O_CLOEXEC);
  const bool direct = fd >= 0;
  if (!direct) fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);  // e.g. tmpfs: no O_DIRECT
  if (fd < 0) return Error::io(path + ": cannot open: " + std::strerror(errno));
  return DirectReader(path, fd, direct);
}

DirectReader::DirectReader(DirectReader&& other) noexcept
    : path_(std::move(other.path_)), fd_(other.fd_), direct_(other.direct_), buffer_(std::move(other.buffer_)),
      capacity_(other.capacity_) {
  other.fd_ = -1;
}

DirectReader::~DirectReader() {
  if (fd_ >= 0) ::close(fd_);
}

Result<std::span<const std::byte>> DirectReader::read(std::uint64_t offset, std::size_t size) {
  // Direct reads take whole aligned blocks: read the blocks around the range.
  const std::uint64_t first = direct_ ? offset / kAlign * kAlign : offset;
  const std::uint64_t end = direct_ ? (offset + size + kAlign - 1) / kAlign * kAlign : offset + size;
  const auto length = static_cast<std::size_t>(end - first);
  if (length > capacity_) {
    buffer_.reset(static_cast<std::byte*>(std::aligned_alloc(kAlign, (length + kAlign - 1) / kAlign * kAlign)));
    capacity_ = buffer_ ? length : 0;
    if (!buffer_) return Error::io(path_ + ": cannot allocate a read buffer of " + std::to_string(length) + " bytes");
  }
  const std::size_t need = static_cast<std::size_t>(offset + size - first);  // the blocks past the end may be short
  std::size_t got = 0;
  while (got < need) {
    const ssize_t n = ::pread(fd_, buffer_.get() + got, length - got, static_cast<off_t>(first + got));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EINVAL && direct_) {  // the file system refused after all: plain reads
      const int plain = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC);
      if (plain < 0) return Error::io(path_ + ": cannot open: " + std::strerror(errno));
      ::close(fd_);
      fd_ = plain;
      direct_ = false;
      return read(offset, size);
    }
    if (n < 0) return Error::io(path_ + ": read failed: " + std::strerror(errno));
    if (n == 0) return Error::io(path_ + ": " + std::to_string(offset + size) + " bytes expected, the file is shorter");
    got += static_cast<std::size_t>(n);
  }
  return std::span<const std::byte>(buffer_.get() + (offset - first), size);
}

}  // namespace qs
