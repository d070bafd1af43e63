#pragma once
// The few dense factorizations that dominate GPTQ, through LAPACK (OpenBLAS:
// runtime-dispatched AVX2/AVX-512 kernels, threaded) when the build has it.
#include <cstdint>

namespace qs::lapack {

// True when this build links a LAPACK (OpenBLAS); otherwise callers use Eigen.
bool available();

// In place on a symmetric positive-definite n x n matrix (row-major, either
// triangle filled): afterwards its upper triangle holds R with A = R^T R.
// Returns false when A is not positive definite.
bool cholesky_upper(float* a, std::int64_t n);
// In place: the upper triangle (with diagonal) of a row-major upper triangular
// matrix is replaced by its inverse. Returns false when singular.
bool invert_upper(float* a, std::int64_t n);

// C -= A * B for row-major A [m, k], B [k, n], C [m, n] with leading dimensions
// (elements per row). With BLAS: one threaded SGEMM; without: Eigen.
void gemm_subtract(std::int64_t m, std::int64_t n, std::int64_t k, const float* a, std::int64_t lda, const float* b,
                   std::int64_t ldb, float* c, std::int64_t ldc);
// C = alpha * op(A) * B + beta * C, row-major; op(A) = A [m, k], or A^T when A is
// stored [k, m]. The quantization methods' error searches (AWQ, clip search) are
// batches of such products. With BLAS: one threaded SGEMM; without: Eigen.
void gemm(bool transpose_a, std::int64_t m, std::int64_t n, std::int64_t k, float alpha, const float* a,
          std::int64_t lda, const float* b, std::int64_t ldb, float beta, float* c, std::int64_t ldc);

}  // namespace qs::lapack
