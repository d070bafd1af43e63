#include "quant/measure.h"

#include <algorithm>
#include <atomic>
#include <charconv>
#include <chrono>
#include <vector>

#include "backend/thread_pool.h"
#include "model/convert.h"

namespace qs {
namespace {

// Live feedback measures one layer while the user waits: the F32 conversion
// runs in slices on the thread pool (so do the quantizers: format_table.cpp).
}  // namespace

Result<void> tensor_to_f32(const TensorInfo& t, float* out) {
  const std::int64_t rows = t.rows(), cols = t.cols();
  const auto bytes = t.bytes();
  const unsigned be = dtype_block_elems(t.dtype), bb = dtype_block_bytes(t.dtype);
  // Slices of whole rows keep quantized source blocks whole.
  if (be == 0 || cols % be != 0 || rows <= 1)
    return convert_to_f32(t.dtype, bytes.data(), static_cast<std::size_t>(t.numel()), out);
  const std::size_t row_bytes = static_cast<std::size_t>(cols / be) * bb;
  constexpr std::int64_t kRowsPerTask = 64;
  const std::size_t tasks = static_cast<std::size_t>((rows + kRowsPerTask - 1) / kRowsPerTask);
  std::atomic<bool> failed{false};
  ThreadPool::global().parallel_for(tasks, [&](std::size_t task, unsigned) {
    const std::int64_t r0 = static_cast<std::int64_t>(task) * kRowsPerTask;
    const std::int64_t r1 = std::min(rows, r0 + kRowsPerTask);
    auto r = convert_to_f32(t.dtype, bytes.data() + static_cast<std::size_t>(r0) * row_bytes,
                            static_cast<std::size_t>((r1 - r0) * cols), out + r0 * cols);
    if (!r) failed = true;
  });
  if (failed) return convert_to_f32(t.dtype, bytes.data(), static_cast<std::size_t>(t.numel()), out);  // for its message
  return {};
}

Result<void> quantize_dequantize(const TensorInfo& t, const QuantChoice& choice, std::vector<float>& w,
                                 std::vector<float>& deq, OpContext& ctx, double* milliseconds) {
  if (t.channels_last) return Error::unsupported(t.name + ": channels-last (Keras) kernels are not quantized yet");
  const std::int64_t rows = t.rows(), cols = t.cols();
  if (auto r = choice.fits(cols); !r) return Error::unsupported(t.where() + ": " + r.error().message);
  if (auto fits = check_f32_memory(t, 2); !fits) return fits.error();
  w.resize(static_cast<std::size_t>(t.numel()));
  if (auto r = tensor_to_f32(t, w.data()); !r) return Error::unsupported(t.where() + ": " + r.error().message);
  if (ctx.cancelled()) return Error::cancelled();

  const auto start = std::chrono::steady_clock::now();
  deq.resize(w.size());
  if (choice.kind != QuantChoice::Kind::IntGrid) {
    if (auto r = choice.fake_quantize(w.data(), rows, cols, deq.data(), &ThreadPool::global()); !r)
      return Error{r.error().code, t.where() + ": " + r.error().message};
  } else {
    auto q = rtn_int(w.data(), rows, cols, choice.grid);
    if (!q) return Error::invalid(t.where() + ": " + q.error().message);
    dequantize_int_into(*q, deq.data());
  }
  if (milliseconds)
    *milliseconds = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  return {};
}

Result<LayerQuantError> measure_quantization(const TensorInfo& t, const QuantChoice& choice, OpContext& ctx) {
  std::vector<float> w, deq;
  LayerQuantError out;
  if (auto r = quantize_dequantize(t, choice, w, deq, ctx, &out.milliseconds); !r) return r.error();
  const auto start = std::chrono::steady_clock::now();
  out.error = weight_error(w.data(), deq.data(), w.size());
  out.milliseconds += std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  out.bits_per_weight = choice.bits_per_weight(t.rows(), t.cols());
  return out;
}

}  // namespace qs
