#include "util/atomic_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <vector>

namespace qs {

Result<AtomicFile> AtomicFile::create(const std::string& target_path) {
  namespace fs = std::filesystem;
  const fs::path target(target_path);
  const fs::path dir = target.has_parent_path() ? target.parent_path() : fs::path(".");
  std::string name = target.filename().string();
  name.insert(name.begin(), '.');  // (not "." + s: GCC 12 raises a false -Wrestrict there)
  name += ".tmp-XXXXXX";
  std::string templ = (dir / name).string();
  std::vector<char> buf(templ.begin(), templ.end());
  buf.push_back('\0');
  const int fd = ::mkstemp(buf.data());
  if (fd < 0) return Error::io(target_path + ": cannot create a temporary file in " + dir.string() + ": " + std::strerror(errno));
  ::fchmod(fd, 0644);
  return AtomicFile(target_path, std::string(buf.data()), fd);
}

AtomicFile::AtomicFile(AtomicFile&& other) noexcept
    : target_(std::move(other.target_)), temp_(std::move(other.temp_)), fd_(other.fd_) {
  other.fd_ = -1;
  other.temp_.clear();
}

AtomicFile::~AtomicFile() {
  if (fd_ >= 0) ::close(fd_);
  if (!temp_.empty()) ::unlink(temp_.c_str());
}

Result<void> AtomicFile::write(const void* data, std::size_t size) {
  if (fd_ < 0) return Error::io(target_ + ": write after commit");
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
  if (::fsync(fd_) != 0) return Error::io(target_ + ": fsync failed: " + std::strerror(errno));
  if (::close(fd_) != 0) {
    fd_ = -1;
    return Error::io(target_ + ": close failed: " + std::strerror(errno));
  }
  fd_ = -1;
  if (::rename(temp_.c_str(), target_.c_str()) != 0)
    return Error::io(target_ + ": cannot rename the temporary file into place: " + std::strerror(errno));
  temp_.clear();
  return {};
}

}  // namespace qs
