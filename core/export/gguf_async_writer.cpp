#include "export/gguf_async_writer.h"

#include "util/atomic_file.h"

namespace qs {

GgufAsyncWriter::GgufAsyncWriter(AtomicFile& file, std::uint64_t alignment)
    : file_(file), alignment_(alignment), thread_([this] { run(); }) {}

GgufAsyncWriter::~GgufAsyncWriter() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

void GgufAsyncWriter::run() {
  std::unique_lock<std::mutex> lock(mutex_);
  for (;;) {
    cv_.wait(lock, [&] { return stop_ || job_.has_value(); });
    if (!job_) return;  // stopping with nothing queued
    Job job = std::move(*job_);
    job_.reset();
    busy_ = true;
    const bool skip = error_.has_value();  // after a failure nothing more is written
    lock.unlock();
    Result<void> r;
    if (!skip) r = GgufWriter::write_tensor(file_, *job.layout, job.bytes, alignment_);
    if (job.after) job.after();
    lock.lock();
    if (!r && !error_) error_ = r.error();
    busy_ = false;
    cv_.notify_all();
  }
}

Result<void> GgufAsyncWriter::wait_idle(std::unique_lock<std::mutex>& lock) {
  cv_.wait(lock, [&] { return !busy_ && !job_; });
  if (error_) return *error_;
  return {};
}

Result<void> GgufAsyncWriter::submit(const GgufTensorLayout& layout, std::span<const std::byte> bytes,
                                     std::function<void()> after) {
  std::unique_lock<std::mutex> lock(mutex_);
  if (auto r = wait_idle(lock); !r) return r;
  job_ = Job{&layout, bytes, std::move(after)};
  cv_.notify_all();
  return {};
}

Result<void> GgufAsyncWriter::finish() {
  std::unique_lock<std::mutex> lock(mutex_);
  return wait_idle(lock);
}

}  // namespace qs
