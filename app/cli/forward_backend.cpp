#include "forward_backend.h"

#include <algorithm>
#include <cstdio>

#include "calib/device.h"

namespace qs::cli {

Result<std::unique_ptr<ForwardRunner>> pick_forward_runner(const LlamaModel& model, std::span<const std::int32_t> tokens,
                                                           int ctx, const std::string& backend) {
  std::int64_t capacity = std::min<std::int64_t>(ctx, static_cast<std::int64_t>(tokens.size()));
  if (model.config().max_position > 0) capacity = std::min<std::int64_t>(capacity, model.config().max_position);
  auto choice = make_forward_runner(model, static_cast<int>(std::max<std::int64_t>(capacity, 1)), backend);
  if (!choice) return choice.error();
  if (!choice->fallback_reason.empty())
    std::fprintf(stderr, "quantscope-cli: forward pass on the CPU: %s\n", choice->fallback_reason.c_str());
  return std::move(choice->runner);
}

}  // namespace qs::cli
