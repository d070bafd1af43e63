#pragma once
// The CUDA forward runner behind core's ForwardRunner interface
// (core/calib/forward_runner.h); the CUDA device (cuda_device.h) makes it.
#include "calib/forward_runner.h"
#include "llama_forward_ops.h"

namespace qs {

// The forward pass of `model` on the current device with a cache of
// `capacity` positions, or nullptr with the reason (no device, too little memory).
std::unique_ptr<ForwardRunner> make_cuda_forward_runner(const LlamaModel& model, int capacity, std::string& why_not);

// For device-side consumers in kernels/ (Hessian accumulation): hands each
// linear input to `observer` as a device pointer instead of a host copy.
// False when `runner` is not a CUDA runner.
bool set_cuda_device_observer(ForwardRunner& runner, cuda::LlamaDeviceRunner::DeviceObserver observer);

}  // namespace qs
