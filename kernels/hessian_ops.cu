// H += X^T X on the device: SSYRK into the lower triangle (column-major) of a
// device-resident F32 sum, mirrored into a full matrix when read. F32 products
// summed in F32 like the CPU's SGEMM (calib/activation_capture.cpp); PEDANTIC math keeps
// cuBLAS off TF32 whatever the environment says.
#include <cublas_v2.h>

#include "cuda_util.cuh"

namespace qs::cuda {
namespace {

using detail::check;
using detail::DeviceArray;

std::string cublas_check(cublasStatus_t s, const char* what) {
  if (s == CUBLAS_STATUS_SUCCESS) return {};
  return std::string(what) + ": cuBLAS status " + std::to_string(static_cast<int>(s));
}

// out (row-major, full) from the column-major lower triangle of h: element
// (a, b), a >= b, sits at h[a + b * n]; row-major (i, j) is out[i * n + j].
__global__ void mirror_lower_kernel(const float* h, std::uint64_t n, float* out) {
  const std::uint64_t total = n * n, stride = static_cast<std::uint64_t>(gridDim.x) * blockDim.x;
  for (std::uint64_t k = blockIdx.x * static_cast<std::uint64_t>(blockDim.x) + threadIdx.x; k < total; k += stride) {
    const std::uint64_t i = k / n, j = k % n;
    const std::uint64_t a = i > j ? i : j, b = i > j ? j : i;
    out[k] = h[a + b * n];
  }
}

}  // namespace

struct DeviceHessian::Impl {
  cublasHandle_t handle = nullptr;
  std::uint64_t cols = 0;
  DeviceArray<float> h, x;
  std::uint64_t x_capacity = 0;  // rows the x buffer holds
  ~Impl() {
    if (handle) cublasDestroy(handle);
  }
};

DeviceHessian::~DeviceHessian() { delete impl_; }

std::string DeviceHessian::init(std::uint64_t cols) {
  delete impl_;
  impl_ = new Impl;
  impl_->cols = cols;
  if (auto e = cublas_check(cublasCreate(&impl_->handle), "cublasCreate"); !e.empty()) return e;
  if (auto e = cublas_check(cublasSetMathMode(impl_->handle, CUBLAS_PEDANTIC_MATH), "cublasSetMathMode"); !e.empty())
    return e;
  if (auto e = impl_->h.alloc(cols * cols); !e.empty()) return e;
  return check(cudaMemset(impl_->h.p, 0, cols * cols * sizeof(float)), "cudaMemset");
}

std::string DeviceHessian::add(const float* x, std::uint64_t rows) {
  if (!impl_) return "DeviceHessian: not initialised";
  const std::uint64_t n = impl_->cols;
  // Slices of at most 2^28 elements (1 GiB) on the device; X^T X is the sum over slices.
  const std::uint64_t slice = std::max<std::uint64_t>(1, (std::uint64_t{1} << 28) / n);
  for (std::uint64_t r0 = 0; r0 < rows; r0 += slice) {
    const std::uint64_t m = std::min(slice, rows - r0);
    if (m > impl_->x_capacity) {
      impl_->x_capacity = 0;
      if (auto e = impl_->x.alloc(m * n); !e.empty()) return e;
      impl_->x_capacity = m;
    }
    if (auto e = impl_->x.upload(x + r0 * n, m * n); !e.empty()) return e;
    // Row-major X [m, n] is column-major X^T [n, m] with ld n, so
    // X^T X = A A^T with A that matrix: SSYRK, no transpose, k = m.
    const float one = 1.0f;
    if (auto e = cublas_check(cublasSsyrk(impl_->handle, CUBLAS_FILL_MODE_LOWER, CUBLAS_OP_N, static_cast<int>(n),
                                          static_cast<int>(m), &one, impl_->x.p, static_cast<int>(n), &one, impl_->h.p,
                                          static_cast<int>(n)),
                              "cublasSsyrk");
        !e.empty())
      return e;
  }
  return {};
}

std::string DeviceHessian::read(float* h) {
  if (!impl_) return "DeviceHessian: not initialised";
  const std::uint64_t n = impl_->cols;
  DeviceArray<float> full;
  if (auto e = full.alloc(n * n); !e.empty()) return e;
  mirror_lower_kernel<<<detail::grid_for(n * n), detail::kThreads>>>(impl_->h.p, n, full.p);
  if (auto e = check(cudaGetLastError(), "mirror launch"); !e.empty()) return e;
  return full.download(h, n * n);
}

}  // namespace qs::cuda
