#pragma once
namespace qs {
// Registers the "cuda" device (core/calib/device.h): the CUDA backend and
// forward runner; call once at start-up.
void register_cuda_device();
}  // namespace qs
