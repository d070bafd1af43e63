// The CUDA backend: core's Backend interface over the kernels in cuda_ops.h.
// Tensors stream through the device in chunks, so any size fits.
#include "cuda_backend.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "backend/cpu_backend.h"
#include "stats/percentiles.h"
#include "cuda_ops.h"
#include "cuda_quant.h"

namespace qs {
namespace {

// Elements per upload: 256 Mi elements (0.5-1 GiB), far below any data-centre GPU's memory.
constexpr std::uint64_t kChunkElems = std::uint64_t{1} << 28;

bool elem_type(DType t, cuda::ElemType& out) {
  switch (t) {
    case DType::F32: out = cuda::ElemType::F32; return true;
    case DType::F16: out = cuda::ElemType::F16; return true;
    case DType::BF16: out = cuda::ElemType::BF16; return true;
    default: return false;
  }
}

class CudaBackend final : public Backend {
 public:
  explicit CudaBackend(std::string device) : device_(std::move(device)) {}
  std::string name() const override { return "cuda"; }
  std::string description() const override { return "CUDA (" + device_ + ")"; }

  Result<TensorStats> tensor_stats(const TensorData& t, const HistogramSpec& spec, OpContext& ctx) override {
    if (auto r = validate_histogram_spec(spec); !r) return r.error();
    cuda::ElemType et;
    if (!elem_type(t.dtype, et)) return cpu_backend()->tensor_stats(t, spec, ctx);  // rare types stay on the CPU
    const std::uint64_t esize = dtype_bits(t.dtype) / 8;
    const std::uint64_t chunks = std::max<std::uint64_t>(1, (t.numel + kChunkElems - 1) / kChunkElems);
    cuda::DeviceBuffer buf;
    auto upload = [&](std::uint64_t c, std::uint64_t& n) -> std::string {
      const std::uint64_t begin = c * kChunkElems;
      n = std::min(kChunkElems, t.numel - begin);
      return buf.upload(t.data + begin * esize, n * esize);
    };

    cuda::Pass1 p1;
    p1.min = std::numeric_limits<double>::infinity();
    p1.max = -p1.min;
    p1.min_abs_nonzero = p1.min;
    for (std::uint64_t c = 0; c < chunks && t.numel; ++c) {
      if (ctx.cancelled()) return Error::cancelled();
      std::uint64_t n;
      if (auto e = upload(c, n); !e.empty()) return Error::backend(e);
      if (auto e = cuda::stats_pass1(buf, et, n, p1); !e.empty()) return Error::backend(e);
      ctx.progress(0.5 * static_cast<double>(c + 1) / static_cast<double>(chunks));
    }

    TensorStats s;
    s.count = p1.count; s.nan = p1.nan; s.inf = p1.inf;
    s.hist.scale = spec.scale;
    resolve_histogram_range(spec, p1.count ? p1.min : 0.0, p1.count ? p1.max : 0.0,
                            std::isfinite(p1.min_abs_nonzero) ? p1.min_abs_nonzero : 0.0, p1.abs_max, s.hist.lo,
                            s.hist.hi);
    const PercentileLocator locator(p1.key_hi, p1.count);
    cuda::Pass2Params pp;
    pp.mean = p1.count ? p1.sum / static_cast<double>(p1.count) : 0.0;
    // Tails against the first pass's sigma, as on the CPU.
    const double sigma1 =
        p1.count ? std::sqrt(std::max(0.0, p1.sumsq / static_cast<double>(p1.count) - pp.mean * pp.mean)) : 0.0;
    pp.tail3 = 3 * sigma1;
    pp.tail6 = 6 * sigma1;
    pp.targets = static_cast<int>(locator.target_count());
    pp.lo = s.hist.lo;
    pp.hi = s.hist.hi;
    pp.inv_width = static_cast<double>(spec.bins) / (s.hist.hi - s.hist.lo);
    pp.bins = spec.bins;
    pp.log_magnitude = spec.scale == HistogramScale::LogMagnitude;
    cuda::Pass2 p2;
    p2.counts.assign(static_cast<std::size_t>(spec.bins), 0);
    p2.low.assign(locator.target_count() * PercentileLocator::kBuckets, 0);
    for (std::uint64_t c = 0; c < chunks && t.numel; ++c) {
      if (ctx.cancelled()) return Error::cancelled();
      std::uint64_t n = std::min(kChunkElems, t.numel);
      if (chunks > 1)  // a single chunk is still on the device from pass 1
        if (auto e = upload(c, n); !e.empty()) return Error::backend(e);
      if (auto e = cuda::stats_pass2(buf, et, n, pp, locator.target_of().data(), p2); !e.empty()) return Error::backend(e);
      ctx.progress(0.5 + 0.5 * static_cast<double>(c + 1) / static_cast<double>(chunks));
    }
    s.hist.counts = std::move(p2.counts);
    s.hist.below = p2.below;
    s.hist.above = p2.above;
    s.hist.zeros = p2.zeros;
    s.beyond_3sigma = p2.beyond3;
    s.beyond_6sigma = p2.beyond6;
    s.percentiles = locator.resolve(p2.low.data());
    if (s.count) {
      s.min = p1.min; s.max = p1.max; s.abs_max = p1.abs_max; s.mean = pp.mean;
      const double var = p2.m2 / static_cast<double>(s.count);
      s.std = std::sqrt(var);
      s.kurtosis = var > 0 ? (p2.m4 / static_cast<double>(s.count)) / (var * var) - 3.0 : 0.0;
    }
    return s;
  }

  Result<ChannelAbsMax> channel_absmax(const TensorData& t, OpContext& ctx) override {
    cuda::ElemType et;
    if (!elem_type(t.dtype, et)) return cpu_backend()->channel_absmax(t, ctx);
    if (t.rows < 0 || t.cols < 0 || static_cast<std::uint64_t>(t.rows) * static_cast<std::uint64_t>(t.cols) != t.numel)
      return Error::invalid("channel_absmax: rows x cols does not match the element count");
    // Work on the matrix as stored; for channels-last tensors swap the results back.
    const std::uint64_t rows = static_cast<std::uint64_t>(t.channels_last ? t.cols : t.rows);
    const std::uint64_t cols = static_cast<std::uint64_t>(t.channels_last ? t.rows : t.cols);
    const std::uint64_t esize = dtype_bits(t.dtype) / 8;
    ChannelAbsMax out;
    out.rows.assign(static_cast<std::size_t>(rows), 0.f);
    out.cols.assign(static_cast<std::size_t>(cols), 0.f);
    out.rows_rms.assign(static_cast<std::size_t>(rows), 0.f);
    out.cols_rms.assign(static_cast<std::size_t>(cols), 0.f);
    if (t.numel == 0) return out;
    std::vector<double> col_sq(static_cast<std::size_t>(cols), 0.0);
    std::vector<std::uint64_t> col_n(static_cast<std::size_t>(cols), 0);
    const std::uint64_t rows_per_chunk = std::max<std::uint64_t>(1, kChunkElems / cols);
    cuda::DeviceBuffer buf;
    for (std::uint64_t r0 = 0; r0 < rows; r0 += rows_per_chunk) {
      if (ctx.cancelled()) return Error::cancelled();
      const std::uint64_t nr = std::min(rows_per_chunk, rows - r0);
      if (auto e = buf.upload(t.data + r0 * cols * esize, nr * cols * esize); !e.empty()) return Error::backend(e);
      if (auto e = cuda::channel_absmax(buf, et, nr, cols, out.rows.data() + r0, out.rows_rms.data() + r0,
                                        out.cols.data(), col_sq.data(), col_n.data());
          !e.empty())
        return Error::backend(e);
    }
    for (std::size_t c = 0; c < col_sq.size(); ++c)
      out.cols_rms[c] = col_n[c] ? static_cast<float>(std::sqrt(col_sq[c] / static_cast<double>(col_n[c]))) : 0.f;
    if (t.channels_last) {
      std::swap(out.rows, out.cols);
      std::swap(out.rows_rms, out.cols_rms);
    }
    return out;
  }

  // Screen-sized max-pooling is cheap next to reading the tensor; it stays on
  // the CPU until a kernel is measured to pay off.
  Result<Heatmap> abs_heatmap(const TensorData& t, const HeatmapRequest& req, OpContext& ctx) override {
    return cpu_backend()->abs_heatmap(t, req, ctx);
  }

  Result<WeightError> rtn_int(const TensorData& w, const IntGridSpec& spec, IntQuantized& q, float* dequantized,
                              OpContext& ctx) override {
    return cuda_rtn_int(w, spec, q, dequantized, ctx);
  }
  Result<std::unique_ptr<HessianAccumulator>> hessian_accumulator(std::int64_t cols) override {
    return cuda_hessian_accumulator(cols);
  }
  Result<GptqResult> gptq(const float* w, std::int64_t rows, std::int64_t cols, const float* h, const GptqSpec& spec,
                          OpContext& ctx) override {
    return cuda_gptq(w, rows, cols, h, spec, ctx);
  }

 private:
  std::string device_;
};

}  // namespace

std::shared_ptr<Backend> make_cuda_backend(std::string& why_not) {
  std::string name;
  why_not = cuda::probe_device(name);
  if (!why_not.empty()) return nullptr;
  return std::make_shared<CudaBackend>(name);
}

}  // namespace qs
