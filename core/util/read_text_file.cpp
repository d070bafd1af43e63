#include "util/read_text_file.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>

#include "util/file_kind.h"

namespace qs {

Result<std::string> read_text_file(const std::string& path, std::size_t max_bytes) {
  // file_size refuses a FIFO or device, but says only "Operation not supported".
  if (const std::string kind = non_regular_kind(path); !kind.empty())
    return Error::io(path + ": not a regular file (" + kind + ")");
  std::error_code ec;
  const auto size = std::filesystem::file_size(path, ec);
  if (ec) return Error::io(path + ": " + ec.message());
  if (size > max_bytes)
    return Error::format(path + ": " + std::to_string(size) + " bytes, larger than the " + std::to_string(max_bytes) +
                         "-byte limit for this kind of file");
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> f(std::fopen(path.c_str(), "rb"), &std::fclose);
  if (!f) return Error::io(path + ": cannot open: " + std::strerror(errno));
  std::string text(size, '\0');
  if (size > 0 && std::fread(text.data(), 1, size, f.get()) != size) return Error::io(path + ": read failed");
  return text;
}

}  // namespace qs
