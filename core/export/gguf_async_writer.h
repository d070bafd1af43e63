#pragma once
// Writes GGUF tensors on a thread of its own, one at a time in order, so that
// the export encodes tensor k+1 while tensor k goes into the file: the kernel's
// copy into the page cache took a third of a Q8_0 export's CPU time, serial,
// with a core idle. The caller keeps each buffer alive until the next submit()
// returns (submit waits for the previous write), so two buffers suffice.
#include <condition_variable>
#include <functional>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <thread>

#include "export/gguf_writer.h"
#include "util/result.h"

namespace qs {

class AtomicFile;

class GgufAsyncWriter {
 public:
  GgufAsyncWriter(AtomicFile& file, std::uint64_t alignment);
  ~GgufAsyncWriter();  // waits for the write in flight
  GgufAsyncWriter(const GgufAsyncWriter&) = delete;
  GgufAsyncWriter& operator=(const GgufAsyncWriter&) = delete;

  // Waits for the previous tensor's write, returns its error if it failed, and
  // queues this one; `after` (may be empty) runs on the writer once it is written.
  Result<void> submit(const GgufTensorLayout& layout, std::span<const std::byte> bytes, std::function<void()> after = {});
  // Waits for the last write; its result.
  Result<void> finish();

 private:
  struct Job {
    const GgufTensorLayout* layout;
    std::span<const std::byte> bytes;
    std::function<void()> after;
  };
  void run();
  Result<void> wait_idle(std::unique_lock<std::mutex>& lock);

  AtomicFile& file_;
  std::uint64_t alignment_;
  std::mutex mutex_;
  std::condition_variable cv_;
  std::optional<Job> job_;
  bool busy_ = false, stop_ = false;
  std::optional<Error> error_;
  std::thread thread_;  // last: starts once the rest is set up
};

}  // namespace qs
