// The Backend's quantization ops on the CPU: what the CPU backend runs, and
// what a device backend falls back to for cases it does not take.
#include <cstdint>
#include <vector>

#include "backend/backend.h"
#include "backend/lapack.h"
#include "model/convert.h"

namespace qs {
namespace {

class CpuHessianAccumulator final : public HessianAccumulator {
 public:
  explicit CpuHessianAccumulator(std::int64_t cols) : cols_(cols), h_(static_cast<std::size_t>(cols * cols), 0.0f) {}
  std::int64_t cols() const override { return cols_; }
  Result<void> add(const float* x, std::int64_t rows) override {
    if (rows < 0) return Error::invalid("Hessian: negative row count");
    if (rows == 0) return {};
    // calib/hessians.cpp's product: one SGEMM, F32 sums.
    lapack::gemm(true, cols_, cols_, rows, 1.0f, x, cols_, x, cols_, 1.0f, h_.data(), cols_);
    return {};
  }
  Result<void> read(float* h) override {
    std::copy(h_.begin(), h_.end(), h);
    return {};
  }

 private:
  std::int64_t cols_;
  std::vector<float> h_;
};

}  // namespace

Result<void> check_hessian_cols(std::int64_t cols) {
  if (cols < 1 || cols > kMaxHessianCols)
    return Error::invalid("Hessian: " + std::to_string(cols) + " input channels (1.." + std::to_string(kMaxHessianCols) +
                          " supported)");
  return {};
}

Result<WeightError> Backend::rtn_int(const TensorData& w, const IntGridSpec& spec, IntQuantized& q, float* dequantized,
                                     OpContext& ctx) {
  if (w.channels_last) return Error::unsupported("RTN: channels-last (Keras) kernels are not quantized yet");
  if (w.dtype != DType::F32 && w.dtype != DType::F16 && w.dtype != DType::BF16)
    return Error::unsupported(std::string("RTN: weights of type ") + std::string(dtype_name(w.dtype)) +
                              " (F32, F16 or BF16 expected)");
  if (w.rows < 0 || w.cols < 0 || static_cast<std::uint64_t>(w.rows) * static_cast<std::uint64_t>(w.cols) != w.numel)
    return Error::invalid("RTN: rows x cols does not match the element count");
  if (auto r = validate_int_grid(spec, w.cols); !r) return r.error();
  std::vector<float> converted;
  const float* x = reinterpret_cast<const float*>(w.data);
  // F32 is used in place when aligned (a memory map's tensor need not be).
  if (w.dtype != DType::F32 || reinterpret_cast<std::uintptr_t>(w.data) % alignof(float) != 0) {
    converted.resize(w.numel);
    if (auto r = convert_to_f32(w.dtype, w.data, converted.size(), converted.data()); !r) return r.error();
    x = converted.data();
  }
  if (ctx.cancelled()) return Error::cancelled();
  auto e = rtn_int_measure_into(q, x, w.rows, w.cols, spec);
  if (!e) return e.error();
  if (dequantized) dequantize_int_into(q, dequantized);
  return *e;
}

Result<std::unique_ptr<HessianAccumulator>> Backend::hessian_accumulator(std::int64_t cols) {
  if (auto r = check_hessian_cols(cols); !r) return r.error();
  return std::unique_ptr<HessianAccumulator>(std::make_unique<CpuHessianAccumulator>(cols));
}

Result<GptqResult> Backend::gptq(const float* w, std::int64_t rows, std::int64_t cols, const float* h,
                                 const GptqSpec& spec, OpContext& ctx) {
  return qs::gptq(w, rows, cols, h, spec, ctx);
}

}  // namespace qs
