#pragma once
// Free space, checked before an export starts writing: a 7B export that dies
// at 90 % with "No space left on device" wastes minutes; this fails at once
// and says how much is needed and available where.
#include <cstdint>
#include <string>

#include "util/result.h"

namespace qs {

// Fails when the file system holding `path` (a file to be created or a
// directory) has fewer than `bytes` (+ 16 MiB of slack) available.
Result<void> ensure_free_space(const std::string& path, std::uint64_t bytes);

}  // namespace qs
