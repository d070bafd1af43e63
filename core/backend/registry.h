#pragma once
// Run-time backend choice: "auto" (CUDA when a device is present, else CPU),
// "cpu" or "cuda". The CUDA backend registers itself from kernels/ at start-up.
#include <functional>
#include <memory>
#include <string>

#include "backend/backend.h"

namespace qs {

// A factory returns nullptr (with a reason) when its device is not usable.
using BackendFactory = std::function<std::unique_ptr<Backend>(std::string& why_not)>;
void register_backend_factory(const std::string& name, BackendFactory factory);

// `choice`: "auto", "cpu" or "cuda"; empty means the QS_BACKEND environment
// variable, else "auto". Asking for "cuda" when it is unavailable is an error.
Result<std::shared_ptr<Backend>> make_backend(std::string choice = {});

// Why the CUDA backend was not chosen by "auto" (empty if it was or never registered).
std::string backend_fallback_reason();

// A process-wide CPU backend (for code without a chosen backend, and for fallbacks).
std::shared_ptr<Backend> cpu_backend();

}  // namespace qs
