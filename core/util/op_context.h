#pragma once
// OpContext: what every long core function takes, so that callers (a Qt job,
// the CLI) can watch progress and cancel. Cheap to check from inner loops.
#include <atomic>
#include <functional>

namespace qs {

class OpContext {
 public:
  OpContext() = default;
  explicit OpContext(std::function<void(double)> on_progress) : on_progress_(std::move(on_progress)) {}

  // Progress in [0, 1]. May be called from worker threads; the callback must be thread-safe.
  void progress(double fraction) const {
    if (on_progress_) on_progress_(fraction);
  }
  void cancel() { cancelled_.store(true, std::memory_order_relaxed); }
  bool cancelled() const { return cancelled_.load(std::memory_order_relaxed); }

  static OpContext& none() {
    static OpContext ctx;
    return ctx;
  }

 private:
  std::function<void(double)> on_progress_;
  std::atomic<bool> cancelled_{false};
};

// A step of a longer operation (one layer's GPTQ inside an export): its
// progress in [0, 1] lands in [begin, end] of the parent's, and it sees the
// parent's cancel (at its start and whenever it reports progress), so the
// step's own loops stop as they would for a direct cancel.
class OpStep {
 public:
  OpStep(OpContext& parent, double begin, double end)
      : ctx_([this, &parent, begin, end](double fraction) {
          parent.progress(begin + (end - begin) * fraction);
          if (parent.cancelled()) ctx_.cancel();
        }) {
    if (parent.cancelled()) ctx_.cancel();
  }
  OpStep(const OpStep&) = delete;
  OpStep& operator=(const OpStep&) = delete;
  OpContext& context() { return ctx_; }

 private:
  OpContext ctx_;
};

}  // namespace qs
