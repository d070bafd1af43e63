#pragma once
// The boundary between C++ and CUDA: plain types and raw pointers only (no
// Eigen, no Qt, no core headers), so nvcc compiles the kernels in isolation.
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace qs::cuda {

enum class ElemType : int { F32 = 0, F16 = 1, BF16 = 2 };

// Empty string when a device is usable; otherwise why not. `name` gets the GPU's name.
std::string probe_device(std::string& name);

// Device memory holding one chunk of a tensor's bytes.
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  ~DeviceBuffer();
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  // Copies `bytes` from host memory (may be a read-only memory map). Empty string on success.
  std::string upload(const void* host, std::size_t bytes);
  const void* data() const { return ptr_; }

 private:
  void* ptr_ = nullptr;
  std::size_t capacity_ = 0;
};

struct Pass1 {
  std::uint64_t count = 0, nan = 0, inf = 0;
  double min = 0, max = 0, sum = 0, sumsq = 0, abs_max = 0, min_abs_nonzero = 0;  // min/max: +-inf when count == 0
  std::vector<std::uint64_t> key_hi = std::vector<std::uint64_t>(65536, 0);  // top 16 bits of each finite value's order key
};

struct Pass2Params {
  double mean = 0, lo = 0, hi = 0, inv_width = 0;
  int bins = 64;
  bool log_magnitude = false;
  double tail3 = 0, tail6 = 0;  // |x - mean| thresholds counted as tails
  int targets = 0;              // percentile buckets to refine
};

struct Pass2 {
  double m2 = 0, m3 = 0, m4 = 0;
  std::vector<std::uint64_t> counts;  // bins
  std::uint64_t below = 0, above = 0, zeros = 0;
  std::uint64_t beyond3 = 0, beyond6 = 0;
  std::vector<std::uint64_t> low;  // targets * 65536 low-key counts
};

// Range and sums of `n` elements; merges into `acc` (call once per chunk).
std::string stats_pass1(const DeviceBuffer& buf, ElemType t, std::uint64_t n, Pass1& acc);
// Central moments, histogram, tails and low-key counts for the percentile
// buckets (`target_of`: 65536 entries, -1 or a target index); adds into `acc`
// (counts and low sized by the caller).
std::string stats_pass2(const DeviceBuffer& buf, ElemType t, std::uint64_t n, const Pass2Params& p,
                        const std::int8_t* target_of, Pass2& acc);
// Max |x| and RMS per row, max |x| and sums of squares per column, of a rows x cols
// chunk. rows_* cover this chunk's rows only; cols_out is max-merged into,
// col_sq / col_n are added into (for the RMS over all chunks).
std::string channel_absmax(const DeviceBuffer& buf, ElemType t, std::uint64_t rows, std::uint64_t cols,
                           float* rows_out, float* rows_rms_out, float* cols_out, double* col_sq,
                           std::uint64_t* col_n);

// ---- Quantization -----------------------------------------------------------
// Integer grids follow core/quant/int_grid.h; the per-value arithmetic is
// grid_math.h's, shared with the CPU tests.

struct RtnRequest {
  const void* data = nullptr;  // host, [rows, cols] row-major, of `type`
  ElemType type = ElemType::F32;
  std::uint64_t rows = 0, cols = 0;
  int bits = 4;
  bool symmetric = false;
  int group_size = 128;  // > 0 groups of columns (divides cols), 0 per row, -1 per tensor
};

struct RtnResult {
  bool finite = true;   // false: a group held NaN/Inf and nothing else is valid
  double err_sq = 0;    // sum of (w - q)^2
  double ref_sq = 0;    // sum of w^2
  double max_abs = 0;   // max |w - q|
};

// Round-to-nearest with the error sums. Outputs are host buffers: codes
// rows * cols, scales and zeros rows * groups_per_row, dequantized null or rows * cols.
std::string rtn_int(const RtnRequest& req, std::uint8_t* codes, float* scales, float* zeros, float* dequantized,
                    RtnResult& out);

// H += X^T X with cuBLAS (SSYRK, F32 in and F32 sums, as the CPU's SGEMM),
// the sum kept in device memory between chunks.
class DeviceHessian {
 public:
  DeviceHessian() = default;
  ~DeviceHessian();
  DeviceHessian(const DeviceHessian&) = delete;
  DeviceHessian& operator=(const DeviceHessian&) = delete;
  std::string init(std::uint64_t cols);                 // allocates and zeroes
  std::string add(const float* x, std::uint64_t rows);  // x: host, [rows, cols] row-major
  std::string read(float* h);                           // host, [cols, cols] row-major, both triangles

 private:
  struct Impl;
  Impl* impl_ = nullptr;
};

// GPTQ on an integer grid, in the reference's formulation: U = the upper
// Cholesky factor of H^-1 (cuSOLVER POTRF + cuBLAS TRSM in F64 on the damped,
// permuted H), the walk one thread per row over lazy blocks of `block_size`
// columns, the between-block update one SGEMM. The plan's arrays come from
// core's plan_gptq (quant/gptq_plan.h).
struct GptqRequest {
  const float* w = nullptr;  // host, [rows, cols] original column order
  const float* h = nullptr;  // host, [cols, cols]
  std::uint64_t rows = 0, cols = 0;
  int bits = 4;
  bool symmetric = false;
  int group_size = 128;      // > 0 or 0 (per row)
  int groups = 1;
  bool static_groups = false;
  int block_size = 128;      // 1 .. kMaxGptqBlock
  const std::int32_t* perm = nullptr;        // cols
  const std::uint8_t* dead = nullptr;        // cols, original order
  const float* damped_diag = nullptr;        // cols, walk order
  const std::int32_t* g_idx = nullptr;       // cols, original order
  // Progress in [0, 1] after each block; returning false cancels.
  std::function<bool(double)> progress;
};
constexpr int kMaxGptqBlock = 384;  // the walk keeps 32 rows x block floats in 48 KiB of shared memory

enum class GptqStatus { Ok, Cancelled, NotPositiveDefinite, Failed };

// Outputs are host buffers: codes and dequantized rows * cols (original
// order), scales and zeros rows * groups. `message` explains a Failed status.
GptqStatus gptq_int(const GptqRequest& req, std::uint8_t* codes, float* scales, float* zeros, float* dequantized,
                    std::string& message);

}  // namespace qs::cuda
