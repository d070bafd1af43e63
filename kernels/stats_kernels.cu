// Statistics kernels: a range/sum pass and a moments + histogram pass, each a
// grid-stride loop with per-block partials that the host merges in block order
// (so results do not depend on scheduling).
#include "cuda_util.cuh"

#include <algorithm>
#include <cstring>
#include <cmath>
#include <limits>

#include "cuda_ops.h"

namespace qs::cuda {
namespace {

using detail::check;
using detail::DeviceArray;
using detail::grid_for;
using detail::kThreads;
using detail::load_elem;
constexpr int kSharedBinsMax = 8192;  // u32 bins privatised in shared memory up to here (32 KiB)

struct BlockPass1 {
  unsigned long long count, nan, inf;
  double min, max, sum, sumsq, abs_max, min_abs_nonzero;
};

// Same key as core's float_order_key(): unsigned order equals float order.
__device__ __forceinline__ unsigned order_key(float f) {
  const unsigned u = __float_as_uint(f);
  return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}

__global__ void pass1_kernel(const void* data, ElemType t, std::uint64_t n, BlockPass1* out,
                             unsigned long long* key_hi) {
  unsigned long long count = 0, nan = 0, inf = 0;
  float mn = INFINITY, mx = -INFINITY, amax = 0.f, mnz = INFINITY;
  double sum = 0, sumsq = 0;
  const std::uint64_t stride = static_cast<std::uint64_t>(gridDim.x) * blockDim.x;
  for (std::uint64_t i = blockIdx.x * static_cast<std::uint64_t>(blockDim.x) + threadIdx.x; i < n; i += stride) {
    const float v = load_elem(data, t, i);
    if (isnan(v)) { ++nan; continue; }
    if (isinf(v)) { ++inf; continue; }
    ++count;
    mn = fminf(mn, v); mx = fmaxf(mx, v); sum += v; sumsq += static_cast<double>(v) * v;
    atomicAdd(&key_hi[order_key(v) >> 16], 1ull);
    const float a = fabsf(v);
    amax = fmaxf(amax, a);
    if (a > 0.f) mnz = fminf(mnz, a);
  }
  __shared__ unsigned long long s_cnt[kThreads], s_nan[kThreads], s_inf[kThreads];
  __shared__ float s_mn[kThreads], s_mx[kThreads], s_amax[kThreads], s_mnz[kThreads];
  __shared__ double s_sum[kThreads], s_sq[kThreads];
  const int tid = threadIdx.x;
  s_cnt[tid] = count; s_nan[tid] = nan; s_inf[tid] = inf;
  s_mn[tid] = mn; s_mx[tid] = mx; s_amax[tid] = amax; s_mnz[tid] = mnz; s_sum[tid] = sum; s_sq[tid] = sumsq;
  __syncthreads();
  for (int s = blockDim.x / 2; s > 0; s >>= 1) {
    if (tid < s) {
      s_cnt[tid] += s_cnt[tid + s]; s_nan[tid] += s_nan[tid + s]; s_inf[tid] += s_inf[tid + s];
      s_mn[tid] = fminf(s_mn[tid], s_mn[tid + s]); s_mx[tid] = fmaxf(s_mx[tid], s_mx[tid + s]);
      s_amax[tid] = fmaxf(s_amax[tid], s_amax[tid + s]); s_mnz[tid] = fminf(s_mnz[tid], s_mnz[tid + s]);
      s_sum[tid] += s_sum[tid + s]; s_sq[tid] += s_sq[tid + s];
    }
    __syncthreads();
  }
  if (tid == 0)
    out[blockIdx.x] = {s_cnt[0], s_nan[0], s_inf[0], s_mn[0], s_mx[0], s_sum[0], s_sq[0], s_amax[0], s_mnz[0]};
}

struct BlockPass2 {
  double m2, m3, m4;
  unsigned long long beyond3, beyond6;
};

__global__ void pass2_kernel(const void* data, ElemType t, std::uint64_t n, Pass2Params p, BlockPass2* moments,
                             unsigned long long* counts /* bins + 3: below, above, zeros */,
                             const signed char* target_of, unsigned long long* low) {
  extern __shared__ unsigned s_bins[];  // bins + 3 when privatised, else unused
  const bool shared_bins = p.bins <= kSharedBinsMax;
  if (shared_bins)
    for (int b = threadIdx.x; b < p.bins + 3; b += blockDim.x) s_bins[b] = 0;
  __syncthreads();
  double m2 = 0, m3 = 0, m4 = 0;
  unsigned long long b3 = 0, b6 = 0;
  const std::uint64_t stride = static_cast<std::uint64_t>(gridDim.x) * blockDim.x;
  for (std::uint64_t i = blockIdx.x * static_cast<std::uint64_t>(blockDim.x) + threadIdx.x; i < n; i += stride) {
    const float f = load_elem(data, t, i);
    const double v = f;
    if (!isfinite(v)) continue;
    const unsigned key = order_key(f);
    const int tgt = target_of[key >> 16];
    if (tgt >= 0) atomicAdd(&low[static_cast<std::size_t>(tgt) * 65536 + (key & 0xFFFFu)], 1ull);
    const double d = v - p.mean, d2 = d * d;
    b3 += fabs(d) > p.tail3;
    b6 += fabs(d) > p.tail6;
    m2 += d2; m3 += d2 * d; m4 += d2 * d2;
    int slot;  // 0..bins-1, bins = below, bins+1 = above, bins+2 = zero (log scale)
    double q = v;
    if (p.log_magnitude) {
      if (v == 0) { slot = p.bins + 2; goto count_it; }
      q = log10(fabs(v));
    }
    // Same rule as core's histogram_bin().
    if (q < p.lo) slot = p.bins;
    else if (q > p.hi) slot = p.bins + 1;
    else {
      const long long b = static_cast<long long>((q - p.lo) * p.inv_width);
      slot = b >= p.bins ? p.bins - 1 : static_cast<int>(b);
    }
  count_it:
    if (shared_bins) atomicAdd(&s_bins[slot], 1u);
    else atomicAdd(&counts[slot], 1ull);
  }
  __shared__ double s_m[3][kThreads];
  __shared__ unsigned long long s_b[2][kThreads];
  const int tid = threadIdx.x;
  s_m[0][tid] = m2; s_m[1][tid] = m3; s_m[2][tid] = m4;
  s_b[0][tid] = b3; s_b[1][tid] = b6;
  __syncthreads();
  for (int s = blockDim.x / 2; s > 0; s >>= 1) {
    if (tid < s) {
      for (int k = 0; k < 3; ++k) s_m[k][tid] += s_m[k][tid + s];
      s_b[0][tid] += s_b[0][tid + s];
      s_b[1][tid] += s_b[1][tid + s];
    }
    __syncthreads();
  }
  if (tid == 0) moments[blockIdx.x] = {s_m[0][0], s_m[1][0], s_m[2][0], s_b[0][0], s_b[1][0]};
  if (shared_bins)
    for (int b = tid; b < p.bins + 3; b += blockDim.x)
      if (s_bins[b]) atomicAdd(&counts[b], static_cast<unsigned long long>(s_bins[b]));
}

__global__ void channel_absmax_kernel(const void* data, ElemType t, std::uint64_t rows, std::uint64_t cols,
                                      float* row_max, float* row_rms, unsigned* col_max_bits, double* col_sq,
                                      unsigned long long* col_n) {
  // One block per row; threads stride over columns. |x| >= 0, so float order
  // equals the order of its bit pattern and atomicMax on unsigned works.
  for (std::uint64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    float m = 0.f;
    double sq = 0;
    unsigned long long cnt = 0;
    for (std::uint64_t c = threadIdx.x; c < cols; c += blockDim.x) {
      const float a = fabsf(load_elem(data, t, r * cols + c));
      if (!(a == a)) continue;  // NaN ignored
      m = fmaxf(m, a);
      sq += static_cast<double>(a) * a;
      ++cnt;
      atomicMax(&col_max_bits[c], __float_as_uint(a));
      atomicAdd(&col_sq[c], static_cast<double>(a) * a);
      atomicAdd(&col_n[c], 1ull);
    }
    __shared__ float s[kThreads];
    __shared__ double s_sq[kThreads];
    __shared__ unsigned long long s_n[kThreads];
    s[threadIdx.x] = m;
    s_sq[threadIdx.x] = sq;
    s_n[threadIdx.x] = cnt;
    __syncthreads();
    for (int k = blockDim.x / 2; k > 0; k >>= 1) {
      if (threadIdx.x < k) {
        s[threadIdx.x] = fmaxf(s[threadIdx.x], s[threadIdx.x + k]);
        s_sq[threadIdx.x] += s_sq[threadIdx.x + k];
        s_n[threadIdx.x] += s_n[threadIdx.x + k];
      }
      __syncthreads();
    }
    if (threadIdx.x == 0) {
      row_max[r] = s[0];
      row_rms[r] = s_n[0] ? static_cast<float>(sqrt(s_sq[0] / static_cast<double>(s_n[0]))) : 0.f;
    }
    __syncthreads();
  }
}

}  // namespace

std::string probe_device(std::string& name) {
  int count = 0;
  const cudaError_t e = cudaGetDeviceCount(&count);
  if (e != cudaSuccess) return cudaGetErrorString(e);
  if (count == 0) return "no CUDA device";
  cudaDeviceProp prop{};
  if (cudaGetDeviceProperties(&prop, 0) != cudaSuccess) return "cannot read device properties";
  name = prop.name;
  return {};
}

DeviceBuffer::~DeviceBuffer() {
  if (ptr_) cudaFree(ptr_);
}

std::string DeviceBuffer::upload(const void* host, std::size_t bytes) {
  if (bytes > capacity_) {
    if (ptr_) cudaFree(ptr_);
    ptr_ = nullptr;
    capacity_ = 0;
    if (auto err = check(cudaMalloc(&ptr_, bytes), "cudaMalloc"); !err.empty()) return err;
    capacity_ = bytes;
  }
  return check(cudaMemcpy(ptr_, host, bytes, cudaMemcpyHostToDevice), "cudaMemcpy to device");
}

std::string stats_pass1(const DeviceBuffer& buf, ElemType t, std::uint64_t n, Pass1& acc) {
  if (n == 0) return {};
  const int grid = grid_for(n);
  DeviceArray<BlockPass1> d;
  DeviceArray<unsigned long long> kh;
  if (auto e = d.alloc(static_cast<std::size_t>(grid)); !e.empty()) return e;
  if (auto e = kh.alloc(65536); !e.empty()) return e;
  if (auto e = check(cudaMemset(kh.p, 0, 65536 * sizeof(unsigned long long)), "cudaMemset"); !e.empty()) return e;
  pass1_kernel<<<grid, kThreads>>>(buf.data(), t, n, d.p, kh.p);
  if (auto e = check(cudaGetLastError(), "pass1 launch"); !e.empty()) return e;
  std::vector<BlockPass1> h(static_cast<std::size_t>(grid));
  if (auto e = check(cudaMemcpy(h.data(), d.p, h.size() * sizeof(BlockPass1), cudaMemcpyDeviceToHost), "pass1 result");
      !e.empty())
    return e;
  std::vector<unsigned long long> hk(65536);
  if (auto e = check(cudaMemcpy(hk.data(), kh.p, 65536 * sizeof(unsigned long long), cudaMemcpyDeviceToHost), "key counts");
      !e.empty())
    return e;
  for (std::size_t i = 0; i < 65536; ++i) acc.key_hi[i] += hk[i];
  for (const auto& b : h) {
    acc.count += b.count; acc.nan += b.nan; acc.inf += b.inf;
    acc.min = std::min(acc.min, b.min); acc.max = std::max(acc.max, b.max);
    acc.sum += b.sum; acc.sumsq += b.sumsq; acc.abs_max = std::max(acc.abs_max, b.abs_max);
    acc.min_abs_nonzero = std::min(acc.min_abs_nonzero, b.min_abs_nonzero);
  }
  return {};
}

std::string stats_pass2(const DeviceBuffer& buf, ElemType t, std::uint64_t n, const Pass2Params& p,
                        const std::int8_t* target_of, Pass2& acc) {
  if (n == 0) return {};
  const int grid = grid_for(n);
  DeviceArray<BlockPass2> dm;
  DeviceArray<unsigned long long> dc, dlow;
  DeviceArray<signed char> dtarget;
  const std::size_t slots = static_cast<std::size_t>(p.bins) + 3;
  const std::size_t low_slots = static_cast<std::size_t>(std::max(p.targets, 1)) * 65536;
  if (auto e = dm.alloc(static_cast<std::size_t>(grid)); !e.empty()) return e;
  if (auto e = dc.alloc(slots); !e.empty()) return e;
  if (auto e = dlow.alloc(low_slots); !e.empty()) return e;
  if (auto e = dtarget.alloc(65536); !e.empty()) return e;
  if (auto e = check(cudaMemset(dc.p, 0, slots * sizeof(unsigned long long)), "cudaMemset"); !e.empty()) return e;
  if (auto e = check(cudaMemset(dlow.p, 0, low_slots * sizeof(unsigned long long)), "cudaMemset"); !e.empty()) return e;
  if (auto e = check(cudaMemcpy(dtarget.p, target_of, 65536, cudaMemcpyHostToDevice), "percentile targets"); !e.empty())
    return e;
  const std::size_t shmem = p.bins <= kSharedBinsMax ? slots * sizeof(unsigned) : 0;
  pass2_kernel<<<grid, kThreads, shmem>>>(buf.data(), t, n, p, dm.p, dc.p, dtarget.p, dlow.p);
  if (auto e = check(cudaGetLastError(), "pass2 launch"); !e.empty()) return e;
  std::vector<BlockPass2> hm(static_cast<std::size_t>(grid));
  std::vector<unsigned long long> hc(slots);
  if (auto e = check(cudaMemcpy(hm.data(), dm.p, hm.size() * sizeof(BlockPass2), cudaMemcpyDeviceToHost), "pass2 result");
      !e.empty())
    return e;
  if (auto e = check(cudaMemcpy(hc.data(), dc.p, slots * sizeof(unsigned long long), cudaMemcpyDeviceToHost), "pass2 bins");
      !e.empty())
    return e;
  if (p.targets > 0) {
    std::vector<unsigned long long> hl(static_cast<std::size_t>(p.targets) * 65536);
    if (auto e = check(cudaMemcpy(hl.data(), dlow.p, hl.size() * sizeof(unsigned long long), cudaMemcpyDeviceToHost),
                       "percentile counts");
        !e.empty())
      return e;
    for (std::size_t i = 0; i < hl.size(); ++i) acc.low[i] += hl[i];
  }
  for (const auto& b : hm) {
    acc.m2 += b.m2; acc.m3 += b.m3; acc.m4 += b.m4;
    acc.beyond3 += b.beyond3; acc.beyond6 += b.beyond6;
  }
  for (int b = 0; b < p.bins; ++b) acc.counts[static_cast<std::size_t>(b)] += hc[static_cast<std::size_t>(b)];
  acc.below += hc[static_cast<std::size_t>(p.bins)];
  acc.above += hc[static_cast<std::size_t>(p.bins) + 1];
  acc.zeros += hc[static_cast<std::size_t>(p.bins) + 2];
  return {};
}

std::string channel_absmax(const DeviceBuffer& buf, ElemType t, std::uint64_t rows, std::uint64_t cols,
                           float* rows_out, float* rows_rms_out, float* cols_out, double* col_sq,
                           std::uint64_t* col_n) {
  if (rows == 0 || cols == 0) return {};
  DeviceArray<float> dr, drms;
  DeviceArray<unsigned> dc;
  DeviceArray<double> dsq;
  DeviceArray<unsigned long long> dn;
  if (auto e = dr.alloc(rows); !e.empty()) return e;
  if (auto e = drms.alloc(rows); !e.empty()) return e;
  if (auto e = dc.alloc(cols); !e.empty()) return e;
  if (auto e = dsq.alloc(cols); !e.empty()) return e;
  if (auto e = dn.alloc(cols); !e.empty()) return e;
  if (auto e = check(cudaMemset(dc.p, 0, cols * sizeof(unsigned)), "cudaMemset"); !e.empty()) return e;
  if (auto e = check(cudaMemset(dsq.p, 0, cols * sizeof(double)), "cudaMemset"); !e.empty()) return e;
  if (auto e = check(cudaMemset(dn.p, 0, cols * sizeof(unsigned long long)), "cudaMemset"); !e.empty()) return e;
  const int grid = static_cast<int>(std::min<std::uint64_t>(rows, 65535));
  channel_absmax_kernel<<<grid, kThreads>>>(buf.data(), t, rows, cols, dr.p, drms.p, dc.p, dsq.p, dn.p);
  if (auto e = check(cudaGetLastError(), "channel_absmax launch"); !e.empty()) return e;
  std::vector<unsigned> hc(cols);
  std::vector<double> hsq(cols);
  std::vector<unsigned long long> hn(cols);
  if (auto e = check(cudaMemcpy(rows_out, dr.p, rows * sizeof(float), cudaMemcpyDeviceToHost), "row maxima"); !e.empty())
    return e;
  if (auto e = check(cudaMemcpy(rows_rms_out, drms.p, rows * sizeof(float), cudaMemcpyDeviceToHost), "row rms"); !e.empty())
    return e;
  if (auto e = check(cudaMemcpy(hc.data(), dc.p, cols * sizeof(unsigned), cudaMemcpyDeviceToHost), "column maxima");
      !e.empty())
    return e;
  if (auto e = check(cudaMemcpy(hsq.data(), dsq.p, cols * sizeof(double), cudaMemcpyDeviceToHost), "column squares");
      !e.empty())
    return e;
  if (auto e = check(cudaMemcpy(hn.data(), dn.p, cols * sizeof(unsigned long long), cudaMemcpyDeviceToHost), "column counts");
      !e.empty())
    return e;
  for (std::uint64_t c = 0; c < cols; ++c) {
    float v;
    std::memcpy(&v, &hc[c], sizeof v);
    cols_out[c] = std::max(cols_out[c], v);
    col_sq[c] += hsq[c];
    col_n[c] += hn[c];
  }
  return {};
}

}  // namespace qs::cuda
