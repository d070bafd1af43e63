// The llama forward pass on a CUDA device: cuBLAS SGEMM for the linear
// layers and small kernels for everything else, mirroring
// core/calib/llama_forward.cpp step by step so that the two agree to float
// rounding (the parity test in tests/core/test_cuda_forward.cpp holds them to
// 1e-4 on the logits). Element-wise arithmetic uses the _rn intrinsics where
// the CPU code has a multiply next to an add: nvcc would otherwise contract
// them into FMAs, which the CPU build (x86-64 baseline, no FMA) does not do.
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "llama_forward_ops.h"

namespace qs::cuda {
namespace {

std::string check(cudaError_t e, const char* what) {
  if (e == cudaSuccess) return {};
  return std::string(what) + ": " + cudaGetErrorString(e);
}

std::string check_blas(cublasStatus_t s, const char* what) {
  if (s == CUBLAS_STATUS_SUCCESS) return {};
  return std::string(what) + ": " + cublasGetStatusString(s);
}

constexpr int kRowThreads = 256;   // row-wise kernels: one block per token row
constexpr int kAttnThreads = 128;  // attention: one block per (head, query), 4 warps
constexpr int kAttnTile = 1024;    // keys whose probabilities sit in shared memory at once

// ---- reductions ------------------------------------------------------------

__device__ double block_sum_double(double v, double* red) {
  const int tid = static_cast<int>(threadIdx.x);
  red[tid] = v;
  __syncthreads();
  for (int s = static_cast<int>(blockDim.x) / 2; s > 0; s >>= 1) {  // blockDim is a power of two
    if (tid < s) red[tid] += red[tid + s];
    __syncthreads();
  }
  const double r = red[0];
  __syncthreads();
  return r;
}

// Max or sum over the block (blockDim a multiple of 32, at most 1024); `red` holds 32 floats.
template <bool kMax>
__device__ float block_reduce(float v, float* red) {
  const int lane = static_cast<int>(threadIdx.x) & 31, warp = static_cast<int>(threadIdx.x) >> 5;
  const int warps = static_cast<int>(blockDim.x) >> 5;
  for (int o = 16; o > 0; o >>= 1) {
    const float other = __shfl_xor_sync(0xffffffffu, v, o);
    v = kMax ? fmaxf(v, other) : v + other;
  }
  if (lane == 0) red[warp] = v;
  __syncthreads();
  if (warp == 0) {
    v = lane < warps ? red[lane] : (kMax ? -INFINITY : 0.0f);
    for (int o = 16; o > 0; o >>= 1) {
      const float other = __shfl_xor_sync(0xffffffffu, v, o);
      v = kMax ? fmaxf(v, other) : v + other;
    }
    if (lane == 0) red[0] = v;
  }
  __syncthreads();
  const float r = red[0];
  __syncthreads();  // red is reused by the caller's next reduction
  return r;
}

// ---- kernels -----------------------------------------------------------------

// x[row] = embedding[token[row]]
__global__ void embed_kernel(const std::int32_t* tokens, const float* emb, std::int64_t h, float* x) {
  const std::int64_t row = blockIdx.x;
  const float* src = emb + static_cast<std::int64_t>(tokens[row]) * h;
  for (std::int64_t j = threadIdx.x; j < h; j += blockDim.x) x[row * h + j] = src[j];
}

// out = x / sqrt(mean(x^2) + eps) * w per row; the sum of squares in double as on the CPU.
__global__ void rms_norm_kernel(const float* x, std::int64_t h, const float* w, float eps, float* out) {
  __shared__ double red[kRowThreads];
  const std::int64_t row = blockIdx.x;
  const float* r = x + row * h;
  double ss = 0;
  for (std::int64_t j = threadIdx.x; j < h; j += blockDim.x) ss += static_cast<double>(r[j]) * r[j];
  ss = block_sum_double(ss, red);
  const float scale = static_cast<float>(1.0 / sqrt(ss / static_cast<double>(h) + static_cast<double>(eps)));
  float* o = out + row * h;
  for (std::int64_t j = threadIdx.x; j < h; j += blockDim.x) o[j] = __fmul_rn(__fmul_rn(r[j], scale), w[j]);
}

// y[row, j] += b[j]
__global__ void add_bias_kernel(float* y, std::int64_t m, const float* b) {
  const std::int64_t row = blockIdx.x;
  for (std::int64_t j = threadIdx.x; j < m; j += blockDim.x) y[row * m + j] += b[j];
}

// x += y over n elements
__global__ void add_kernel(float* x, const float* y, std::int64_t n) {
  for (std::int64_t i = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<std::int64_t>(gridDim.x) * blockDim.x)
    x[i] += y[i];
}

// g = SiLU(g) * u = g / (1 + exp(-g)) * u
__global__ void silu_mul_kernel(float* g, const float* u, std::int64_t n) {
  for (std::int64_t i = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<std::int64_t>(gridDim.x) * blockDim.x) {
    const float v = g[i];
    g[i] = __fmul_rn(__fdiv_rn(v, __fadd_rn(1.0f, expf(-v))), u[i]);
  }
}

// Rotates every head of row `blockIdx.x` ([rows, heads * d]) at position pos0 + row,
// with the host's cos/sin tables [positions, d / 2].
__global__ void rope_kernel(float* x, int heads, int d, int pos0, const float* cos_t, const float* sin_t,
                            bool interleaved) {
  const std::int64_t row = blockIdx.x;
  const int half = d / 2;
  const float* cs = cos_t + (pos0 + row) * half;
  const float* sn = sin_t + (pos0 + row) * half;
  for (int k = static_cast<int>(threadIdx.x); k < heads * half; k += static_cast<int>(blockDim.x)) {
    const int head = k / half, i = k % half;
    float* v = x + (row * heads + head) * d;
    const int a = interleaved ? 2 * i : i;
    const int b = interleaved ? 2 * i + 1 : i + half;
    const float x0 = v[a], x1 = v[b], co = cs[i], si = sn[i];
    v[a] = __fsub_rn(__fmul_rn(x0, co), __fmul_rn(x1, si));
    v[b] = __fadd_rn(__fmul_rn(x0, si), __fmul_rn(x1, co));
  }
}

// Causal softmax attention with grouped-query heads, one block per (head, query):
// query i (position pos0 + i) sees cache rows 0 … pos0 + i. Keys go through
// shared memory in tiles of kAttnTile with a running max and sum (so any
// context length fits), one warp per key for the dot products (coalesced rows
// of K), one thread per output element for P·V (coalesced rows of V).
// Cost: every block reads its visible K and V rows, so a chunk of n tokens
// moves heads * n * (pos0 + n/2) * head_dim * 8 bytes — quadratic in n, fine
// for perplexity chunks of a few thousand tokens; a flash-style kernel that
// shares K/V tiles between queries is the next step when this shows in profiles.
__global__ void attention_kernel(const float* q, const float* k_cache, const float* v_cache, float* out, int heads,
                                 int kv_heads, int d, int pos0, float scale) {
  extern __shared__ float sh[];
  float* qv = sh;             // [d]
  float* acc = qv + d;        // [d] unnormalised output
  float* p = acc + d;         // [kAttnTile] scores, then exp(score - running max)
  float* red = p + kAttnTile;  // [32]
  const int head = static_cast<int>(blockIdx.x);
  const std::int64_t i = blockIdx.y;
  const int tid = static_cast<int>(threadIdx.x), bd = static_cast<int>(blockDim.x);
  const int lane = tid & 31, warp = tid >> 5, warps = bd >> 5;
  const std::int64_t qd = static_cast<std::int64_t>(heads) * d, kvd = static_cast<std::int64_t>(kv_heads) * d;
  const std::int64_t kv_off = static_cast<std::int64_t>(head / (heads / kv_heads)) * d;
  const std::int64_t keys = pos0 + i + 1;
  for (int t = tid; t < d; t += bd) {
    qv[t] = q[i * qd + static_cast<std::int64_t>(head) * d + t];
    acc[t] = 0.0f;
  }
  __syncthreads();
  float m = -INFINITY, l = 0.0f;  // running max and sum of exp, the same in every thread
  for (std::int64_t k0 = 0; k0 < keys; k0 += kAttnTile) {
    const int kn = static_cast<int>(keys - k0 < kAttnTile ? keys - k0 : kAttnTile);
    for (int j = warp; j < kn; j += warps) {
      const float* kr = k_cache + (k0 + j) * kvd + kv_off;
      float s = 0.0f;
      for (int t = lane; t < d; t += 32) s += qv[t] * kr[t];
      for (int o = 16; o > 0; o >>= 1) s += __shfl_xor_sync(0xffffffffu, s, o);
      if (lane == 0) p[j] = scale * s;
    }
    __syncthreads();
    float tile_max = -INFINITY;
    for (int j = tid; j < kn; j += bd) tile_max = fmaxf(tile_max, p[j]);
    tile_max = block_reduce<true>(tile_max, red);
    const float m_new = fmaxf(m, tile_max);
    const float alpha = expf(m - m_new);  // 0 on the first tile (m = -inf)
    float tile_sum = 0.0f;
    for (int j = tid; j < kn; j += bd) {
      const float e = expf(p[j] - m_new);
      p[j] = e;
      tile_sum += e;
    }
    tile_sum = block_reduce<false>(tile_sum, red);  // its barriers also publish p
    for (int t = tid; t < d; t += bd) {
      float a = 0.0f;
      const float* vcol = v_cache + k0 * kvd + kv_off + t;
      for (int j = 0; j < kn; ++j) a += p[j] * vcol[j * kvd];
      acc[t] = acc[t] * alpha + a;
    }
    l = l * alpha + tile_sum;
    m = m_new;
    __syncthreads();  // p is rewritten by the next tile
  }
  const float inv = 1.0f / l;
  for (int t = tid; t < d; t += bd) out[i * qd + static_cast<std::int64_t>(head) * d + t] = acc[t] * inv;
}

int grid_for(std::int64_t n) {
  const std::int64_t blocks = (n + kRowThreads - 1) / kRowThreads;
  return static_cast<int>(blocks < 65535 ? (blocks > 0 ? blocks : 1) : 65535);
}

}  // namespace

std::string device_memory(std::uint64_t& free_bytes, std::uint64_t& total_bytes) {
  std::size_t f = 0, t = 0;
  if (auto e = check(cudaMemGetInfo(&f, &t), "cudaMemGetInfo"); !e.empty()) return e;
  free_bytes = f;
  total_bytes = t;
  return {};
}

struct LlamaDeviceRunner::Impl {
  struct Layer {
    const float *attn_norm = nullptr, *wq = nullptr, *wk = nullptr, *wv = nullptr, *wo = nullptr;
    const float *bq = nullptr, *bk = nullptr, *bv = nullptr;
    const float *ffn_norm = nullptr, *w_gate = nullptr, *w_up = nullptr, *w_down = nullptr;
    float *k_cache = nullptr, *v_cache = nullptr;  // [capacity, kv_heads * head_dim]
  };
  LlamaShape s;
  int capacity = 0, pos = 0;
  cudaStream_t stream = nullptr;
  cublasHandle_t blas = nullptr;
  std::vector<void*> allocations;
  const float *embedding = nullptr, *output_norm = nullptr, *lm_head = nullptr, *rope_cos = nullptr, *rope_sin = nullptr;
  std::vector<Layer> layers;
  float *x = nullptr, *xn = nullptr, *q = nullptr, *att = nullptr, *gate = nullptr, *up = nullptr, *logits = nullptr;
  std::int32_t* tokens = nullptr;
  std::vector<float> host_copy;
  HostObserver host_observer;
  DeviceObserver device_observer;

  ~Impl() {
    if (blas) cublasDestroy(blas);
    if (stream) cudaStreamDestroy(stream);
    for (void* ptr : allocations) cudaFree(ptr);
  }

  template <typename T>
  std::string alloc(T*& out, std::size_t count) {
    void* ptr = nullptr;
    if (auto e = check(cudaMalloc(&ptr, count * sizeof(T) + (count == 0)), "cudaMalloc"); !e.empty()) return e;
    allocations.push_back(ptr);
    out = static_cast<T*>(ptr);
    return {};
  }
  std::string upload(const float*& out, const float* host, std::size_t count) {
    if (!host) {
      out = nullptr;
      return {};
    }
    float* ptr = nullptr;
    if (auto e = alloc(ptr, count); !e.empty()) return e;
    out = ptr;
    return check(cudaMemcpy(ptr, host, count * sizeof(float), cudaMemcpyHostToDevice), "cudaMemcpy weights to device");
  }

  // Y [n, out] = X [n, in] W^T with W row-major [out, in]. cuBLAS is
  // column-major: there Y is Y^T [out, n] = W [out, in] (W's row-major bytes
  // read as column-major are W^T, hence OP_T) times X^T [in, n] (OP_N).
  std::string linear(const float* xin, int n, int in, const float* w, int out, float* y) const {
    const float one = 1.0f, zero = 0.0f;
    return check_blas(cublasSgemm(blas, CUBLAS_OP_T, CUBLAS_OP_N, out, n, in, &one, w, in, xin, in, &zero, y, out),
                      "cublasSgemm");
  }

  std::string observe(int layer, LinearInput input, const float* dev, std::int64_t rows, std::int64_t cols) {
    if (!host_observer && !device_observer) return {};
    if (auto e = check(cudaStreamSynchronize(stream), "forward"); !e.empty()) return e;
    if (device_observer) device_observer(layer, input, dev, rows, cols);
    if (host_observer) {
      host_copy.resize(static_cast<std::size_t>(rows * cols));
      if (auto e = check(cudaMemcpy(host_copy.data(), dev, host_copy.size() * sizeof(float), cudaMemcpyDeviceToHost),
                         "cudaMemcpy linear input to host");
          !e.empty())
        return e;
      host_observer(layer, input, host_copy.data(), rows, cols);
    }
    return {};
  }
};

LlamaDeviceRunner::LlamaDeviceRunner(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
LlamaDeviceRunner::~LlamaDeviceRunner() = default;
int LlamaDeviceRunner::capacity() const { return impl_->capacity; }
int LlamaDeviceRunner::position() const { return impl_->pos; }
void LlamaDeviceRunner::clear() { impl_->pos = 0; }
void LlamaDeviceRunner::set_host_observer(HostObserver observer) { impl_->host_observer = std::move(observer); }
void LlamaDeviceRunner::set_device_observer(DeviceObserver observer) { impl_->device_observer = std::move(observer); }

std::string LlamaDeviceRunner::create(const LlamaHost& host, int capacity, std::unique_ptr<LlamaDeviceRunner>& out) {
  out.reset();
  const LlamaShape& s = host.shape;
  if (capacity < 1) return "the cache must hold at least one position";
  if (capacity > 65535) return "a cache of more than 65535 positions is not supported (one grid row per query)";
  if (s.head_dim % 2 != 0 || s.kv_heads <= 0 || s.heads % s.kv_heads != 0 ||
      static_cast<int>(host.layers.size()) != s.layers)
    return "inconsistent model shape";
  auto r = std::make_unique<Impl>();
  r->s = s;
  r->capacity = capacity;
  if (auto e = check(cudaSetDevice(0), "cudaSetDevice"); !e.empty()) return e;
  if (auto e = check(cudaStreamCreateWithFlags(&r->stream, cudaStreamNonBlocking), "cudaStreamCreate"); !e.empty()) return e;
  if (auto e = check_blas(cublasCreate(&r->blas), "cublasCreate"); !e.empty()) return e;
  if (auto e = check_blas(cublasSetStream(r->blas, r->stream), "cublasSetStream"); !e.empty()) return e;
  // Plain FP32 SGEMM: TF32 tensor-core math would cost ~1e-3 relative and break CPU parity.
  if (auto e = check_blas(cublasSetMathMode(r->blas, CUBLAS_DEFAULT_MATH), "cublasSetMathMode"); !e.empty()) return e;

  const std::size_t h = static_cast<std::size_t>(s.hidden), d = static_cast<std::size_t>(s.head_dim),
                    qd = static_cast<std::size_t>(s.heads) * d, kvd = static_cast<std::size_t>(s.kv_heads) * d,
                    f = static_cast<std::size_t>(s.ffn), v = static_cast<std::size_t>(s.vocab),
                    n = static_cast<std::size_t>(capacity);
  std::string e;
  auto up = [&](const float*& dst, const float* src, std::size_t count) {
    if (e.empty()) e = r->upload(dst, src, count);
  };
  up(r->embedding, host.embedding, v * h);
  up(r->output_norm, host.output_norm, h);
  if (host.lm_head == host.embedding)
    r->lm_head = r->embedding;  // tied: one copy
  else
    up(r->lm_head, host.lm_head, v * h);
  up(r->rope_cos, host.rope_cos, n * d / 2);
  up(r->rope_sin, host.rope_sin, n * d / 2);
  r->layers.resize(host.layers.size());
  for (std::size_t l = 0; l < host.layers.size() && e.empty(); ++l) {
    const LlamaLayerHost& hl = host.layers[l];
    Impl::Layer& dl = r->layers[l];
    up(dl.attn_norm, hl.attn_norm, h);
    up(dl.wq, hl.wq, qd * h);
    up(dl.wk, hl.wk, kvd * h);
    up(dl.wv, hl.wv, kvd * h);
    up(dl.wo, hl.wo, h * qd);
    up(dl.bq, hl.bq, qd);
    up(dl.bk, hl.bk, kvd);
    up(dl.bv, hl.bv, kvd);
    up(dl.ffn_norm, hl.ffn_norm, h);
    up(dl.w_gate, hl.w_gate, f * h);
    up(dl.w_up, hl.w_up, f * h);
    up(dl.w_down, hl.w_down, h * f);
    if (e.empty()) e = r->alloc(dl.k_cache, n * kvd);
    if (e.empty()) e = r->alloc(dl.v_cache, n * kvd);
  }
  if (e.empty()) e = r->alloc(r->x, n * h);
  if (e.empty()) e = r->alloc(r->xn, n * (h > qd ? h : qd));
  if (e.empty()) e = r->alloc(r->q, n * qd);
  if (e.empty()) e = r->alloc(r->att, n * qd);
  if (e.empty()) e = r->alloc(r->gate, n * f);
  if (e.empty()) e = r->alloc(r->up, n * f);
  if (e.empty()) e = r->alloc(r->logits, n * v);
  if (e.empty()) e = r->alloc(r->tokens, n);
  if (!e.empty()) return e;
  const std::size_t attn_shared = (2 * d + kAttnTile + 32) * sizeof(float);
  if (attn_shared > 48 * 1024) return "head_dim " + std::to_string(d) + " is too large for the attention kernel";
  out.reset(new LlamaDeviceRunner(std::move(r)));
  return {};
}

std::string LlamaDeviceRunner::forward(const std::int32_t* tokens, int n, int logit_rows, float* logits_host) {
  Impl& r = *impl_;
  const LlamaShape& s = r.s;
  if (n < 1 || r.pos + n > r.capacity || logit_rows < 0 || logit_rows > n) return "forward: bad arguments";
  const int h = s.hidden, d = s.head_dim, qd = s.heads * d, kvd = s.kv_heads * d, f = s.ffn;
  const int pos0 = r.pos;
  cudaStream_t st = r.stream;
  std::string e;
  auto launched = [&](const char* what) {
    if (e.empty()) e = check(cudaGetLastError(), what);
  };
  auto gemm = [&](const float* xin, int rows, int in, const float* w, int out, float* y) {
    if (e.empty()) e = r.linear(xin, rows, in, w, out, y);
  };
  auto observe = [&](int layer, LinearInput input, const float* dev, int rows, int cols) {
    if (e.empty()) e = r.observe(layer, input, dev, rows, cols);
  };
  e = check(cudaMemcpyAsync(r.tokens, tokens, static_cast<std::size_t>(n) * sizeof(std::int32_t), cudaMemcpyHostToDevice, st),
            "cudaMemcpy tokens");
  if (!e.empty()) return e;
  embed_kernel<<<n, kRowThreads, 0, st>>>(r.tokens, r.embedding, h, r.x);
  launched("embedding");
  const float scale = 1.0f / std::sqrt(static_cast<float>(d));
  const std::size_t attn_shared = (2 * static_cast<std::size_t>(d) + kAttnTile + 32) * sizeof(float);
  const std::int64_t nh = static_cast<std::int64_t>(n) * h, nf = static_cast<std::int64_t>(n) * f;
  for (int l = 0; l < s.layers && e.empty(); ++l) {
    const Impl::Layer& L = r.layers[static_cast<std::size_t>(l)];
    float* kc = L.k_cache + static_cast<std::int64_t>(pos0) * kvd;  // this call's rows of the cache
    float* vc = L.v_cache + static_cast<std::int64_t>(pos0) * kvd;
    rms_norm_kernel<<<n, kRowThreads, 0, st>>>(r.x, h, L.attn_norm, s.rms_eps, r.xn);
    launched("rms_norm");
    observe(l, LinearInput::Attention, r.xn, n, h);
    gemm(r.xn, n, h, L.wq, qd, r.q);
    gemm(r.xn, n, h, L.wk, kvd, kc);
    gemm(r.xn, n, h, L.wv, kvd, vc);
    if (L.bq) add_bias_kernel<<<n, kRowThreads, 0, st>>>(r.q, qd, L.bq);
    if (L.bk) add_bias_kernel<<<n, kRowThreads, 0, st>>>(kc, kvd, L.bk);
    if (L.bv) add_bias_kernel<<<n, kRowThreads, 0, st>>>(vc, kvd, L.bv);
    launched("bias");
    rope_kernel<<<n, kRowThreads, 0, st>>>(r.q, s.heads, d, pos0, r.rope_cos, r.rope_sin, s.rope_interleaved);
    rope_kernel<<<n, kRowThreads, 0, st>>>(kc, s.kv_heads, d, pos0, r.rope_cos, r.rope_sin, s.rope_interleaved);
    launched("rope");
    attention_kernel<<<dim3(static_cast<unsigned>(s.heads), static_cast<unsigned>(n)), kAttnThreads, attn_shared, st>>>(
        r.q, L.k_cache, L.v_cache, r.att, s.heads, s.kv_heads, d, pos0, scale);
    launched("attention");
    observe(l, LinearInput::AttentionOutput, r.att, n, qd);
    gemm(r.att, n, qd, L.wo, h, r.xn);
    add_kernel<<<grid_for(nh), kRowThreads, 0, st>>>(r.x, r.xn, nh);
    rms_norm_kernel<<<n, kRowThreads, 0, st>>>(r.x, h, L.ffn_norm, s.rms_eps, r.xn);
    launched("residual + rms_norm");
    observe(l, LinearInput::Mlp, r.xn, n, h);
    gemm(r.xn, n, h, L.w_gate, f, r.gate);
    gemm(r.xn, n, h, L.w_up, f, r.up);
    silu_mul_kernel<<<grid_for(nf), kRowThreads, 0, st>>>(r.gate, r.up, nf);
    launched("silu * up");
    observe(l, LinearInput::MlpDown, r.gate, n, f);
    gemm(r.gate, n, f, L.w_down, h, r.xn);
    add_kernel<<<grid_for(nh), kRowThreads, 0, st>>>(r.x, r.xn, nh);
    launched("residual");
  }
  if (!e.empty()) return e;
  if (logit_rows > 0) {
    const int first = n - logit_rows;
    rms_norm_kernel<<<logit_rows, kRowThreads, 0, st>>>(r.x + static_cast<std::int64_t>(first) * h, h, r.output_norm,
                                                        s.rms_eps, r.xn);
    launched("output norm");
    gemm(r.xn, logit_rows, h, r.lm_head, s.vocab, r.logits);
    if (e.empty())
      e = check(cudaMemcpyAsync(logits_host, r.logits,
                                static_cast<std::size_t>(logit_rows) * static_cast<std::size_t>(s.vocab) * sizeof(float),
                                cudaMemcpyDeviceToHost, st),
                "cudaMemcpy logits to host");
  }
  if (e.empty()) e = check(cudaStreamSynchronize(st), "forward");
  if (e.empty()) r.pos = pos0 + n;
  return e;
}

}  // namespace qs::cuda
