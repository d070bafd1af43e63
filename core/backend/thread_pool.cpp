#include "backend/thread_pool.h"

#include <algorithm>
#include <cstdlib>

namespace qs {

namespace {
// Set while a thread runs a task: a parallel_for from inside a task (a kernel
// that calls another) runs inline instead of waiting on the job lock it holds.
thread_local bool t_in_task = false;

struct TaskScope {
  bool previous;
  TaskScope() : previous(t_in_task) { t_in_task = true; }
  ~TaskScope() { t_in_task = previous; }
};
}  // namespace

ThreadPool::ThreadPool(unsigned threads) {
  threads = std::max(1u, threads);
  for (unsigned i = 1; i < threads; ++i) workers_.emplace_back([this, i] { worker_loop(i); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard lock(m_);
    stop_ = true;
  }
  wake_.notify_all();
  for (auto& t : workers_) t.join();
}

ThreadPool& ThreadPool::global() {
  static ThreadPool pool([] {
    if (const char* env = std::getenv("QS_THREADS")) {
      const int n = std::atoi(env);
      if (n > 0 && n <= 1024) return static_cast<unsigned>(n);
    }
    return std::max(1u, std::thread::hardware_concurrency());
  }());
  return pool;
}

void ThreadPool::run_tasks(unsigned worker) {
  for (;;) {
    std::size_t task;
    {
      std::lock_guard lock(m_);
      if (next_ >= tasks_) return;
      task = next_++;
    }
    TaskScope scope;
    (*fn_)(task, worker);
  }
}

void ThreadPool::worker_loop(unsigned id) {
  std::size_t seen = 0;
  for (;;) {
    {
      std::unique_lock lock(m_);
      wake_.wait(lock, [&] { return stop_ || generation_ != seen; });
      if (stop_) return;
      seen = generation_;
      ++busy_;
    }
    run_tasks(id);
    {
      std::lock_guard lock(m_);
      --busy_;
    }
    done_.notify_all();
  }
}

void ThreadPool::parallel_for(std::size_t tasks, const std::function<void(std::size_t, unsigned)>& fn) {
  if (tasks == 0) return;
  if (t_in_task) {  // nested: the caller is one of our workers, or holds the job lock
    TaskScope scope;
    for (std::size_t t = 0; t < tasks; ++t) fn(t, 0);
    return;
  }
  std::lock_guard job(job_mutex_);
  if (workers_.empty() || tasks == 1) {
    TaskScope scope;
    for (std::size_t t = 0; t < tasks; ++t) fn(t, 0);
    return;
  }
  {
    std::lock_guard lock(m_);
    fn_ = &fn;
    tasks_ = tasks;
    next_ = 0;
    ++generation_;
  }
  wake_.notify_all();
  run_tasks(0);
  std::unique_lock lock(m_);
  done_.wait(lock, [&] { return busy_ == 0 && next_ >= tasks_; });
  fn_ = nullptr;
}

}  // namespace qs
