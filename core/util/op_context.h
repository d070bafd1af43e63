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

}  // namespace qs
