#include "backend/cpu_backend.h"

#include <algorithm>
#include <cmath>

#include "backend/cpu_stats.h"
#include "backend/thread_pool.h"
#include "model/convert.h"

namespace qs {

Result<void> validate_histogram_spec(const HistogramSpec& spec) {
  if (spec.bins < 1 || spec.bins > kMaxHistogramBins)
    return Error::invalid("histogram bins must be between 1 and " + std::to_string(kMaxHistogramBins) + ", got " +
                          std::to_string(spec.bins));
  if (spec.lo && !std::isfinite(*spec.lo)) return Error::invalid("histogram range start is not a finite number");
  if (spec.hi && !std::isfinite(*spec.hi)) return Error::invalid("histogram range end is not a finite number");
  if (spec.lo && spec.hi && !(*spec.hi > *spec.lo)) return Error::invalid("histogram range is empty (end <= start)");
  return {};
}

std::shared_ptr<Backend> cpu_backend() {
  static const std::shared_ptr<Backend> cpu = std::make_shared<CpuBackend>();
  return cpu;
}

CpuBackend::CpuBackend(ThreadPool* pool) : pool_(pool ? *pool : ThreadPool::global()) {}

std::string CpuBackend::description() const {
  return "CPU (" + std::to_string(pool_.size()) + (pool_.size() == 1 ? " thread)" : " threads)");
}

Result<TensorStats> CpuBackend::tensor_stats(const TensorData& t, const HistogramSpec& spec, OpContext& ctx) {
  if (auto r = validate_histogram_spec(spec); !r) return r.error();
  const unsigned bits = dtype_bits(t.dtype);
  if ((bits == 8 || bits == 16) && dtype_is_float_convertible(t.dtype))
    return cpu::stats_by_pattern(t, spec, pool_, ctx);
  return cpu::stats_two_pass(t, spec, pool_, ctx);
}

Result<ChannelAbsMax> CpuBackend::channel_absmax(const TensorData& t, OpContext& ctx) {
  if (!dtype_is_float_convertible(t.dtype))
    return Error::unsupported("type " + std::string(dtype_name(t.dtype)) + ": not decodable yet");
  if (t.rows < 0 || t.cols < 0 || static_cast<std::uint64_t>(t.rows) * static_cast<std::uint64_t>(t.cols) != t.numel)
    return Error::invalid("channel_absmax: rows x cols does not match the element count");
  // Work on the matrix as stored; for channels-last tensors swap the results back.
  const auto rows = static_cast<std::size_t>(t.channels_last ? t.cols : t.rows);
  const auto cols = static_cast<std::size_t>(t.channels_last ? t.rows : t.cols);
  ChannelAbsMax out;
  out.rows.assign(rows, 0.0f);
  out.cols.assign(cols, 0.0f);
  out.rows_rms.assign(rows, 0.0f);
  out.cols_rms.assign(cols, 0.0f);
  if (t.numel == 0) return out;
  const auto row_bytes = dtype_bytes(t.dtype, cols);  // rows of block types are whole blocks
  if (!row_bytes) return Error::invalid("rows are not a whole number of " + std::string(dtype_name(t.dtype)) + " blocks");
  // Enough rows per task to amortise the per-worker column maxima.
  const std::size_t rows_per_task = std::max<std::size_t>(1, (std::size_t{1} << 16) / std::max<std::size_t>(cols, 1));
  const std::size_t tasks = (rows + rows_per_task - 1) / rows_per_task;
  const unsigned workers = pool_.size();
  std::vector<std::vector<float>> wcols(workers), buf(workers);
  std::vector<std::vector<double>> wsq(workers);  // per worker column sums of squares
  std::vector<std::vector<std::uint64_t>> wn(workers);  // and counts (NaN excluded)
  pool_.parallel_for(tasks, [&](std::size_t task, unsigned w) {
    if (ctx.cancelled()) return;
    if (wcols[w].empty()) {
      wcols[w].assign(cols, 0.0f);
      wsq[w].assign(cols, 0.0);
      wn[w].assign(cols, 0);
      buf[w].resize(cols);
    }
    float* cm = wcols[w].data();
    double* cs = wsq[w].data();
    std::uint64_t* cn = wn[w].data();
    float* x = buf[w].data();
    const std::size_t r1 = std::min(rows, (task + 1) * rows_per_task);
    for (std::size_t r = task * rows_per_task; r < r1; ++r) {
      (void)convert_to_f32(t.dtype, t.data + r * *row_bytes, cols, x);
      float rm = 0;
      double rs = 0;
      std::size_t rn = 0;
      for (std::size_t c = 0; c < cols; ++c) {
        const float a = std::fabs(x[c]);
        rm = a > rm ? a : rm;        // NaN compares false: ignored
        cm[c] = a > cm[c] ? a : cm[c];
        if (a == a) {
          const double sq = static_cast<double>(a) * a;
          rs += sq;
          cs[c] += sq;
          ++rn;
          ++cn[c];
        }
      }
      out.rows[r] = rm;
      out.rows_rms[r] = rn ? static_cast<float>(std::sqrt(rs / static_cast<double>(rn))) : 0.0f;
    }
  });
  if (ctx.cancelled()) return Error::cancelled();
  std::vector<double> col_sq(cols, 0.0);
  std::vector<std::uint64_t> col_n(cols, 0);
  for (unsigned w = 0; w < workers; ++w) {
    if (wcols[w].empty()) continue;
    for (std::size_t c = 0; c < cols; ++c) {
      out.cols[c] = std::max(out.cols[c], wcols[w][c]);
      col_sq[c] += wsq[w][c];
      col_n[c] += wn[w][c];
    }
  }
  for (std::size_t c = 0; c < cols; ++c)
    out.cols_rms[c] = col_n[c] ? static_cast<float>(std::sqrt(col_sq[c] / static_cast<double>(col_n[c]))) : 0.0f;
  if (t.channels_last) {
    std::swap(out.rows, out.cols);
    std::swap(out.rows_rms, out.cols_rms);
  }
  return out;
}

Result<Heatmap> plan_heatmap(const TensorData& t, const HeatmapRequest& req) {
  if (t.rows < 0 || t.cols < 0 || static_cast<std::uint64_t>(t.rows) * static_cast<std::uint64_t>(t.cols) != t.numel)
    return Error::invalid("heatmap: rows x cols does not match the element count");
  Heatmap h;
  h.row0 = req.row0;
  h.col0 = req.col0;
  h.row1 = req.row1 < 0 ? t.rows : req.row1;
  h.col1 = req.col1 < 0 ? t.cols : req.col1;
  if (h.row0 < 0 || h.col0 < 0 || h.row1 > t.rows || h.col1 > t.cols || h.row0 >= h.row1 || h.col0 >= h.col1)
    return Error::invalid("heatmap: region is empty or outside the tensor");
  if (req.out_rows < 1 || req.out_cols < 1 || req.out_rows > 16384 || req.out_cols > 16384)
    return Error::invalid("heatmap: output size must be 1..16384 per side");
  h.rows = static_cast<int>(std::min<std::int64_t>(req.out_rows, h.row1 - h.row0));
  h.cols = static_cast<int>(std::min<std::int64_t>(req.out_cols, h.col1 - h.col0));
  h.abs_max.assign(static_cast<std::size_t>(h.rows) * static_cast<std::size_t>(h.cols), 0.0f);
  return h;
}

Result<Heatmap> CpuBackend::abs_heatmap(const TensorData& t, const HeatmapRequest& req, OpContext& ctx) {
  if (!dtype_is_float_convertible(t.dtype))
    return Error::unsupported("type " + std::string(dtype_name(t.dtype)) + ": not decodable yet");
  auto planned = plan_heatmap(t, req);
  if (!planned) return planned.error();
  Heatmap h = std::move(*planned);
  // Stored matrix (channels-last tensors hold the transpose).
  const std::uint64_t scols = static_cast<std::uint64_t>(t.channels_last ? t.rows : t.cols);
  const auto row_bytes = dtype_bytes(t.dtype, scols);
  if (!row_bytes) return Error::invalid("rows are not a whole number of " + std::string(dtype_name(t.dtype)) + " blocks");
  const std::int64_t region_rows = h.row1 - h.row0, region_cols = h.col1 - h.col0;
  // Tile i covers rows [row0 + i*R/rows, row0 + (i+1)*R/rows): every element in exactly one tile.
  auto tile_of = [](std::int64_t offset, std::int64_t extent, int tiles) {
    return static_cast<int>(offset * tiles / extent);
  };
  const unsigned workers = pool_.size();
  std::vector<std::vector<float>> buf(workers);
  const std::int64_t stored_rows0 = t.channels_last ? h.col0 : h.row0;
  const std::int64_t stored_rows1 = t.channels_last ? h.col1 : h.row1;
  // Decode whole stored rows (block types decode per block); parallel over stored rows.
  const std::size_t tasks = static_cast<std::size_t>(stored_rows1 - stored_rows0);
  std::vector<std::vector<float>> partial(workers);
  pool_.parallel_for(tasks, [&](std::size_t task, unsigned w) {
    if (ctx.cancelled()) return;
    if (buf[w].empty()) {
      buf[w].resize(scols);
      partial[w].assign(h.abs_max.size(), 0.0f);
    }
    const std::int64_t sr = stored_rows0 + static_cast<std::int64_t>(task);
    (void)convert_to_f32(t.dtype, t.data + static_cast<std::uint64_t>(sr) * *row_bytes, scols, buf[w].data());
    float* out = partial[w].data();
    if (!t.channels_last) {
      const int ti = tile_of(sr - h.row0, region_rows, h.rows);
      for (std::int64_t c = h.col0; c < h.col1; ++c) {
        const float a = std::fabs(buf[w][static_cast<std::size_t>(c)]);
        float& cell = out[static_cast<std::size_t>(ti) * static_cast<std::size_t>(h.cols) +
                          static_cast<std::size_t>(tile_of(c - h.col0, region_cols, h.cols))];
        cell = a > cell ? a : cell;
      }
    } else {  // stored row sr is our column sr; stored columns are our rows
      const int tj = tile_of(sr - h.col0, region_cols, h.cols);
      for (std::int64_t r = h.row0; r < h.row1; ++r) {
        const float a = std::fabs(buf[w][static_cast<std::size_t>(r)]);
        float& cell = out[static_cast<std::size_t>(tile_of(r - h.row0, region_rows, h.rows)) * static_cast<std::size_t>(h.cols) +
                          static_cast<std::size_t>(tj)];
        cell = a > cell ? a : cell;
      }
    }
  });
  if (ctx.cancelled()) return Error::cancelled();
  for (const auto& p : partial)
    for (std::size_t i = 0; i < p.size(); ++i) h.abs_max[i] = std::max(h.abs_max[i], p[i]);
  return h;
}

}  // namespace qs
