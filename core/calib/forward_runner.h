#pragma once
// One interface over "a llama forward pass with its own KV cache", so that
// perplexity and greedy decoding run on the CPU (LlamaRunner) or on a device's
// runner (calib/device.h: make_forward_runner) — core never depends on CUDA.
// The contract is LlamaRunner::forward's: tokens run at positions
// position() …, are appended to the cache, and the logits of the last
// `logit_rows` tokens (all when < 0) come back row-major [rows, vocab].
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "calib/llama_forward.h"
#include "util/op_context.h"
#include "util/result.h"

namespace qs {

class ForwardRunner {
 public:
  virtual ~ForwardRunner() = default;
  // Where it runs, for users: "CPU (2 threads)", "CUDA (NVIDIA H100 80GB HBM3)".
  virtual std::string description() const = 0;
  virtual int capacity() const = 0;  // positions the cache holds
  virtual int position() const = 0;  // tokens held
  virtual void clear() = 0;          // empties the cache (a new sequence from position 0)
  virtual Result<void> forward(std::span<const std::int32_t> tokens, std::vector<float>& logits, int logit_rows = -1) = 0;
  // The linear layers' inputs, on the host, as LlamaRunner reports them. A
  // device runner copies each one back only while an observer is set.
  virtual void set_observer(LlamaRunner::Observer observer) = 0;
};

// LlamaRunner + LlamaCache behind the interface. `pool`: nullptr = ThreadPool::global().
std::unique_ptr<ForwardRunner> make_cpu_forward_runner(const LlamaModel& model, int capacity, ThreadPool* pool = nullptr);

// Greedy decoding on any runner (see generate_greedy in llama_forward.h);
// the runner's cache is cleared first and must hold prompt + max_new_tokens.
Result<std::vector<std::int32_t>> generate_greedy(ForwardRunner& runner, std::span<const std::int32_t> prompt,
                                                  int max_new_tokens, std::int32_t stop_token,
                                                  OpContext& ctx = OpContext::none());

}  // namespace qs
