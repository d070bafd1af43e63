#include "util/disk_space.h"

#include <sys/statvfs.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

namespace qs {

Result<void> ensure_free_space(const std::string& path, std::uint64_t bytes) {
  namespace fs = std::filesystem;
  fs::path dir = fs::path(path);
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) dir = dir.has_parent_path() ? dir.parent_path() : fs::path(".");
  while (!dir.empty() && !fs::exists(dir, ec) && dir.has_parent_path() && dir != dir.parent_path()) dir = dir.parent_path();
  struct statvfs st {};
  if (::statvfs(dir.c_str(), &st) != 0) return Error::io(dir.string() + ": cannot read free space: " + std::strerror(errno));
  const std::uint64_t avail = static_cast<std::uint64_t>(st.f_bavail) * static_cast<std::uint64_t>(st.f_frsize);
  constexpr std::uint64_t kSlack = std::uint64_t{16} << 20;
  if (avail < bytes + kSlack) {
    auto mib = [](std::uint64_t b) { return std::to_string((b + (1u << 20) - 1) >> 20) + " MiB"; };
    return Error::io(path + ": needs " + mib(bytes) + " but only " + mib(avail) + " are free on " + dir.string());
  }
  return {};
}

}  // namespace qs
