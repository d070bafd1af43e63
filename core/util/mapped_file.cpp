#include "util/mapped_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace qs {

Result<std::shared_ptr<const MappedFile>> MappedFile::open(const std::string& path) {
  // O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer
  // forever; it is refused below as not a regular file (no effect on files).
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) return Error::io(path + ": cannot open: " + std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    const int e = errno;
    ::close(fd);
    return Error::io(path + ": cannot stat: " + std::strerror(e));
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    return Error::io(path + ": not a regular file");
  }
  std::shared_ptr<MappedFile> f(new MappedFile());
  f->path_ = path;
  f->size_ = static_cast<std::size_t>(st.st_size);
  if (f->size_ > 0) {
    void* p = ::mmap(nullptr, f->size_, PROT_READ, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) {
      const int e = errno;
      ::close(fd);
      return Error::io(path + ": cannot memory-map: " + std::strerror(e));
    }
    f->data_ = static_cast<const std::byte*>(p);
  }
  ::close(fd);  // the mapping keeps the file alive
  return std::shared_ptr<const MappedFile>(std::move(f));
}

void MappedFile::release(std::size_t offset, std::size_t size) const {
  if (!data_ || offset >= size_) return;  // buffers (from_buffer) stay as they are
  static const std::size_t page = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
  // Whole pages inside the range only: a neighbour tensor may share the edge pages.
  const std::size_t end = std::min(size_, offset + size);
  const std::size_t first = (offset + page - 1) / page * page, last = end / page * page;
  if (last > first) ::madvise(const_cast<std::byte*>(data_) + first, last - first, MADV_DONTNEED);
}

std::shared_ptr<const MappedFile> MappedFile::from_buffer(std::vector<std::byte> bytes, std::string label) {
  std::shared_ptr<MappedFile> f(new MappedFile());
  f->path_ = std::move(label);
  f->owned_ = std::move(bytes);
  f->size_ = f->owned_.size();
  return f;
}

const std::byte* MappedFile::data_ptr() const { return owned_.empty() ? data_ : owned_.data(); }

MappedFile::~MappedFile() {
  if (data_) ::munmap(const_cast<std::byte*>(data_), size_);
}

}  // namespace qs
