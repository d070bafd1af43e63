#pragma once
// Backend: coarse compute operations (a whole tensor at a time), implemented
// on the CPU here and with CUDA in kernels/. Chosen at run time.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "model/dtype.h"
#include "model/tensor_info.h"
#include "quant/gptq.h"
#include "quant/int_grid.h"
#include "quant/metrics.h"
#include "stats/tensor_stats.h"
#include "util/op_context.h"
#include "util/result.h"

namespace qs {

// The raw input of an op: plain pointers so that CUDA code can take it too.
struct TensorData {
  DType dtype = DType::F32;
  const std::byte* data = nullptr;
  std::uint64_t numel = 0;
  std::int64_t rows = 1, cols = 0;  // 2-D view: rows = output channels, cols = the rest
  bool channels_last = false;       // bytes hold the [cols, rows] transpose (Keras kernels)

  static TensorData of(const TensorInfo& t) {
    return {t.dtype, t.bytes().data(), t.numel(), t.rows(), t.cols(), t.channels_last};
  }
};

struct ChannelAbsMax {
  std::vector<float> rows;  // per output channel (row) max |w|
  std::vector<float> cols;  // per input channel (column) max |w|
  std::vector<float> rows_rms, cols_rms;  // root mean square per row / column (NaN ignored)
};

// Max |x| over tiles of a region of the 2-D view, for heatmaps drawn at screen
// size: a region larger than out_rows x out_cols is max-pooled down to it,
// a smaller one comes back at full resolution.
struct HeatmapRequest {
  std::int64_t row0 = 0, row1 = -1, col0 = 0, col1 = -1;  // region [row0, row1) x [col0, col1); -1: to the end
  int out_rows = 512, out_cols = 512;
};
struct Heatmap {
  std::int64_t row0 = 0, row1 = 0, col0 = 0, col1 = 0;  // the region covered
  int rows = 0, cols = 0;                                // tiles
  std::vector<float> abs_max;                            // rows x cols, row-major
};

// H += X^T X over chunks of activations, the running sum kept where the
// backend computes (device memory for CUDA). F32 products summed in F32, as
// calib/hessians.cpp accumulates.
class HessianAccumulator {
 public:
  virtual ~HessianAccumulator() = default;
  virtual std::int64_t cols() const = 0;
  // Adds X^T X for x: [rows, cols()] row-major F32.
  virtual Result<void> add(const float* x, std::int64_t rows) = 0;
  // The sum so far into `h`: [cols, cols] row-major, symmetric.
  virtual Result<void> read(float* h) = 0;
};

// The largest H an accumulator takes: 65536^2 floats is 16 GiB, beyond any layer in use.
constexpr std::int64_t kMaxHessianCols = 65536;
Result<void> check_hessian_cols(std::int64_t cols);

class Backend {
 public:
  virtual ~Backend() = default;
  virtual std::string name() const = 0;         // "cpu" or "cuda"
  virtual std::string description() const = 0;  // for the status bar: "CPU (8 threads)", GPU name
  // The CPU's: its ops run the core's loops in this process's memory (nothing to upload).
  virtual bool is_host() const { return false; }

  // One pass (two for F32) over the tensor: moments, min/max, NaN/Inf counts and a histogram.
  virtual Result<TensorStats> tensor_stats(const TensorData& t, const HistogramSpec& spec, OpContext& ctx) = 0;
  // Max |x| and RMS per row and per column of the 2-D view (NaN is ignored).
  virtual Result<ChannelAbsMax> channel_absmax(const TensorData& t, OpContext& ctx) = 0;
  virtual Result<Heatmap> abs_heatmap(const TensorData& t, const HeatmapRequest& req, OpContext& ctx) = 0;

  // The quantization ops below default to the CPU code in core/quant (with the
  // CPU backend's threads); a device backend overrides what it accelerates and
  // hands back to these defaults what it does not (other dtypes, ggml grids).

  // Round-to-nearest onto an integer grid fused with the weight error: the
  // codes, scales, zeros and error of rtn_int_measure_into. `w`: F32, F16 or
  // BF16, [rows, cols] row-major (channels-last is Unsupported). `q`'s buffers
  // are reused. `dequantized`: null, or rows * cols floats for scale * (code - zero).
  virtual Result<WeightError> rtn_int(const TensorData& w, const IntGridSpec& spec, IntQuantized& q,
                                      float* dequantized, OpContext& ctx);
  // A zeroed H += X^T X accumulator for `cols` input channels.
  virtual Result<std::unique_ptr<HessianAccumulator>> hessian_accumulator(std::int64_t cols);
  // GPTQ on one layer (quant/gptq.h): `w` [rows, cols], `h` [cols, cols].
  virtual Result<GptqResult> gptq(const float* w, std::int64_t rows, std::int64_t cols, const float* h,
                                  const GptqSpec& spec, OpContext& ctx);
};

// Checks a heatmap request against the tensor and fills in the region and tile counts.
Result<Heatmap> plan_heatmap(const TensorData& t, const HeatmapRequest& req);

// Checks bins and range before any backend runs.
Result<void> validate_histogram_spec(const HistogramSpec& spec);

}  // namespace qs
