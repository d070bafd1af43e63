#pragma once
// AtomicFile: write to a temporary sibling, fsync, rename over the target on
// commit(). Destroying it uncommitted removes the temporary, so a failed or
// cancelled write leaves nothing behind and never truncates an existing file.
// Every file QuantScope writes goes through it: a target that exists and is
// not a regular file (device, FIFO, socket, directory) is refused at create().
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "util/result.h"

namespace qs {

// Whether `target_path` may be replaced: nothing there, or a regular file.
Result<void> check_replaceable(const std::string& target_path);

class AtomicFile {
 public:
  static Result<AtomicFile> create(const std::string& target_path);
  AtomicFile(AtomicFile&& other) noexcept;
  AtomicFile& operator=(AtomicFile&&) = delete;
  AtomicFile(const AtomicFile&) = delete;
  ~AtomicFile();

  Result<void> write(const void* data, std::size_t size);
  Result<void> commit();  // fsync + rename; the object is spent afterwards

  // From here on, writes bypass the page cache (O_DIRECT, through an aligned
  // staging buffer; the tail is padded and truncated at commit) where the file
  // system takes it; false (and plain writes) where it does not. For large
  // streamed files: on this VM, filling fresh page-cache pages cost more CPU
  // than quantizing to Q8_0. Call before writing anything else after it.
  bool use_direct_io();
  bool direct_io() const { return direct_ != nullptr; }
  // Puts everything written so far into the file (the direct writes' staging
  // buffer), so that it can be read back before commit; plain writes after it.
  Result<void> flush();
  const std::string& target() const { return target_; }
  // The file being written (readable before commit, e.g. to verify it).
  const std::string& temp_path() const { return temp_; }

 private:
  AtomicFile(std::string target, std::string temp, int fd) : target_(std::move(target)), temp_(std::move(temp)), fd_(fd) {}
  struct Direct;
  struct DirectDeleter {
    void operator()(Direct* d) const;
  };
  Result<void> flush_direct(bool last);
  std::string target_;
  std::string temp_;
  int fd_ = -1;
  int slot_ = -1;  // temp_registry's: the temporary is removed if a signal ends the process
  std::unique_ptr<Direct, DirectDeleter> direct_;
};

}  // namespace qs
