#pragma once
// The few dense factorizations that dominate GPTQ, through LAPACK (OpenBLAS:
// runtime-dispatched AVX2/AVX-512 kernels, threaded) when the build has it.
#include <cstdint>

namespace qs::lapack {

// True when this build links a LAPACK (OpenBLAS); otherwise callers use Eigen.
bool available();

// In place on a symmetric positive-definite n x n matrix (row-major, either
// triangle filled): afterwards its lower triangle holds L with A = L L^T (the
// other triangle is left as it was). Returns false when A is not positive definite.
bool cholesky_lower(float* a, std::int64_t n);

// C -= A * B for row-major A [m, k], B [k, n], C [m, n] with leading dimensions
// (elements per row). With BLAS: one threaded SGEMM; without: Eigen.
void gemm_subtract(std::int64_t m, std::int64_t n, std::int64_t k, const float* a, std::int64_t lda, const float* b,
                   std::int64_t ldb, float* c, std::int64_t ldc);
// C = alpha * op(A) * B + beta * C, row-major; op(A) = A [m, k], or A^T when A is
// stored [k, m]. The quantization methods' error searches (AWQ, clip search) are
// batches of such products. With BLAS: one threaded SGEMM; without: Eigen.
void gemm(bool transpose_a, std::int64_t m, std::int64_t n, std::int64_t k, float alpha, const float* a,
          std::int64_t lda, const float* b, std::int64_t ldb, float beta, float* c, std::int64_t ldc);

// While one is alive, BLAS calls run on their calling thread only (process
// wide; nests). For callers that split their products over the thread pool
// themselves: a threaded BLAS keeps its workers spinning (sched_yield) for
// ~0.1 s after every call, and on a 2-core machine they take the cores from
// the pool's threads between calls (GPTQ's walk took 0.44 s instead of 0.28).
// Other threads' BLAS calls meanwhile run serially too: slower, still correct.
class SerialBlas {
 public:
  SerialBlas();
  ~SerialBlas();
  SerialBlas(const SerialBlas&) = delete;
  SerialBlas& operator=(const SerialBlas&) = delete;
};

}  // namespace qs::lapack
