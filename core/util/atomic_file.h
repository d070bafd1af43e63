#pragma once
// AtomicFile: write to a temporary sibling, fsync, rename over the target on
// commit(). Destroying it uncommitted removes the temporary, so a failed or
// cancelled write leaves nothing behind and never truncates an existing file.
#include <cstddef>
#include <string>

#include "util/result.h"

namespace qs {

class AtomicFile {
 public:
  static Result<AtomicFile> create(const std::string& target_path);
  AtomicFile(AtomicFile&& other) noexcept;
  AtomicFile& operator=(AtomicFile&&) = delete;
  AtomicFile(const AtomicFile&) = delete;
  ~AtomicFile();

  Result<void> write(const void* data, std::size_t size);
  Result<void> commit();  // fsync + rename; the object is spent afterwards
  const std::string& target() const { return target_; }
  // The file being written (readable before commit, e.g. to verify it).
  const std::string& temp_path() const { return temp_; }

 private:
  AtomicFile(std::string target, std::string temp, int fd) : target_(std::move(target)), temp_(std::move(temp)), fd_(fd) {}
  std::string target_;
  std::string temp_;
  int fd_ = -1;
};

}  // namespace qs
