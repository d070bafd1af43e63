#pragma once
#include <cstddef>
#include <string>

#include "util/result.h"

namespace qs {
// Reads a small text file (JSON configs, indexes). Files over `max_bytes` are
// refused before anything is allocated.
Result<std::string> read_text_file(const std::string& path, std::size_t max_bytes);
}  // namespace qs
