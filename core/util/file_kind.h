#pragma once
// What a path is when it is not a regular file: every reader and writer
// refuses those (a FIFO blocks an open, a device or directory is no file to
// read or replace) and says which it found.
#include <string>

namespace qs {

// "" when `path` does not exist or is a regular file; otherwise "a directory",
// "a FIFO", "a device" or "a socket or special file".
std::string non_regular_kind(const std::string& path);

}  // namespace qs
