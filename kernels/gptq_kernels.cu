// GPTQ on the device, in the reference's formulation (gptq_walk.h):
//  1. the damped Hessian in walk order, reversed (M = J H_p J, the very matrix
//     core/quant/gptq.cpp factors), in F64;
//  2. M = L L^T (cuSOLVER DPOTRF), then L^-1 (cuBLAS DTRSM on I); since
//     H_p = (J L J)(J L J)^T, the upper Cholesky factor of H_p^-1 is
//     U = (J L J)^-1 = J L^-1 J, rounded to F32 for the walk;
//  3. per block of columns: the walk, one thread per row with the row's block
//     in shared memory, then W[:, i2:] -= Err U[i1:i2, i2:] (SGEMM, PEDANTIC
//     math: true F32, no TF32).
#include <cublas_v2.h>
#include <cusolverDn.h>

#include "cuda_util.cuh"
#include "gptq_walk.h"

namespace qs::cuda {
namespace {

using detail::check;
using detail::DeviceArray;
using detail::kThreads;
constexpr int kWalkThreads = 32;  // rows per thread block of the walk: more blocks, spread over more SMs

std::string cublas_check(cublasStatus_t s, const char* what) {
  if (s == CUBLAS_STATUS_SUCCESS) return {};
  return std::string(what) + ": cuBLAS status " + std::to_string(static_cast<int>(s));
}
std::string cusolver_check(cusolverStatus_t s, const char* what) {
  if (s == CUSOLVER_STATUS_SUCCESS) return {};
  return std::string(what) + ": cuSOLVER status " + std::to_string(static_cast<int>(s));
}

struct Handles {
  cublasHandle_t blas = nullptr;
  cusolverDnHandle_t solver = nullptr;
  ~Handles() {
    if (blas) cublasDestroy(blas);
    if (solver) cusolverDnDestroy(solver);
  }
};

// W in walk order with dead inputs zeroed: wd[r, p] = dead[perm[p]] ? 0 : w[r, perm[p]].
__global__ void gather_walk_kernel(const float* w, std::uint64_t rows, std::uint64_t n, const std::int32_t* perm,
                                   const std::uint8_t* dead, float* wd) {
  const std::uint64_t total = rows * n, stride = static_cast<std::uint64_t>(gridDim.x) * blockDim.x;
  for (std::uint64_t k = blockIdx.x * static_cast<std::uint64_t>(blockDim.x) + threadIdx.x; k < total; k += stride) {
    const std::uint64_t r = k / n, p = k % n;
    const std::int32_t c = perm[p];
    wd[k] = dead[c] ? 0.0f : w[r * n + static_cast<std::uint64_t>(c)];
  }
}

// m[i * n + j] = (J H_p J)(i, j) with the damped diagonal: the same memory as
// gptq.cpp's `hp`, whose column-major lower triangle its SPOTRF("L") reads.
__global__ void build_m_kernel(const float* h, std::uint64_t n, const std::int32_t* perm, const float* damped_diag,
                               double* m) {
  const std::uint64_t total = n * n, stride = static_cast<std::uint64_t>(gridDim.x) * blockDim.x;
  for (std::uint64_t k = blockIdx.x * static_cast<std::uint64_t>(blockDim.x) + threadIdx.x; k < total; k += stride) {
    const std::uint64_t i = k / n, j = k % n;
    const float v = i == j ? damped_diag[n - 1 - i]
                           : h[static_cast<std::uint64_t>(perm[n - 1 - i]) * n + static_cast<std::uint64_t>(perm[n - 1 - j])];
    m[k] = static_cast<double>(v);
  }
}

__global__ void identity_kernel(std::uint64_t n, double* a) {
  const std::uint64_t total = n * n, stride = static_cast<std::uint64_t>(gridDim.x) * blockDim.x;
  for (std::uint64_t k = blockIdx.x * static_cast<std::uint64_t>(blockDim.x) + threadIdx.x; k < total; k += stride)
    a[k] = k / n == k % n ? 1.0 : 0.0;
}

// U[i, j] (row-major, F32) = L^-1(n-1-i, n-1-j) on and above the diagonal,
// L^-1 column-major lower; zero below.
__global__ void reverse_to_u_kernel(const double* linv, std::uint64_t n, float* u) {
  const std::uint64_t total = n * n, stride = static_cast<std::uint64_t>(gridDim.x) * blockDim.x;
  for (std::uint64_t k = blockIdx.x * static_cast<std::uint64_t>(blockDim.x) + threadIdx.x; k < total; k += stride) {
    const std::uint64_t i = k / n, j = k % n;
    u[k] = j >= i ? static_cast<float>(linv[(n - 1 - i) + (n - 1 - j) * n]) : 0.0f;
  }
}

// Grids of `segs` runs of `seg_len` columns per row of src [rows, n], one
// thread per (row, run); columns flagged in `dead` (when given) count as 0.
__global__ void fit_kernel(const float* src, std::uint64_t rows, std::uint64_t n, std::uint64_t seg_len, int segs,
                           const std::uint8_t* dead, int bits, bool symmetric, float* scale, float* zero) {
  const std::uint64_t total = rows * static_cast<std::uint64_t>(segs), stride = static_cast<std::uint64_t>(gridDim.x) * blockDim.x;
  for (std::uint64_t k = blockIdx.x * static_cast<std::uint64_t>(blockDim.x) + threadIdx.x; k < total; k += stride) {
    const std::uint64_t r = k / static_cast<std::uint64_t>(segs), g = k % static_cast<std::uint64_t>(segs);
    const std::uint64_t c0 = g * seg_len;
    float lo = 0, hi = 0;
    for (std::uint64_t c = c0; c < c0 + seg_len; ++c) {
      const float v = dead && dead[c] ? 0.0f : src[r * n + c];
      lo = c == c0 ? v : grid_math::min_of(lo, v);
      hi = c == c0 ? v : grid_math::max_of(hi, v);
    }
    grid_math::grid_from_range(lo, hi, bits, symmetric, scale[k], zero[k]);
  }
}

__global__ void fill_kernel(float* a, std::uint64_t n, float v) {
  const std::uint64_t stride = static_cast<std::uint64_t>(gridDim.x) * blockDim.x;
  for (std::uint64_t k = blockIdx.x * static_cast<std::uint64_t>(blockDim.x) + threadIdx.x; k < n; k += stride) a[k] = v;
}

__global__ void walk_kernel(gptq_walk::BlockParams p) {
  extern __shared__ float s_blk[];
  const std::int64_t r = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (r >= p.rows) return;
  float* blk = s_blk + threadIdx.x;
  const float* src = p.w + r * p.n + p.i1;
  for (int i = 0; i < p.count; ++i) blk[i * static_cast<int>(blockDim.x)] = src[i];
  gptq_walk::walk_block_row(p, r, blk, static_cast<int>(blockDim.x));
}

// U from the damped, permuted Hessian. NotPositiveDefinite when POTRF says so.
GptqStatus factor_u(const GptqRequest& req, Handles& hd, float* d_u, std::string& message) {
  const std::uint64_t n = req.cols;
  const int ni = static_cast<int>(n);
  auto fail = [&](std::string e) {
    message = std::move(e);
    return GptqStatus::Failed;
  };
  DeviceArray<float> d_h, d_diag;
  DeviceArray<std::int32_t> d_perm;
  DeviceArray<double> d_m, d_linv, d_work;
  DeviceArray<int> d_info;
  if (auto e = d_h.alloc(n * n); !e.empty()) return fail(e);
  if (auto e = d_h.upload(req.h, n * n); !e.empty()) return fail(e);
  if (auto e = d_diag.alloc(n); !e.empty()) return fail(e);
  if (auto e = d_diag.upload(req.damped_diag, n); !e.empty()) return fail(e);
  if (auto e = d_perm.alloc(n); !e.empty()) return fail(e);
  if (auto e = d_perm.upload(req.perm, n); !e.empty()) return fail(e);
  if (auto e = d_m.alloc(n * n); !e.empty()) return fail(e);
  build_m_kernel<<<detail::grid_for(n * n), kThreads>>>(d_h.p, n, d_perm.p, d_diag.p, d_m.p);
  if (auto e = check(cudaGetLastError(), "build M launch"); !e.empty()) return fail(e);
  d_h.reset();

  int lwork = 0;
  if (auto e = cusolver_check(cusolverDnDpotrf_bufferSize(hd.solver, CUBLAS_FILL_MODE_LOWER, ni, d_m.p, ni, &lwork),
                              "cusolverDnDpotrf_bufferSize");
      !e.empty())
    return fail(e);
  if (auto e = d_work.alloc(static_cast<std::size_t>(lwork)); !e.empty()) return fail(e);
  if (auto e = d_info.alloc(1); !e.empty()) return fail(e);
  if (auto e = cusolver_check(cusolverDnDpotrf(hd.solver, CUBLAS_FILL_MODE_LOWER, ni, d_m.p, ni, d_work.p, lwork, d_info.p),
                              "cusolverDnDpotrf");
      !e.empty())
    return fail(e);
  int info = 0;
  if (auto e = d_info.download(&info, 1); !e.empty()) return fail(e);
  if (info > 0) return GptqStatus::NotPositiveDefinite;
  if (info < 0) return fail("cusolverDnDpotrf: argument " + std::to_string(-info) + " rejected");
  d_work.reset();

  if (auto e = d_linv.alloc(n * n); !e.empty()) return fail(e);
  identity_kernel<<<detail::grid_for(n * n), kThreads>>>(n, d_linv.p);
  if (auto e = check(cudaGetLastError(), "identity launch"); !e.empty()) return fail(e);
  const double one = 1.0;
  if (auto e = cublas_check(cublasDtrsm(hd.blas, CUBLAS_SIDE_LEFT, CUBLAS_FILL_MODE_LOWER, CUBLAS_OP_N,
                                        CUBLAS_DIAG_NON_UNIT, ni, ni, &one, d_m.p, ni, d_linv.p, ni),
                            "cublasDtrsm");
      !e.empty())
    return fail(e);
  reverse_to_u_kernel<<<detail::grid_for(n * n), kThreads>>>(d_linv.p, n, d_u);
  if (auto e = check(cudaGetLastError(), "U launch"); !e.empty()) return fail(e);
  if (auto e = check(cudaDeviceSynchronize(), "factorization"); !e.empty()) return fail(e);
  return GptqStatus::Ok;
}

}  // namespace

GptqStatus gptq_int(const GptqRequest& req, std::uint8_t* codes, float* scales, float* zeros, float* dequantized,
                    std::string& message) {
  const std::uint64_t rows = req.rows, n = req.cols;
  auto fail = [&](std::string e) {
    message = std::move(e);
    return GptqStatus::Failed;
  };
  if (rows == 0 || n == 0 || n > 0x7fffffffu || rows > 0x7fffffffu) return fail("gptq_int: bad shape");
  if (req.block_size < 1 || req.block_size > kMaxGptqBlock) return fail("gptq_int: block size out of range");
  if (req.group_size < 0 || (req.group_size > 0 && n % static_cast<std::uint64_t>(req.group_size) != 0))
    return fail("gptq_int: bad group size");
  const std::uint64_t groups = static_cast<std::uint64_t>(req.groups);

  Handles hd;
  if (auto e = cublas_check(cublasCreate(&hd.blas), "cublasCreate"); !e.empty()) return fail(e);
  if (auto e = cublas_check(cublasSetMathMode(hd.blas, CUBLAS_PEDANTIC_MATH), "cublasSetMathMode"); !e.empty())
    return fail(e);
  if (auto e = cusolver_check(cusolverDnCreate(&hd.solver), "cusolverDnCreate"); !e.empty()) return fail(e);

  DeviceArray<float> d_u;
  if (auto e = d_u.alloc(n * n); !e.empty()) return fail(e);
  if (const GptqStatus s = factor_u(req, hd, d_u.p, message); s != GptqStatus::Ok) return s;
  if (req.progress && !req.progress(0.0)) return GptqStatus::Cancelled;

  DeviceArray<float> d_w, d_wd, d_deq, d_err, d_cur_scale, d_cur_zero, d_static_scale, d_static_zero, d_scales, d_zeros;
  DeviceArray<std::int32_t> d_perm, d_gidx;
  DeviceArray<std::uint8_t> d_dead, d_codes;
  if (auto e = d_w.alloc(rows * n); !e.empty()) return fail(e);
  if (auto e = d_w.upload(req.w, rows * n); !e.empty()) return fail(e);
  if (auto e = d_perm.alloc(n); !e.empty()) return fail(e);
  if (auto e = d_perm.upload(req.perm, n); !e.empty()) return fail(e);
  if (auto e = d_gidx.alloc(n); !e.empty()) return fail(e);
  if (auto e = d_gidx.upload(req.g_idx, n); !e.empty()) return fail(e);
  if (auto e = d_dead.alloc(n); !e.empty()) return fail(e);
  if (auto e = d_dead.upload(req.dead, n); !e.empty()) return fail(e);
  if (auto e = d_wd.alloc(rows * n); !e.empty()) return fail(e);
  gather_walk_kernel<<<detail::grid_for(rows * n), kThreads>>>(d_w.p, rows, n, d_perm.p, d_dead.p, d_wd.p);
  if (auto e = check(cudaGetLastError(), "gather launch"); !e.empty()) return fail(e);

  // The grid in use per row: fitted once on the whole row (per-channel), else
  // a placeholder that the first dynamic group replaces.
  if (auto e = d_cur_scale.alloc(rows); !e.empty()) return fail(e);
  if (auto e = d_cur_zero.alloc(rows); !e.empty()) return fail(e);
  if (req.group_size == 0) {
    fit_kernel<<<detail::grid_for(rows), kThreads>>>(d_wd.p, rows, n, n, 1, nullptr, req.bits, req.symmetric,
                                                     d_cur_scale.p, d_cur_zero.p);
  } else {
    fill_kernel<<<detail::grid_for(rows), kThreads>>>(d_cur_scale.p, rows, 1.0f);
    fill_kernel<<<detail::grid_for(rows), kThreads>>>(d_cur_zero.p, rows, 0.0f);
  }
  if (auto e = check(cudaGetLastError(), "row grid launch"); !e.empty()) return fail(e);
  // Static groups: fitted up front on the original column order, dead inputs as 0.
  const bool static_groups = req.group_size > 0 && req.static_groups;
  if (static_groups) {
    if (auto e = d_static_scale.alloc(rows * groups); !e.empty()) return fail(e);
    if (auto e = d_static_zero.alloc(rows * groups); !e.empty()) return fail(e);
    fit_kernel<<<detail::grid_for(rows * groups), kThreads>>>(d_w.p, rows, n, static_cast<std::uint64_t>(req.group_size),
                                                              req.groups, d_dead.p, req.bits, req.symmetric,
                                                              d_static_scale.p, d_static_zero.p);
    if (auto e = check(cudaGetLastError(), "static grid launch"); !e.empty()) return fail(e);
  }
  if (auto e = check(cudaDeviceSynchronize(), "preparation"); !e.empty()) return fail(e);
  d_w.reset();

  const int bs = req.block_size;
  if (auto e = d_err.alloc(rows * static_cast<std::uint64_t>(bs)); !e.empty()) return fail(e);
  if (auto e = d_codes.alloc(rows * n); !e.empty()) return fail(e);
  if (auto e = d_deq.alloc(rows * n); !e.empty()) return fail(e);
  if (auto e = d_scales.alloc(rows * groups); !e.empty()) return fail(e);
  if (auto e = d_zeros.alloc(rows * groups); !e.empty()) return fail(e);

  gptq_walk::BlockParams p;
  p.w = d_wd.p;
  p.u = d_u.p;
  p.rows = static_cast<std::int64_t>(rows);
  p.n = static_cast<std::int64_t>(n);
  p.bits = req.bits;
  p.symmetric = req.symmetric;
  p.group_size = req.group_size;
  p.static_groups = static_groups;
  p.groups = req.groups;
  p.perm = d_perm.p;
  p.g_idx = d_gidx.p;
  p.static_scale = d_static_scale.p;
  p.static_zero = d_static_zero.p;
  p.cur_scale = d_cur_scale.p;
  p.cur_zero = d_cur_zero.p;
  p.codes = d_codes.p;
  p.dequantized = d_deq.p;
  p.scales = d_scales.p;
  p.zeros = d_zeros.p;
  p.err = d_err.p;
  p.err_ld = bs;
  const unsigned walk_blocks = static_cast<unsigned>((rows + kWalkThreads - 1) / kWalkThreads);
  const float minus_one = -1.0f, one = 1.0f;
  for (std::uint64_t i1 = 0; i1 < n; i1 += static_cast<std::uint64_t>(bs)) {
    const std::uint64_t i2 = std::min(n, i1 + static_cast<std::uint64_t>(bs));
    p.i1 = static_cast<std::int64_t>(i1);
    p.count = static_cast<int>(i2 - i1);
    const std::size_t shmem = static_cast<std::size_t>(p.count) * kWalkThreads * sizeof(float);
    walk_kernel<<<walk_blocks, kWalkThreads, shmem>>>(p);
    if (auto e = check(cudaGetLastError(), "walk launch"); !e.empty()) return fail(e);
    if (i2 < n) {
      // Column-major views: W^T[i2:, :] -= U[i1:i2, i2:]^T Err^T.
      if (auto e = cublas_check(cublasSgemm(hd.blas, CUBLAS_OP_N, CUBLAS_OP_N, static_cast<int>(n - i2),
                                            static_cast<int>(rows), p.count, &minus_one, d_u.p + i1 * n + i2,
                                            static_cast<int>(n), d_err.p, bs, &one, d_wd.p + i2, static_cast<int>(n)),
                                "cublasSgemm");
          !e.empty())
        return fail(e);
    }
    if (req.progress) {
      if (auto e = check(cudaDeviceSynchronize(), "GPTQ block"); !e.empty()) return fail(e);
      if (!req.progress(static_cast<double>(i2) / static_cast<double>(n))) return GptqStatus::Cancelled;
    }
  }
  if (auto e = check(cudaDeviceSynchronize(), "GPTQ walk"); !e.empty()) return fail(e);
  if (auto e = d_codes.download(codes, rows * n); !e.empty()) return fail(e);
  if (auto e = d_deq.download(dequantized, rows * n); !e.empty()) return fail(e);
  if (auto e = d_scales.download(scales, rows * groups); !e.empty()) return fail(e);
  if (auto e = d_zeros.download(zeros, rows * groups); !e.empty()) return fail(e);
  return GptqStatus::Ok;
}

}  // namespace qs::cuda
