#pragma once
// HDF5 prints its error stack to stderr by default; we silence that and turn
// the stack into one readable line for our own error messages.
#include <mutex>
#include <string>

namespace qs::h5 {

// Turns HDF5's automatic error printing off (once per process).
void silence_errors();
// The current HDF5 error stack as "function: description; ..." (innermost last), and clears it.
std::string take_error_stack();
// HDF5 calls are serialised: the Debian build may not be thread-safe.
std::mutex& library_mutex();

}  // namespace qs::h5
