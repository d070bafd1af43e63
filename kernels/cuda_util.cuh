#pragma once
// Helpers every .cu file of the CUDA backend uses: error strings, element
// loads, owned device arrays, grid sizes, and cuBLAS / cuSOLVER status text.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <string>

#include "cuda_ops.h"

namespace qs::cuda::detail {

constexpr int kThreads = 256;

inline std::string check(cudaError_t e, const char* what) {
  if (e == cudaSuccess) return {};
  return std::string(what) + ": " + cudaGetErrorString(e);
}

__device__ __forceinline__ float load_elem(const void* p, ElemType t, std::uint64_t i) {
  switch (t) {
    case ElemType::F16: return __half2float(static_cast<const __half*>(p)[i]);
    case ElemType::BF16: return __uint_as_float(static_cast<unsigned>(static_cast<const unsigned short*>(p)[i]) << 16);
    default: return static_cast<const float*>(p)[i];
  }
}

template <class T>
struct DeviceArray {
  T* p = nullptr;
  DeviceArray() = default;
  DeviceArray(const DeviceArray&) = delete;
  DeviceArray& operator=(const DeviceArray&) = delete;
  ~DeviceArray() { reset(); }
  void reset() {
    if (p) cudaFree(p);
    p = nullptr;
  }
  std::string alloc(std::size_t n) {
    reset();
    const cudaError_t e = cudaMalloc(&p, std::max<std::size_t>(n, 1) * sizeof(T));
    if (e != cudaSuccess) {
      p = nullptr;
      cudaGetLastError();  // not sticky: clear it, or the next launch check would report it
    }
    return check(e, "cudaMalloc");
  }
  std::string upload(const T* host, std::size_t n) {
    return check(cudaMemcpy(p, host, n * sizeof(T), cudaMemcpyHostToDevice), "cudaMemcpy to device");
  }
  std::string download(T* host, std::size_t n) const {
    return check(cudaMemcpy(host, p, n * sizeof(T), cudaMemcpyDeviceToHost), "cudaMemcpy to host");
  }
};

// Blocks for a grid-stride loop over n items of `per_block` each: enough to fill the device, no more.
inline int grid_for(std::uint64_t n, std::uint64_t per_block = kThreads) {
  int dev = 0, sms = 80;
  cudaGetDevice(&dev);
  cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev);
  const std::uint64_t want = (n + per_block - 1) / per_block;
  return static_cast<int>(std::max<std::uint64_t>(1, std::min<std::uint64_t>(want, static_cast<std::uint64_t>(sms) * 8)));
}

}  // namespace qs::cuda::detail
