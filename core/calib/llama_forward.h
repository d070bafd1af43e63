#pragma once
// The llama-family forward pass on the CPU (Llama, Mistral, Qwen2-style):
// embedding, RMSNorm, RoPE, grouped-query attention with a causal mask and a
// KV cache, SwiGLU MLP, residuals, final norm, lm_head (tied or not), optional
// q/k/v biases. F32 compute; weights are decoded to F32 once at load through
// convert_to_f32 (F32/F16/BF16 and the GGUF block types). A whole sequence is
// processed at a time: the linear layers are GEMMs (OpenBLAS when the build has
// it, else Eigen), attention runs per head and query block on the ThreadPool.
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "util/op_context.h"
#include "util/result.h"

namespace qs {

struct Model;
struct TensorInfo;
class ThreadPool;

struct LlamaConfig {
  int hidden = 0;
  int layers = 0;
  int heads = 0;
  int kv_heads = 0;
  int head_dim = 0;
  int ffn = 0;
  int vocab = 0;
  int max_position = 0;  // 0: not stated
  float rms_eps = 1e-5f;
  double rope_theta = 10000.0;
  double rope_linear_factor = 1.0;  // "linear" rope scaling: positions divided by this
  // Per-frequency divisors (head_dim / 2 of them; empty: none): GGUF files of
  // Llama-3.1-style models carry their "llama3" RoPE scaling as rope_freqs.weight.
  std::vector<float> rope_freq_factors;
  // Which elements RoPE rotates together. GGUF llama files pair (2i, 2i+1)
  // (llama.cpp's converter permuted the Q/K rows); HF checkpoints and GGUF
  // qwen2 pair (i, i + head_dim/2) ("rotate half", NeoX).
  bool rope_interleaved = false;
  bool tied_embeddings = false;
  bool qkv_bias = false;
};

// The inputs of a block's linear layers (q/k/v share one, gate/up another).
enum class LlamaLinearInput { Attention /* q, k, v */, AttentionOutput /* o */, Mlp /* gate, up */, MlpDown /* down */ };

class LlamaModel {
 public:
  // Reads the weights of an opened llama-family model (HF names
  // model.layers.N.* or GGUF blk.N.*), checking every shape.
  static Result<LlamaModel> load(const Model& m, OpContext& ctx = OpContext::none());
  // The same, with every weight passed through `transform` once decoded to
  // F32: evaluation of a plan replaces weights by their fake-quantized values.
  using WeightTransform = std::function<Result<void>(const TensorInfo& tensor, std::vector<float>& values)>;
  static Result<LlamaModel> load(const Model& m, OpContext& ctx, const WeightTransform& transform);

  const LlamaConfig& config() const { return cfg_; }
  std::uint64_t weight_bytes() const;  // F32 bytes held

  struct Block {
    std::vector<float> attn_norm, wq, wk, wv, wo, bq, bk, bv, ffn_norm, w_gate, w_up, w_down;
  };
  const std::vector<float>& embedding() const { return embed_; }
  const std::vector<float>& output_norm() const { return out_norm_; }
  const std::vector<float>& lm_head() const { return tied() ? embed_ : lm_head_; }
  const std::vector<Block>& blocks() const { return blocks_; }

  // W8A8 evaluation (SmoothQuant): a linear input divided by `smooth` (empty:
  // by 1) and fake-quantized per token, symmetric absmax to `bits`, before its
  // GEMMs; the weights then hold Q(W diag(s)). bits 0: the input is left alone.
  struct InputQuant {
    std::vector<float> smooth;
    int bits = 0;
  };
  void set_input_quant(int layer, LlamaLinearInput input, InputQuant q);
  // Null when the input is not quantized.
  const InputQuant* input_quant(int layer, LlamaLinearInput input) const;
  bool quantizes_inputs() const { return !input_quant_.empty(); }

 private:
  bool tied() const { return cfg_.tied_embeddings; }
  std::vector<InputQuant> input_quant_;  // [layer * 4 + input] once any is set
  LlamaConfig cfg_;
  std::vector<float> embed_, out_norm_, lm_head_;
  std::vector<Block> blocks_;
};

// The keys and values of the positions run so far, for incremental decoding.
class LlamaCache {
 public:
  LlamaCache(const LlamaConfig& cfg, int capacity);
  int capacity() const { return capacity_; }
  int position() const { return pos_; }  // tokens held
  void clear() { pos_ = 0; }

 private:
  friend class LlamaRunner;
  int capacity_ = 0, pos_ = 0, kv_dim_ = 0;
  std::vector<std::vector<float>> k_, v_;  // per layer [capacity, kv_heads * head_dim]
};

// Runs a LlamaModel; holds scratch buffers, so one runner per thread.
class LlamaRunner {
 public:
  // `pool` runs attention and the row-wise steps (nullptr: ThreadPool::global()).
  explicit LlamaRunner(const LlamaModel& model, ThreadPool* pool = nullptr);

  // Runs `tokens` at positions cache.position() … and appends them to the cache.
  // `logits` receives the logits of the last `logit_rows` tokens (all when
  // logit_rows < 0), row-major [rows, vocab].
  Result<void> forward(LlamaCache& cache, std::span<const std::int32_t> tokens, std::vector<float>& logits,
                       int logit_rows = -1);

  const LlamaModel& model() const { return model_; }

  // The inputs of the linear layers, as forward() computes them: calibration
  // (Hessians X^T X for GPTQ, activation statistics for AWQ/SmoothQuant)
  // watches them without a second implementation of the model.
  using LinearInput = LlamaLinearInput;
  using Observer = std::function<void(int layer, LinearInput input, const float* x, std::int64_t rows, std::int64_t cols)>;
  void set_observer(Observer observer) { observer_ = std::move(observer); }

 private:
  // The model's W8A8 input quantization of (layer, input), in place, when it has one.
  void quantize_input(int layer, LinearInput input, float* x, std::int64_t rows, std::int64_t cols);

  Observer observer_;
  const LlamaModel& model_;
  ThreadPool* pool_;
  std::vector<float> x_, xn_, q_, k_, v_, att_, gate_, up_;
};

// Greedy decoding: runs `prompt`, then appends the argmax token (the first
// among equal logits) up to `max_new_tokens` times, stopping before `stop_token`
// (-1: never). Returns the new tokens.
Result<std::vector<std::int32_t>> generate_greedy(const LlamaModel& model, std::span<const std::int32_t> prompt,
                                                  int max_new_tokens, std::int32_t stop_token,
                                                  OpContext& ctx = OpContext::none());

}  // namespace qs
