#pragma once
// StagingDir: an output directory written under a temporary sibling name and
// renamed into place on commit(); destroyed uncommitted, it is removed, so a
// failed or cancelled export leaves nothing behind and never half-fills the
// target. The target must not exist or be an empty directory.
#include <filesystem>
#include <string>

#include "util/result.h"

namespace qs {

class StagingDir {
 public:
  static Result<StagingDir> create(const std::filesystem::path& target);
  StagingDir(StagingDir&& o) noexcept;
  StagingDir& operator=(StagingDir&&) = delete;
  ~StagingDir();
  const std::filesystem::path& path() const { return temp_; }
  Result<void> commit();

 private:
  StagingDir(std::filesystem::path target, std::filesystem::path temp) : target_(std::move(target)), temp_(std::move(temp)) {}
  std::filesystem::path target_, temp_;
  int slot_ = -1;  // temp_registry's
};

// Writes a small text file atomically (AtomicFile).
Result<void> write_text_file(const std::filesystem::path& path, const std::string& text);

}  // namespace qs
