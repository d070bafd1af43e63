#include "util/atomic_file.h"

#include "util/file_kind.h"
#include "util/temp_registry.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <algorithm>
#include <cstring>
#include <filesystem>
#include <vector>

namespace qs {

Result<void> check_replaceable(const std::string& target_path) {
  // The rename would put a file where a device, FIFO, socket or directory was (as root, /dev/null itself).
  if (const std::string kind = non_regular_kind(target_path); !kind.empty())
    return Error::invalid(target_path + ": not a regular file (" + kind +
                          "); QuantScope writes only over regular files: choose another output path");
  return {};
}

Result<AtomicFile> AtomicFile::create(const std::string& target_path) {
  namespace fs = std::filesystem;
  if (auto r = check_replaceable(target_path); !r) return r.error();
  const fs::path target(target_path);
  const fs::path dir = target.has_parent_path() ? target.parent_path() : fs::path(".");
  remove_stale_temps(target_path);  // of an earlier run that was killed outright
  std::string templ = temp_prefix_for(target_path) + "XXXXXX";  // ".NAME.tmp-PID-XXXXXX"
  std::vector<char> buf(templ.begin(), templ.end());
  buf.push_back('\0');
  const int fd = ::mkstemp(buf.data());
  if (fd < 0) return Error::io(target_path + ": cannot create a temporary file in " + dir.string() + ": " + std::strerror(errno));
  ::fchmod(fd, 0644);
  AtomicFile f(target_path, std::string(buf.data()), fd);
  f.slot_ = register_temp(f.temp_, false);  // removed if a signal ends the process mid-write
  return f;
}

// The O_DIRECT side: a second descriptor on the temporary file, and a staging
// buffer aligned for it; `offset` is where the buffer's first byte goes.
struct AtomicFile::Direct {
  static constexpr std::size_t kAlign = 4096, kCapacity = std::size_t{8} << 20;
  int fd = -1;
  std::byte* buffer = nullptr;
  std::size_t fill = 0;
  std::uint64_t offset = 0;
};

void AtomicFile::DirectDeleter::operator()(Direct* d) const {
  if (d->fd >= 0) ::close(d->fd);
  std::free(d->buffer);
  delete d;
}

bool AtomicFile::use_direct_io() {
  if (fd_ < 0 || direct_) return direct_ != nullptr;
  const off_t at = ::lseek(fd_, 0, SEEK_CUR);
  if (at < 0) return false;
  std::unique_ptr<Direct, DirectDeleter> d(new Direct);
  d->fd = ::open(temp_.c_str(), O_WRONLY | O_DIRECT | O_CLOEXEC);
  d->buffer = static_cast<std::byte*>(std::aligned_alloc(Direct::kAlign, Direct::kCapacity));
  if (d->fd < 0 || !d->buffer) return false;  // e.g. tmpfs: no O_DIRECT
  // Direct writes start at an aligned offset: what was written before that
  // (a header) is taken back into the buffer.
  d->offset = static_cast<std::uint64_t>(at) / Direct::kAlign * Direct::kAlign;
  d->fill = static_cast<std::size_t>(at - static_cast<off_t>(d->offset));
  if (d->fill > 0 && ::pread(fd_, d->buffer, d->fill, static_cast<off_t>(d->offset)) != static_cast<ssize_t>(d->fill))
    return false;
  direct_ = std::move(d);
  return true;
}

// Writes the staging buffer: whole when full; at the end padded to the
// alignment, then the file cut back to its true size. A file system that
// refuses the direct write (EINVAL) gets the same bytes through the plain
// descriptor, and plain writes from then on.
Result<void> AtomicFile::flush_direct(bool last) {
  Direct& d = *direct_;
  std::size_t n = d.fill;
  if (last) {
    n = (d.fill + Direct::kAlign - 1) / Direct::kAlign * Direct::kAlign;
    std::memset(d.buffer + d.fill, 0, n - d.fill);
  }
  std::size_t done = 0;
  bool plain = false;
  while (done < n) {
    const int fd = plain ? fd_ : d.fd;
    const ssize_t w = ::pwrite(fd, d.buffer + done, n - done, static_cast<off_t>(d.offset + done));
    if (w < 0 && errno == EINTR) continue;
    if (w < 0 && errno == EINVAL && !plain) {
      plain = true;
      continue;
    }
    if (w <= 0) return Error::io(target_ + ": write failed: " + std::strerror(errno));
    done += static_cast<std::size_t>(w);
  }
  const std::uint64_t end = d.offset + d.fill;
  d.offset += n;
  d.fill = 0;
  if (last && ::ftruncate(fd_, static_cast<off_t>(end)) != 0)
    return Error::io(target_ + ": cannot set the file size: " + std::strerror(errno));
  if (plain || last) {  // back to plain writes at the end of the data
    if (::lseek(fd_, static_cast<off_t>(last ? end : d.offset), SEEK_SET) < 0)
      return Error::io(target_ + ": seek failed: " + std::strerror(errno));
    direct_.reset();
  }
  return {};
}

Result<void> AtomicFile::flush() {
  if (fd_ < 0) return Error::io(target_ + ": flush after commit");
  return direct_ ? flush_direct(true) : Result<void>{};
}

AtomicFile::AtomicFile(AtomicFile&& other) noexcept
    : target_(std::move(other.target_)), temp_(std::move(other.temp_)), fd_(other.fd_), slot_(other.slot_),
      direct_(std::move(other.direct_)) {
  other.fd_ = -1;
  other.slot_ = -1;
  other.temp_.clear();
}

AtomicFile::~AtomicFile() {
  if (fd_ >= 0) ::close(fd_);
  if (!temp_.empty()) ::unlink(temp_.c_str());
  unregister_temp(slot_);
}

Result<void> AtomicFile::write(const void* data, std::size_t size) {
  if (fd_ < 0) return Error::io(target_ + ": write after commit");
  if (direct_) {
    const auto* src = static_cast<const std::byte*>(data);
    while (size > 0) {
      Direct& d = *direct_;
      const std::size_t n = std::min(size, Direct::kCapacity - d.fill);
      std::memcpy(d.buffer + d.fill, src, n);
      d.fill += n;
      src += n;
      size -= n;
      if (d.fill == Direct::kCapacity) {
        if (auto r = flush_direct(false); !r) return r;
        if (!direct_) return write(src, size);  // the file system refused: plain writes
      }
    }
    return {};
  }
  const char* p = static_cast<const char*>(data);
  while (size > 0) {
    const ssize_t n = ::write(fd_, p, size);
    if (n < 0) {
      if (errno == EINTR) continue;
      return Error::io(target_ + ": write failed: " + std::strerror(errno));
    }
    p += n;
    size -= static_cast<std::size_t>(n);
  }
  return {};
}

Result<void> AtomicFile::commit() {
  if (fd_ < 0) return Error::io(target_ + ": already committed");
  if (auto r = flush(); !r) return r;
  if (::fsync(fd_) != 0) return Error::io(target_ + ": fsync failed: " + std::strerror(errno));
  if (::close(fd_) != 0) {
    fd_ = -1;
    return Error::io(target_ + ": close failed: " + std::strerror(errno));
  }
  fd_ = -1;
  if (::rename(temp_.c_str(), target_.c_str()) != 0)
    return Error::io(target_ + ": cannot rename the temporary file into place: " + std::strerror(errno));
  temp_.clear();
  unregister_temp(slot_);
  slot_ = -1;
  return {};
}

}  // namespace qs
