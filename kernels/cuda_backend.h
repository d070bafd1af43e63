#pragma once
// The CUDA backend: core's Backend interface over the kernels in cuda_ops.h.
#include <memory>
#include <string>

#include "backend/backend.h"

namespace qs {
// The backend on the current CUDA device, or nullptr with the reason (no
// device, no driver).
std::shared_ptr<Backend> make_cuda_backend(std::string& why_not);
}  // namespace qs
