#include "backend/lapack.h"

#include <Eigen/Dense>
#include <mutex>

#ifdef QS_HAVE_LAPACK
#include <cblas.h>
#endif

#ifdef QS_HAVE_LAPACK
// Fortran LAPACK, column-major. A row-major matrix is its column-major
// transpose: "upper, row-major" is "lower, column-major".
extern "C" {
void spotrf_(const char* uplo, const int* n, float* a, const int* lda, int* info);
}
#endif

namespace qs::lapack {

namespace {
std::mutex serial_mutex;
int serial_depth = 0;     // live SerialBlas objects
#ifdef QS_HAVE_LAPACK
int threads_before = 0;  // BLAS's thread count when the first one began
#endif
}  // namespace

SerialBlas::SerialBlas() {
  std::lock_guard lock(serial_mutex);
  if (serial_depth++ > 0) return;
#ifdef QS_HAVE_LAPACK
  threads_before = openblas_get_num_threads();
  openblas_set_num_threads(1);
#endif
}

SerialBlas::~SerialBlas() {
  std::lock_guard lock(serial_mutex);
  if (--serial_depth > 0) return;
#ifdef QS_HAVE_LAPACK
  openblas_set_num_threads(threads_before);
#endif
}

#ifdef QS_HAVE_LAPACK
bool available() { return true; }

bool cholesky_lower(float* a, std::int64_t n) {
  const int nn = static_cast<int>(n);
  int info = 0;
  spotrf_("U", &nn, a, &nn, &info);  // column-major U with A = U^T U; row-major: L = U^T
  return info == 0;
}

void gemm_subtract(std::int64_t m, std::int64_t n, std::int64_t k, const float* a, std::int64_t lda, const float* b,
                   std::int64_t ldb, float* c, std::int64_t ldc) {
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, static_cast<int>(m), static_cast<int>(n), static_cast<int>(k), -1.0f,
              a, static_cast<int>(lda), b, static_cast<int>(ldb), 1.0f, c, static_cast<int>(ldc));
}
void gemm(bool transpose_a, std::int64_t m, std::int64_t n, std::int64_t k, float alpha, const float* a,
          std::int64_t lda, const float* b, std::int64_t ldb, float beta, float* c, std::int64_t ldc) {
  cblas_sgemm(CblasRowMajor, transpose_a ? CblasTrans : CblasNoTrans, CblasNoTrans, static_cast<int>(m),
              static_cast<int>(n), static_cast<int>(k), alpha, a, static_cast<int>(lda), b, static_cast<int>(ldb), beta, c,
              static_cast<int>(ldc));
}
#else
void gemm(bool transpose_a, std::int64_t m, std::int64_t n, std::int64_t k, float alpha, const float* a,
          std::int64_t lda, const float* b, std::int64_t ldb, float beta, float* c, std::int64_t ldc) {
  using Stride = Eigen::OuterStride<>;
  using Mat = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  Eigen::Map<const Mat, 0, Stride> B(b, k, n, Stride(ldb));
  Eigen::Map<Mat, 0, Stride> C(c, m, n, Stride(ldc));
  if (beta == 0.0f) C.setZero(); else C *= beta;  // beta 0 must not propagate NaN from C, as in BLAS
  if (transpose_a) {
    Eigen::Map<const Mat, 0, Stride> A(a, k, m, Stride(lda));
    C.noalias() += alpha * A.transpose() * B;
  } else {
    Eigen::Map<const Mat, 0, Stride> A(a, m, k, Stride(lda));
    C.noalias() += alpha * A * B;
  }
}
void gemm_subtract(std::int64_t m, std::int64_t n, std::int64_t k, const float* a, std::int64_t lda, const float* b,
                   std::int64_t ldb, float* c, std::int64_t ldc) {
  using Stride = Eigen::OuterStride<>;
  using Mat = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  Eigen::Map<const Mat, 0, Stride> A(a, m, k, Stride(lda)), B(b, k, n, Stride(ldb));
  Eigen::Map<Mat, 0, Stride> C(c, m, n, Stride(ldc));
  C.noalias() -= A * B;
}
bool available() { return false; }
bool cholesky_lower(float*, std::int64_t) { return false; }
#endif

}  // namespace qs::lapack
