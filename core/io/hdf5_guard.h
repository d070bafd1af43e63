#pragma once
// libhdf5 (1.10, Debian 12) is not safe on damaged files: it dereferences bad
// global-heap addresses (H5HG_read), loops in its metadata cache
// (H5C_protect) and allocates whatever a file declares. So every reader of an
// HDF5 file from outside reads it once in a child process first, under a time
// and memory limit; only when the child finished cleanly does this process read
// the file itself. A crash, hang or runaway allocation in the library becomes
// an error naming the file, not a dead CLI or GUI.
//
// The child is this same executable started afresh (posix_spawn of
// /proc/self/exe): a fork() of a threaded process runs OpenBLAS's fork handler,
// which can deadlock, and leaves every other library's locks as they were.
// A static constructor in this library recognises the child by its environment
// and runs the read before main(), so every program linking the readers (the
// GUI, the CLI, the tests) can be its own child.
#include <string>

#include "util/result.h"

namespace qs::h5 {

enum class VetKind { KerasModel, CalibrationFile, QuantizedCheckpoint };

// Ok when the child read `path` as `kind` to the end; the reader's own error
// when it refused the file; an error naming `path` when the child died, ran past
// its time or memory, or could not be started. Inside such a child: ok at once.
Result<void> vet_in_child(const std::string& path, VetKind kind);

}  // namespace qs::h5
