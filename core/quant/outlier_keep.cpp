#include "quant/outlier_keep.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <string>

#include "util/half.h"

namespace qs {

Result<OutlierResult> outlier_keep(const float* w, std::int64_t rows, std::int64_t cols, const OutlierSpec& spec) {
  if (rows <= 0 || cols <= 0) return Error::invalid("outlier keeping: empty weight");
  if (auto r = validate_target(spec.target, cols); !r) return r.error();
  if (!(spec.fraction >= 0.0 && spec.fraction <= 1.0)) return Error::invalid("outlier keeping: fraction must be in [0, 1]");
  const auto n = static_cast<std::uint64_t>(rows * cols);
  if (n >= (std::uint64_t{1} << 32)) return Error::unsupported("outlier keeping: more than 2^32 weights (32-bit positions)");
  if (spec.select == OutlierSpec::Select::InputChannelsByActivation && !spec.act_absmax)
    return Error::invalid("outlier keeping by activation needs the per-channel activation max");
  for (std::uint64_t i = 0; i < n; ++i)
    if (!std::isfinite(w[i])) return Error::invalid("outlier keeping: weight " + std::to_string(i) + " is not finite");

  OutlierResult out;
  std::vector<std::uint8_t> kept(n, 0);
  if (spec.select == OutlierSpec::Select::Weights) {
    const auto k = static_cast<std::uint64_t>(std::llround(spec.fraction * static_cast<double>(n)));
    std::vector<std::uint32_t> idx(n);
    std::iota(idx.begin(), idx.end(), 0u);
    auto score = [&](std::uint32_t i) {
      const float a = std::fabs(w[i]);
      return spec.column_importance ? a * spec.column_importance[i % cols] : a;
    };
    // Largest score first; ties by position, so the kept set is deterministic.
    auto before = [&](std::uint32_t a, std::uint32_t b) {
      const float sa = score(a), sb = score(b);
      return sa != sb ? sa > sb : a < b;
    };
    if (k > 0 && k < n) std::nth_element(idx.begin(), idx.begin() + static_cast<std::ptrdiff_t>(k), idx.end(), before);
    for (std::uint64_t i = 0; i < k; ++i) kept[idx[i]] = 1;
    out.side_table_bits = 48.0 * static_cast<double>(k);
  } else {
    std::vector<float> colscore(static_cast<std::size_t>(cols), 0.0f);
    for (std::int64_t c = 0; c < cols; ++c)
      if (spec.select == OutlierSpec::Select::InputChannelsByActivation) colscore[static_cast<std::size_t>(c)] = std::fabs(spec.act_absmax[c]);
    if (spec.select == OutlierSpec::Select::InputChannelsByWeight)
      for (std::int64_t r = 0; r < rows; ++r)
        for (std::int64_t c = 0; c < cols; ++c)
          colscore[static_cast<std::size_t>(c)] = std::max(colscore[static_cast<std::size_t>(c)], std::fabs(w[r * cols + c]));
    const auto k = static_cast<std::int64_t>(std::llround(spec.fraction * static_cast<double>(cols)));
    std::vector<std::int32_t> order(static_cast<std::size_t>(cols));
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](std::int32_t a, std::int32_t b) {
      return colscore[static_cast<std::size_t>(a)] > colscore[static_cast<std::size_t>(b)];
    });
    out.kept_columns.assign(order.begin(), order.begin() + k);
    std::sort(out.kept_columns.begin(), out.kept_columns.end());
    for (std::int32_t c : out.kept_columns)
      for (std::int64_t r = 0; r < rows; ++r) kept[static_cast<std::size_t>(r * cols + c)] = 1;
    out.side_table_bits = static_cast<double>(k) * (32.0 + 16.0 * static_cast<double>(rows));
  }

  // The rest, with the kept weights zeroed so they do not set any scale.
  std::vector<float> rest(w, w + n);
  for (std::uint64_t i = 0; i < n; ++i)
    if (kept[i]) rest[i] = 0.0f;
  out.dequantized.resize(n);
  if (spec.target.kind == QuantTarget::Kind::IntGrid) {
    auto q = rtn_int(rest.data(), rows, cols, spec.target.grid);
    if (!q) return q.error();
    out.q = std::move(*q);
    dequantize_int_into(out.q, out.dequantized.data());
  } else if (auto r = fake_quantize(spec.target, rest.data(), rows, cols, out.dequantized.data()); !r) {
    return r.error();
  }
  // The side table holds what the rest misses there, in F16 (integer grids
  // dequantize a zeroed weight to exactly 0, so this is w itself).
  for (std::uint64_t i = 0; i < n; ++i) {
    if (!kept[i]) continue;
    const float v = f16_to_f32(f32_to_f16(w[i] - out.dequantized[i]));
    out.row.push_back(static_cast<std::int32_t>(i / static_cast<std::uint64_t>(cols)));
    out.col.push_back(static_cast<std::int32_t>(i % static_cast<std::uint64_t>(cols)));
    out.value.push_back(v);
    out.dequantized[i] += v;
  }
  out.bits_per_weight = spec.target.bits_per_weight(rows, cols) + out.side_table_bits / static_cast<double>(n);
  out.error = weight_error(w, out.dequantized.data(), n);
  return out;
}

}  // namespace qs
