#pragma once
// The memory a single allocation decided by a file may take. A file can
// declare any size (a sparse 64 GiB tensor, a 4 TiB Hessian, an HDF5 dataset
// compressed from nothing); what it declares is checked against this before
// anything is allocated, and refused with the figures and the file's name.
// Default: 90 % of this machine's physical memory; $QS_MEMORY_BUDGET sets it
// ("8G", "512M", "1T" or bytes) for a user who shares the machine.
#include <cstdint>
#include <string>

#include "util/result.h"

namespace qs {

std::uint64_t memory_budget();

// Ok when `bytes` fits the budget; otherwise Unsupported: "<what> needs N MiB,
// more than the memory budget of M MiB (QS_MEMORY_BUDGET)". `what` names the
// file and the thing ("m.safetensors: tensor w as F32").
Result<void> check_memory(double bytes, const std::string& what);

}  // namespace qs
