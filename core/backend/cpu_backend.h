#pragma once
#include <memory>

#include "backend/backend.h"

namespace qs {

class ThreadPool;

// The CPU backend: threaded over the global ThreadPool, loops written for the
// compiler's vectoriser, F16 decode with F16C where the CPU has it.
class CpuBackend final : public Backend {
 public:
  explicit CpuBackend(ThreadPool* pool = nullptr);  // nullptr: ThreadPool::global()
  std::string name() const override { return "cpu"; }
  bool is_host() const override { return true; }
  std::string description() const override;
  Result<TensorStats> tensor_stats(const TensorData& t, const HistogramSpec& spec, OpContext& ctx) override;
  Result<ChannelAbsMax> channel_absmax(const TensorData& t, OpContext& ctx) override;
  Result<Heatmap> abs_heatmap(const TensorData& t, const HeatmapRequest& req, OpContext& ctx) override;

 private:
  ThreadPool& pool_;
};

// The process-wide CPU backend (the CPU device's, calib/device.h).
std::shared_ptr<Backend> cpu_backend();

}  // namespace qs
