// Round-to-nearest onto an integer grid, fused with dequantization and the
// weight error: one warp per group (a row's run of group_size columns, or a
// whole row), which finds the group's range with shuffles, fits the grid with
// grid_math.h's grid_from_range and quantizes with its grid_code, so codes,
// scales and zeros are bit-identical with core/quant/int_grid.cpp. Error sums
// are per-block partials in double, merged on the host in block order
// (deterministic; they differ from the CPU's only by summation order).
#include <cmath>
#include <vector>

#include "cuda_util.cuh"
#include "grid_math.h"

namespace qs::cuda {
namespace {

using detail::check;
using detail::DeviceArray;
using detail::kThreads;
using detail::load_elem;
constexpr int kWarps = kThreads / 32;
constexpr unsigned kFull = 0xffffffffu;

struct RtnPartial {
  double err_sq, ref_sq, max_abs;
};
struct RangePartial {
  float lo, hi;
  unsigned bad;  // a NaN or Inf was seen
};

__device__ __forceinline__ float warp_min(float v) {
  for (int o = 16; o > 0; o >>= 1) v = grid_math::min_of(v, __shfl_xor_sync(kFull, v, o));
  return v;
}
__device__ __forceinline__ float warp_max(float v) {
  for (int o = 16; o > 0; o >>= 1) v = grid_math::max_of(v, __shfl_xor_sync(kFull, v, o));
  return v;
}

// The whole tensor's range, for a per-tensor grid: per-block partials.
__global__ void range_kernel(const void* data, ElemType t, std::uint64_t n, RangePartial* out) {
  float lo = INFINITY, hi = -INFINITY;
  unsigned bad = 0;
  const std::uint64_t stride = static_cast<std::uint64_t>(gridDim.x) * blockDim.x;
  for (std::uint64_t i = blockIdx.x * static_cast<std::uint64_t>(blockDim.x) + threadIdx.x; i < n; i += stride) {
    const float v = load_elem(data, t, i);
    if (!isfinite(v)) { bad = 1; continue; }
    lo = grid_math::min_of(lo, v);
    hi = grid_math::max_of(hi, v);
  }
  lo = warp_min(lo);
  hi = warp_max(hi);
  bad = __any_sync(kFull, bad) ? 1u : 0u;
  __shared__ RangePartial s[kWarps];
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  if (lane == 0) s[warp] = {lo, hi, bad};
  __syncthreads();
  if (threadIdx.x == 0) {
    RangePartial r = s[0];
    for (int k = 1; k < kWarps; ++k) {
      r.lo = grid_math::min_of(r.lo, s[k].lo);
      r.hi = grid_math::max_of(r.hi, s[k].hi);
      r.bad |= s[k].bad;
    }
    out[blockIdx.x] = r;
  }
}

struct RtnArgs {
  const void* data;
  ElemType type;
  std::uint64_t rows, cols, group_len;  // group_len: columns per group (cols for a per-row or per-tensor grid)
  int groups_per_row, bits;
  bool symmetric, tensor_grid;
  float tensor_scale, tensor_zero;
  std::uint8_t* codes;
  float *scales, *zeros, *dequantized;  // dequantized may be null
  RtnPartial* partials;                 // per block
  unsigned* bad;                        // set when a group held NaN/Inf
};

__global__ void rtn_kernel(RtnArgs a) {
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const std::uint64_t segments = a.rows * static_cast<std::uint64_t>(a.groups_per_row);
  const float top = static_cast<float>((1 << a.bits) - 1);
  double err_sq = 0, ref_sq = 0;
  float max_abs = 0.0f;
  for (std::uint64_t s = static_cast<std::uint64_t>(blockIdx.x) * kWarps + warp; s < segments;
       s += static_cast<std::uint64_t>(gridDim.x) * kWarps) {
    const std::uint64_t r = s / static_cast<std::uint64_t>(a.groups_per_row), g = s % static_cast<std::uint64_t>(a.groups_per_row);
    const std::uint64_t base = r * a.cols + g * a.group_len;
    float scale = a.tensor_scale, zero = a.tensor_zero;
    if (!a.tensor_grid) {
      float lo = INFINITY, hi = -INFINITY;
      unsigned bad = 0;
      for (std::uint64_t c = lane; c < a.group_len; c += 32) {
        const float v = load_elem(a.data, a.type, base + c);
        if (!isfinite(v)) bad = 1;
        lo = grid_math::min_of(lo, v);
        hi = grid_math::max_of(hi, v);
      }
      if (__any_sync(kFull, bad)) {  // the host reports it (with the CPU's message)
        if (lane == 0) atomicOr(a.bad, 1u);
        continue;
      }
      lo = warp_min(lo);
      hi = warp_max(hi);
      grid_math::grid_from_range(lo, hi, a.bits, a.symmetric, scale, zero);
    }
    if (lane == 0) {
      a.scales[s] = scale;
      a.zeros[s] = zero;
    }
    for (std::uint64_t c = lane; c < a.group_len; c += 32) {
      const float x = load_elem(a.data, a.type, base + c);
      const float q = grid_math::grid_code(x, scale, zero, top);
      const float v = grid_math::grid_value(q, scale, zero);
      const float e = grid_math::sub_rn(x, v);
      a.codes[base + c] = static_cast<std::uint8_t>(q);
      if (a.dequantized) a.dequantized[base + c] = v;
      err_sq += static_cast<double>(e) * e;
      ref_sq += static_cast<double>(x) * x;
      max_abs = fmaxf(max_abs, fabsf(e));
    }
  }
  __shared__ double s_err[kThreads], s_ref[kThreads];
  __shared__ float s_max[kThreads];
  const int tid = threadIdx.x;
  s_err[tid] = err_sq;
  s_ref[tid] = ref_sq;
  s_max[tid] = max_abs;
  __syncthreads();
  for (int k = blockDim.x / 2; k > 0; k >>= 1) {
    if (tid < k) {
      s_err[tid] += s_err[tid + k];
      s_ref[tid] += s_ref[tid + k];
      s_max[tid] = fmaxf(s_max[tid], s_max[tid + k]);
    }
    __syncthreads();
  }
  if (tid == 0) a.partials[blockIdx.x] = {s_err[0], s_ref[0], static_cast<double>(s_max[0])};
}

std::size_t elem_bytes(ElemType t) { return t == ElemType::F32 ? 4 : 2; }

}  // namespace

std::string rtn_int(const RtnRequest& req, std::uint8_t* codes, float* scales, float* zeros, float* dequantized,
                    RtnResult& out) {
  out = RtnResult{};
  const std::uint64_t n = req.rows * req.cols;
  if (n == 0) return {};
  if (req.bits < 2 || req.bits > 8 || req.group_size < -1 || (req.group_size > 0 && req.cols % req.group_size != 0))
    return "rtn_int: invalid grid (checked by the caller)";
  const int gpr = req.group_size > 0 ? static_cast<int>(req.cols / static_cast<std::uint64_t>(req.group_size)) : 1;
  const std::uint64_t group_len = req.group_size > 0 ? static_cast<std::uint64_t>(req.group_size) : req.cols;
  const std::uint64_t segments = req.rows * static_cast<std::uint64_t>(gpr);

  DeviceArray<unsigned char> d_in;
  DeviceArray<std::uint8_t> d_codes;
  DeviceArray<float> d_scales, d_zeros, d_deq;
  DeviceArray<unsigned> d_bad;
  if (auto e = d_in.alloc(n * elem_bytes(req.type)); !e.empty()) return e;
  if (auto e = d_in.upload(static_cast<const unsigned char*>(req.data), n * elem_bytes(req.type)); !e.empty()) return e;
  if (auto e = d_codes.alloc(n); !e.empty()) return e;
  if (auto e = d_scales.alloc(segments); !e.empty()) return e;
  if (auto e = d_zeros.alloc(segments); !e.empty()) return e;
  if (dequantized)
    if (auto e = d_deq.alloc(n); !e.empty()) return e;
  if (auto e = d_bad.alloc(1); !e.empty()) return e;
  if (auto e = check(cudaMemset(d_bad.p, 0, sizeof(unsigned)), "cudaMemset"); !e.empty()) return e;

  RtnArgs a{};
  a.data = d_in.p;
  a.type = req.type;
  a.rows = req.rows;
  a.cols = req.cols;
  a.group_len = group_len;
  a.groups_per_row = gpr;
  a.bits = req.bits;
  a.symmetric = req.symmetric;
  a.tensor_grid = req.group_size == -1;
  if (a.tensor_grid) {
    const int grid = detail::grid_for(n);
    DeviceArray<RangePartial> d_range;
    if (auto e = d_range.alloc(static_cast<std::size_t>(grid)); !e.empty()) return e;
    range_kernel<<<grid, kThreads>>>(d_in.p, req.type, n, d_range.p);
    if (auto e = check(cudaGetLastError(), "range launch"); !e.empty()) return e;
    std::vector<RangePartial> h(static_cast<std::size_t>(grid));
    if (auto e = d_range.download(h.data(), h.size()); !e.empty()) return e;
    RangePartial r = h[0];
    for (std::size_t k = 1; k < h.size(); ++k) {
      r.lo = grid_math::min_of(r.lo, h[k].lo);
      r.hi = grid_math::max_of(r.hi, h[k].hi);
      r.bad |= h[k].bad;
    }
    if (r.bad) {
      out.finite = false;
      return {};
    }
    grid_math::grid_from_range(r.lo, r.hi, req.bits, req.symmetric, a.tensor_scale, a.tensor_zero);
  }
  a.codes = d_codes.p;
  a.scales = d_scales.p;
  a.zeros = d_zeros.p;
  a.dequantized = dequantized ? d_deq.p : nullptr;
  a.bad = d_bad.p;
  const int grid = detail::grid_for(segments, kWarps);
  DeviceArray<RtnPartial> d_part;
  if (auto e = d_part.alloc(static_cast<std::size_t>(grid)); !e.empty()) return e;
  a.partials = d_part.p;
  rtn_kernel<<<grid, kThreads>>>(a);
  if (auto e = check(cudaGetLastError(), "rtn launch"); !e.empty()) return e;

  unsigned bad = 0;
  if (auto e = d_bad.download(&bad, 1); !e.empty()) return e;
  if (bad) {
    out.finite = false;
    return {};
  }
  std::vector<RtnPartial> parts(static_cast<std::size_t>(grid));
  if (auto e = d_part.download(parts.data(), parts.size()); !e.empty()) return e;
  for (const RtnPartial& p : parts) {
    out.err_sq += p.err_sq;
    out.ref_sq += p.ref_sq;
    out.max_abs = std::max(out.max_abs, p.max_abs);
  }
  if (auto e = d_codes.download(codes, n); !e.empty()) return e;
  if (auto e = d_scales.download(scales, segments); !e.empty()) return e;
  if (auto e = d_zeros.download(zeros, segments); !e.empty()) return e;
  if (dequantized)
    if (auto e = d_deq.download(dequantized, n); !e.empty()) return e;
  return {};
}

}  // namespace qs::cuda
