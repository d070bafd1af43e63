#include "calib/forward_runner.h"

#include <algorithm>

#include "backend/thread_pool.h"

namespace qs {
namespace {

class CpuForwardRunner final : public ForwardRunner {
 public:
  CpuForwardRunner(const LlamaModel& model, int capacity, ThreadPool* pool)
      : runner_(model, pool), cache_(model.config(), capacity), threads_(pool ? pool->size() : ThreadPool::global().size()) {}
  std::string description() const override { return "CPU (" + std::to_string(threads_) + " threads)"; }
  int capacity() const override { return cache_.capacity(); }
  int position() const override { return cache_.position(); }
  void clear() override { cache_.clear(); }
  Result<void> forward(std::span<const std::int32_t> tokens, std::vector<float>& logits, int logit_rows) override {
    return runner_.forward(cache_, tokens, logits, logit_rows);
  }
  void set_observer(LlamaRunner::Observer observer) override { runner_.set_observer(std::move(observer)); }

 private:
  LlamaRunner runner_;
  LlamaCache cache_;
  unsigned threads_;
};

}  // namespace

std::unique_ptr<ForwardRunner> make_cpu_forward_runner(const LlamaModel& model, int capacity, ThreadPool* pool) {
  return std::make_unique<CpuForwardRunner>(model, capacity, pool);
}

Result<std::vector<std::int32_t>> generate_greedy(ForwardRunner& runner, std::span<const std::int32_t> prompt,
                                                  int max_new_tokens, std::int32_t stop_token, OpContext& ctx) {
  if (prompt.empty()) return Error::invalid("generate: the prompt is empty (give at least BOS)");
  const auto needed = static_cast<std::int64_t>(prompt.size()) + std::max(max_new_tokens, 0);
  if (needed > runner.capacity())
    return Error::invalid("generate: " + std::to_string(needed) + " positions exceed the runner's cache of " +
                          std::to_string(runner.capacity()));
  runner.clear();
  std::vector<std::int32_t> out;
  std::vector<float> logits;
  std::vector<std::int32_t> next(prompt.begin(), prompt.end());
  for (int step = 0; step < max_new_tokens; ++step) {
    if (ctx.cancelled()) return Error::cancelled();
    if (auto r = runner.forward(next, logits, 1); !r) return r.error();
    const auto best = static_cast<std::int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());
    if (best == stop_token) break;
    out.push_back(best);
    next.assign(1, best);
    ctx.progress(static_cast<double>(step + 1) / max_new_tokens);
  }
  return out;
}

}  // namespace qs
