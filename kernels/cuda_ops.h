#pragma once
// The boundary between C++ and CUDA: plain types and raw pointers only (no
// Eigen, no Qt, no core headers), so nvcc compiles the kernels in isolation.
#include <cstddef>
#include <cstdint>
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

}  // namespace qs::cuda
