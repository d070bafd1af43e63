#include "calib/forward_runner.h"

#include <algorithm>
#include <cstdlib>
#include <map>
#include <mutex>

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

std::mutex g_mutex;
std::map<std::string, ForwardRunnerFactory>& factories() {
  static std::map<std::string, ForwardRunnerFactory> f;
  return f;
}

}  // namespace

std::unique_ptr<ForwardRunner> make_cpu_forward_runner(const LlamaModel& model, int capacity, ThreadPool* pool) {
  return std::make_unique<CpuForwardRunner>(model, capacity, pool);
}

void register_forward_runner_factory(const std::string& name, ForwardRunnerFactory factory) {
  std::lock_guard lock(g_mutex);
  factories()[name] = std::move(factory);
}

Result<ForwardRunnerChoice> make_forward_runner(const LlamaModel& model, int capacity, std::string choice, ThreadPool* pool) {
  if (choice.empty()) {
    const char* env = std::getenv("QS_BACKEND");
    choice = (env && *env) ? env : "auto";
  }
  ForwardRunnerChoice out;
  if (choice == "cpu") {
    out.runner = make_cpu_forward_runner(model, capacity, pool);
    return out;
  }
  std::vector<std::pair<std::string, ForwardRunnerFactory>> candidates;
  {
    std::lock_guard lock(g_mutex);
    if (choice == "auto") {
      for (const auto& [name, f] : factories()) candidates.emplace_back(name, f);
    } else if (auto it = factories().find(choice); it != factories().end()) {
      candidates.emplace_back(it->first, it->second);
    } else if (choice != "cuda") {
      return Error::invalid("unknown backend \"" + choice + "\" for the forward pass (use auto, cpu or cuda)");
    }
  }
  if (candidates.empty()) {
    // "auto" without any device runner in this build is the ordinary CPU case: no reason to report.
    if (choice != "auto") out.fallback_reason = "this build has no " + choice + " forward pass (nvcc was not found when it was built)";
    out.runner = make_cpu_forward_runner(model, capacity, pool);
    return out;
  }
  if (model.quantizes_inputs()) {  // the device forward passes have no W8A8 input quantization
    if (choice != "auto") out.fallback_reason = "W8A8 activation quantization (SmoothQuant) runs on the CPU";
    out.runner = make_cpu_forward_runner(model, capacity, pool);
    return out;
  }
  std::string reasons;
  for (auto& [name, factory] : candidates) {  // outside the lock: a factory uploads weights
    std::string why;
    if (auto r = factory(model, capacity, why)) {
      out.runner = std::move(r);
      return out;
    }
    reasons += (reasons.empty() ? "" : "; ") + name + ": " + (why.empty() ? std::string("unavailable") : why);
  }
  out.fallback_reason = reasons;
  out.runner = make_cpu_forward_runner(model, capacity, pool);
  return out;
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
