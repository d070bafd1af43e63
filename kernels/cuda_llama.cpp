// Adapts cuda::LlamaDeviceRunner (plain pointers) to core's ForwardRunner:
// the same argument checks and error messages as LlamaRunner::forward, the
// RoPE tables from core's planning code, and a memory check with figures
// before anything is uploaded.
#include "cuda_llama.h"

#include <algorithm>

#include "calib/device_forward_plan.h"
#include "cuda_ops.h"

namespace qs {
namespace {

class CudaForwardRunner final : public ForwardRunner {
 public:
  CudaForwardRunner(std::unique_ptr<cuda::LlamaDeviceRunner> dev, std::string device, int vocab)
      : dev_(std::move(dev)), device_(std::move(device)), vocab_(vocab) {}
  std::string description() const override { return "CUDA (" + device_ + ")"; }
  int capacity() const override { return dev_->capacity(); }
  int position() const override { return dev_->position(); }
  void clear() override { dev_->clear(); }

  Result<void> forward(std::span<const std::int32_t> tokens, std::vector<float>& logits, int logit_rows) override {
    const auto n = static_cast<std::int64_t>(tokens.size());
    if (n == 0) return Error::invalid("forward: no tokens");
    if (position() + n > capacity())
      return Error::invalid("forward: " + std::to_string(position() + n) + " positions exceed the cache's " +
                            std::to_string(capacity()));
    for (const std::int32_t t : tokens)
      if (t < 0 || t >= vocab_) return Error::invalid("forward: token id " + std::to_string(t) + " is outside the vocabulary");
    const std::int64_t rows = logit_rows < 0 ? n : std::min<std::int64_t>(logit_rows, n);
    logits.resize(static_cast<std::size_t>(rows) * static_cast<std::size_t>(vocab_));
    if (auto e = dev_->forward(tokens.data(), static_cast<int>(n), static_cast<int>(rows), logits.data()); !e.empty())
      return Error::backend("CUDA forward pass: " + e);
    return {};
  }

  void set_observer(LlamaRunner::Observer observer) override {
    if (!observer) {
      dev_->set_host_observer(nullptr);
      return;
    }
    dev_->set_host_observer([obs = std::move(observer)](int layer, cuda::LinearInput input, const float* x,
                                                        std::int64_t rows, std::int64_t cols) {
      obs(layer, static_cast<LlamaRunner::LinearInput>(static_cast<int>(input)), x, rows, cols);
    });
  }

  cuda::LlamaDeviceRunner& device() { return *dev_; }

 private:
  std::unique_ptr<cuda::LlamaDeviceRunner> dev_;
  std::string device_;
  int vocab_;
};

// Same numbering on both sides of the boundary.
static_assert(static_cast<int>(LlamaRunner::LinearInput::Attention) == static_cast<int>(cuda::LinearInput::Attention));
static_assert(static_cast<int>(LlamaRunner::LinearInput::AttentionOutput) ==
              static_cast<int>(cuda::LinearInput::AttentionOutput));
static_assert(static_cast<int>(LlamaRunner::LinearInput::Mlp) == static_cast<int>(cuda::LinearInput::Mlp));
static_assert(static_cast<int>(LlamaRunner::LinearInput::MlpDown) == static_cast<int>(cuda::LinearInput::MlpDown));

const float* or_null(const std::vector<float>& v) { return v.empty() ? nullptr : v.data(); }

}  // namespace

std::unique_ptr<ForwardRunner> make_cuda_forward_runner(const LlamaModel& model, int capacity, std::string& why_not) {
  std::string name;
  why_not = cuda::probe_device(name);
  if (!why_not.empty()) return nullptr;
  const LlamaConfig& c = model.config();
  const DeviceForwardMemory need = device_forward_memory(c, capacity);
  std::uint64_t free_bytes = 0, total_bytes = 0;
  if (auto e = cuda::device_memory(free_bytes, total_bytes); !e.empty()) {
    why_not = e;
    return nullptr;
  }
  // Leave room for cuBLAS's workspace and the context.
  if (static_cast<double>(need.total()) > 0.9 * static_cast<double>(free_bytes)) {
    why_not = name + " " + describe_device_shortfall(need, free_bytes);
    return nullptr;
  }
  const RopeTables rope = make_rope_tables(c, capacity);
  cuda::LlamaHost host;
  host.shape = {c.hidden, c.layers, c.heads, c.kv_heads, c.head_dim, c.ffn, c.vocab, c.rms_eps, c.rope_interleaved};
  host.embedding = model.embedding().data();
  host.output_norm = model.output_norm().data();
  host.lm_head = model.lm_head().data();  // the embedding's own data when tied
  host.rope_cos = rope.cos.data();
  host.rope_sin = rope.sin.data();
  for (const LlamaModel::Block& b : model.blocks())
    host.layers.push_back({b.attn_norm.data(), b.wq.data(), b.wk.data(), b.wv.data(), b.wo.data(), or_null(b.bq),
                           or_null(b.bk), or_null(b.bv), b.ffn_norm.data(), b.w_gate.data(), b.w_up.data(),
                           b.w_down.data()});
  std::unique_ptr<cuda::LlamaDeviceRunner> dev;
  why_not = cuda::LlamaDeviceRunner::create(host, capacity, dev);
  if (!why_not.empty()) return nullptr;
  return std::make_unique<CudaForwardRunner>(std::move(dev), name, c.vocab);
}

bool set_cuda_device_observer(ForwardRunner& runner, cuda::LlamaDeviceRunner::DeviceObserver observer) {
  auto* cuda_runner = dynamic_cast<CudaForwardRunner*>(&runner);
  if (!cuda_runner) return false;
  cuda_runner->device().set_device_observer(std::move(observer));
  return true;
}

}  // namespace qs
