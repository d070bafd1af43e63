#pragma once
#include <cstdint>
#include <memory>
#include <span>
#include <string>

#include "calib/forward_runner.h"

namespace qs::cli {

// The forward runner for --backend (auto, cpu, cuda; empty: $QS_BACKEND or
// auto) with a cache for chunks of `ctx` tokens out of `tokens` — sized no
// larger than the text or the model's positions, so a bad --ctx is refused by
// the evaluation's own checks rather than by a huge allocation. A device that
// cannot run prints why on stderr and the CPU runs instead.
Result<std::unique_ptr<ForwardRunner>> pick_forward_runner(const LlamaModel& model, std::span<const std::int32_t> tokens,
                                                           int ctx, const std::string& backend);

}  // namespace qs::cli
