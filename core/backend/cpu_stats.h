#pragma once
// CPU implementations of the statistics pass, used by CpuBackend.
#include "backend/backend.h"
#include "backend/thread_pool.h"

namespace qs::cpu {

// 8- and 16-bit types: count every bit pattern once (exact, one pass), then
// derive moments and the histogram from the pattern counts.
Result<TensorStats> stats_by_pattern(const TensorData& t, const HistogramSpec& spec, ThreadPool& pool, OpContext& ctx);
// Other types: decode to F32 in chunks; pass 1 range and sums, pass 2 central moments + bins.
Result<TensorStats> stats_two_pass(const TensorData& t, const HistogramSpec& spec, ThreadPool& pool, OpContext& ctx);

}  // namespace qs::cpu
