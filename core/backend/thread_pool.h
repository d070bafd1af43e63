#pragma once
// A fixed pool of worker threads for data-parallel loops. The calling thread
// takes part, so a pool of N runs N tasks at once with N-1 helper threads.
#include <condition_variable>
#include <cstddef>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace qs {

class ThreadPool {
 public:
  explicit ThreadPool(unsigned threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  unsigned size() const { return static_cast<unsigned>(workers_.size()) + 1; }

  // Runs fn(task, worker) for task in [0, tasks); worker in [0, size()) is
  // unique among the calls running at the same time (for per-worker scratch).
  // Tasks are handed out dynamically. Calls from several threads are serialised;
  // a call from inside a task runs its tasks inline on the calling thread.
  void parallel_for(std::size_t tasks, const std::function<void(std::size_t task, unsigned worker)>& fn);

  // The process-wide pool: QS_THREADS or the hardware thread count.
  static ThreadPool& global();

 private:
  void worker_loop(unsigned id);
  void run_tasks(unsigned worker);

  std::vector<std::thread> workers_;
  std::mutex job_mutex_;  // one parallel_for at a time
  std::mutex m_;
  std::condition_variable wake_, done_;
  const std::function<void(std::size_t, unsigned)>* fn_ = nullptr;
  std::size_t tasks_ = 0, next_ = 0;
  unsigned busy_ = 0;
  std::size_t generation_ = 0;
  bool stop_ = false;
};

}  // namespace qs
