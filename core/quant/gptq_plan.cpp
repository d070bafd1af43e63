#include "quant/gptq_plan.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

namespace qs {

Result<GptqPlan> plan_gptq(const float* w, std::int64_t rows, std::int64_t cols, const float* h, const GptqSpec& spec) {
  if (spec.block_type != DType::Unknown)
    return Error::invalid("GPTQ plan: ggml block grids (" + std::string(dtype_name(spec.block_type)) +
                          ") are planned by gptq() itself, not here");
  if (rows < 1 || cols < 1 || cols > std::numeric_limits<std::int32_t>::max())
    return Error::invalid("GPTQ: the weight is " + std::to_string(rows) + " x " + std::to_string(cols) +
                          " (needs at least one row and column)");
  // The same checks, in the same order and words, as gptq().
  if (auto r = validate_int_grid(spec.grid, cols); !r) return r.error();
  if (spec.grid.group_size < 0) return Error::invalid("GPTQ: per-tensor grids are not supported (use per channel or groups)");
  if (spec.block_size < 1) return Error::invalid("GPTQ: block size must be positive");
  if (!(spec.percdamp >= 0)) return Error::invalid("GPTQ: percdamp must be >= 0");
  for (std::int64_t i = 0; i < rows * cols; ++i)
    if (!std::isfinite(w[i])) return Error::invalid("GPTQ: weight " + std::to_string(i) + " is not finite");

  GptqPlan p;
  p.rows = rows;
  p.cols = cols;
  p.group_size = spec.grid.group_size;
  p.groups = p.group_size > 0 ? static_cast<int>(cols / p.group_size) : 1;
  const auto n = static_cast<std::size_t>(cols);
  auto diag = [&](std::int64_t c) { return h[c * cols + c]; };
  p.dead.resize(n);
  for (std::int64_t c = 0; c < cols; ++c) p.dead[static_cast<std::size_t>(c)] = diag(c) == 0 ? 1 : 0;
  p.perm.resize(n);
  std::iota(p.perm.begin(), p.perm.end(), 0);
  // Sorted on the raw diagonal (dead inputs, 0, go last), stable: gptq.cpp's order.
  if (spec.act_order)
    std::stable_sort(p.perm.begin(), p.perm.end(), [&](std::int32_t a, std::int32_t b) { return diag(a) > diag(b); });
  // gptq.cpp sums the diagonal of J H J (walk order reversed) in double, then
  // adds the damping rounded to F32 to each F32 diagonal entry.
  p.damped_diag.resize(n);
  for (std::size_t pos = 0; pos < n; ++pos) {
    const std::int32_t c = p.perm[pos];
    p.damped_diag[pos] = p.dead[static_cast<std::size_t>(c)] ? 1.0f : diag(c);
  }
  double mean_diag = 0;
  for (std::size_t i = 0; i < n; ++i) mean_diag += p.damped_diag[n - 1 - i];
  mean_diag /= static_cast<double>(cols);
  const float damp = static_cast<float>(spec.percdamp * mean_diag);
  for (float& d : p.damped_diag) d += damp;
  // Dynamic groups are formed along the walk; static ones (and all groups
  // without act-order) on the original column order.
  p.g_idx.assign(n, 0);
  if (p.group_size > 0)
    for (std::size_t pos = 0; pos < n; ++pos) {
      const std::int32_t c = p.perm[pos];
      const auto along = spec.static_groups || !spec.act_order ? static_cast<std::size_t>(c) : pos;
      p.g_idx[static_cast<std::size_t>(c)] = static_cast<std::int32_t>(along / static_cast<std::size_t>(p.group_size));
    }
  return p;
}

}  // namespace qs
