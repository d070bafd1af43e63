#pragma once
// The boundary between core's llama forward pass and its CUDA version: plain
// types and raw host pointers only (no core headers), so that nvcc compiles
// llama_forward.cu in isolation. cuda_llama.cpp fills these from a LlamaModel.
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace qs::cuda {

struct LlamaShape {
  int hidden = 0, layers = 0, heads = 0, kv_heads = 0, head_dim = 0, ffn = 0, vocab = 0;
  float rms_eps = 1e-5f;
  bool rope_interleaved = false;  // pairs (2i, 2i+1) (GGUF llama) or (i, i + head_dim/2) (HF, NeoX)
};

// Host F32 arrays, row-major, weights [out, in]. Biases may be null.
struct LlamaLayerHost {
  const float *attn_norm = nullptr, *wq = nullptr, *wk = nullptr, *wv = nullptr, *wo = nullptr;
  const float *bq = nullptr, *bk = nullptr, *bv = nullptr;
  const float *ffn_norm = nullptr, *w_gate = nullptr, *w_up = nullptr, *w_down = nullptr;
};
struct LlamaHost {
  LlamaShape shape;
  const float* embedding = nullptr;  // [vocab, hidden]
  const float* output_norm = nullptr;
  const float* lm_head = nullptr;    // [vocab, hidden]; may equal embedding (tied)
  std::vector<LlamaLayerHost> layers;
  // RoPE cos/sin [capacity, head_dim / 2], computed on the host exactly as the CPU does.
  const float* rope_cos = nullptr;
  const float* rope_sin = nullptr;
};

// Which linear-layer input an observer sees (same order as LlamaRunner::LinearInput).
enum class LinearInput : int { Attention = 0, AttentionOutput = 1, Mlp = 2, MlpDown = 3 };

// Free and total memory of device 0, in bytes; empty string on success.
std::string device_memory(std::uint64_t& free_bytes, std::uint64_t& total_bytes);

// The forward pass on device 0: weights uploaded once as F32, a KV cache of
// `capacity` positions, cuBLAS SGEMM for every linear layer (FP32 math, no
// TF32, for parity with the CPU), small kernels for the rest.
class LlamaDeviceRunner {
 public:
  // Uploads everything; on failure `out` stays empty and the reason is returned.
  static std::string create(const LlamaHost& host, int capacity, std::unique_ptr<LlamaDeviceRunner>& out);
  ~LlamaDeviceRunner();
  LlamaDeviceRunner(const LlamaDeviceRunner&) = delete;
  LlamaDeviceRunner& operator=(const LlamaDeviceRunner&) = delete;

  int capacity() const;
  int position() const;
  void clear();

  // Runs `n` tokens (ids already checked against the vocabulary, n >= 1,
  // position() + n <= capacity()) and appends them to the cache. Copies the
  // logits of the last `logit_rows` tokens (0 <= logit_rows <= n) into
  // `logits_host` [logit_rows, vocab]. Empty string on success.
  std::string forward(const std::int32_t* tokens, int n, int logit_rows, float* logits_host);

  // Host observer: each linear input copied back ([rows, cols] F32, valid
  // during the call). Costs a device-to-host copy per input; unset: none.
  using HostObserver = std::function<void(int layer, LinearInput input, const float* x, std::int64_t rows, std::int64_t cols)>;
  void set_host_observer(HostObserver observer);
  // Device observer: the device pointer itself, after the runner's stream
  // has been synchronized, so device-side consumers (Hessian accumulation)
  // avoid the copy. The data is overwritten once the callback returns.
  using DeviceObserver = HostObserver;
  void set_device_observer(DeviceObserver observer);

 private:
  struct Impl;
  explicit LlamaDeviceRunner(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace qs::cuda
