#pragma once
// The CUDA forward runner behind core's ForwardRunner interface
// (core/calib/forward_runner.h), registered as "cuda".
#include "calib/forward_runner.h"
#include "llama_forward_ops.h"

namespace qs {

// Registers the "cuda" forward-runner factory; call once at start-up.
void register_cuda_forward_runner();

// For device-side consumers in kernels/ (Hessian accumulation): hands each
// linear input to `observer` as a device pointer instead of a host copy.
// False when `runner` is not a CUDA runner.
bool set_cuda_device_observer(ForwardRunner& runner, cuda::LlamaDeviceRunner::DeviceObserver observer);

}  // namespace qs
