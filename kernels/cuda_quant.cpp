#include "cuda_quant.h"

#include <cmath>
#include <limits>

#include "backend/cpu_backend.h"
#include "cuda_ops.h"
#include "quant/gptq_plan.h"

namespace qs {
namespace {

class CudaHessianAccumulator final : public HessianAccumulator {
 public:
  explicit CudaHessianAccumulator(std::int64_t cols) : cols_(cols) {}
  std::string init() { return h_.init(static_cast<std::uint64_t>(cols_)); }
  std::int64_t cols() const override { return cols_; }
  Result<void> add(const float* x, std::int64_t rows) override {
    if (rows < 0) return Error::invalid("Hessian: negative row count");
    if (auto e = h_.add(x, static_cast<std::uint64_t>(rows)); !e.empty()) return Error::backend("Hessian on CUDA: " + e);
    return {};
  }
  Result<void> read(float* h) override {
    if (auto e = h_.read(h); !e.empty()) return Error::backend("Hessian on CUDA: " + e);
    return {};
  }

 private:
  std::int64_t cols_;
  cuda::DeviceHessian h_;
};

// cudaGetErrorString(cudaErrorMemoryAllocation), which DeviceArray::alloc's
// messages carry: a layer the device cannot hold is done on the CPU instead.
bool out_of_device_memory(const std::string& message) { return message.find("out of memory") != std::string::npos; }

}  // namespace

Result<WeightError> cuda_rtn_int(const TensorData& w, const IntGridSpec& spec, IntQuantized& q, float* dequantized,
                                 OpContext& ctx) {
  cuda::ElemType type;
  switch (w.dtype) {
    case DType::F32: type = cuda::ElemType::F32; break;
    case DType::F16: type = cuda::ElemType::F16; break;
    case DType::BF16: type = cuda::ElemType::BF16; break;
    default: return cpu_backend()->rtn_int(w, spec, q, dequantized, ctx);  // its error names the type
  }
  if (w.channels_last) return cpu_backend()->rtn_int(w, spec, q, dequantized, ctx);
  if (w.rows < 0 || w.cols < 0 || static_cast<std::uint64_t>(w.rows) * static_cast<std::uint64_t>(w.cols) != w.numel)
    return Error::invalid("RTN: rows x cols does not match the element count");
  if (auto r = validate_int_grid(spec, w.cols); !r) return r.error();
  if (ctx.cancelled()) return Error::cancelled();
  const std::int64_t rows = w.rows, cols = w.cols;
  q.rows = rows;
  q.cols = cols;
  q.spec = spec;
  q.groups_per_row = spec.group_size > 0 ? static_cast<int>(cols / spec.group_size) : 1;
  q.codes.resize(static_cast<std::size_t>(rows * cols));
  q.scales.resize(static_cast<std::size_t>(rows) * static_cast<std::size_t>(q.groups_per_row));
  q.zeros.resize(q.scales.size());
  cuda::RtnRequest req;
  req.data = w.data;
  req.type = type;
  req.rows = static_cast<std::uint64_t>(rows);
  req.cols = static_cast<std::uint64_t>(cols);
  req.bits = spec.bits;
  req.symmetric = spec.symmetric;
  req.group_size = spec.group_size;
  cuda::RtnResult r;
  if (auto e = cuda::rtn_int(req, q.codes.data(), q.scales.data(), q.zeros.data(), dequantized, r); !e.empty()) {
    if (out_of_device_memory(e)) return cpu_backend()->rtn_int(w, spec, q, dequantized, ctx);
    return Error::backend("RTN on CUDA: " + e);
  }
  if (!r.finite) return cpu_backend()->rtn_int(w, spec, q, dequantized, ctx);  // the CPU names the first bad weight
  WeightError out;
  const double n = static_cast<double>(rows) * static_cast<double>(cols);
  out.mse = n > 0 ? r.err_sq / n : 0.0;
  out.sqnr_db = r.err_sq > 0 ? 10.0 * std::log10(r.ref_sq / r.err_sq) : std::numeric_limits<double>::infinity();
  out.max_abs = r.max_abs;
  return out;
}

Result<std::unique_ptr<HessianAccumulator>> cuda_hessian_accumulator(std::int64_t cols) {
  if (auto r = check_hessian_cols(cols); !r) return r.error();
  auto acc = std::make_unique<CudaHessianAccumulator>(cols);
  if (auto e = acc->init(); !e.empty()) return Error::backend("Hessian on CUDA: " + e);
  return std::unique_ptr<HessianAccumulator>(std::move(acc));
}

std::string cuda_gptq_cpu_reason(const GptqSpec& spec) {
  if (spec.block_type != DType::Unknown) return "ggml block grids run on the CPU";
  if (spec.block_size > cuda::kMaxGptqBlock)
    return "block size " + std::to_string(spec.block_size) + " exceeds the device walk's " +
           std::to_string(cuda::kMaxGptqBlock);
  return {};
}

Result<GptqResult> cuda_gptq(const float* w, std::int64_t rows, std::int64_t cols, const float* h, const GptqSpec& spec,
                             OpContext& ctx) {
  if (!cuda_gptq_cpu_reason(spec).empty()) return cpu_backend()->gptq(w, rows, cols, h, spec, ctx);
  auto plan = plan_gptq(w, rows, cols, h, spec);
  if (!plan) return plan.error();
  if (ctx.cancelled()) return Error::cancelled();
  GptqResult out;
  out.rows = rows;
  out.cols = cols;
  out.groups = plan->groups;
  out.g_idx.assign(plan->g_idx.begin(), plan->g_idx.end());
  out.codes.resize(static_cast<std::size_t>(rows * cols));
  out.dequantized.resize(out.codes.size());
  out.scales.resize(static_cast<std::size_t>(rows) * static_cast<std::size_t>(plan->groups));
  out.zeros.resize(out.scales.size());
  cuda::GptqRequest req;
  req.w = w;
  req.h = h;
  req.rows = static_cast<std::uint64_t>(rows);
  req.cols = static_cast<std::uint64_t>(cols);
  req.bits = spec.grid.bits;
  req.symmetric = spec.grid.symmetric;
  req.group_size = plan->group_size;
  req.groups = plan->groups;
  req.static_groups = spec.static_groups;
  req.block_size = spec.block_size;
  req.perm = plan->perm.data();
  req.dead = plan->dead.data();
  req.damped_diag = plan->damped_diag.data();
  req.g_idx = plan->g_idx.data();
  req.progress = [&ctx](double f) {
    ctx.progress(f);
    return !ctx.cancelled();
  };
  std::string message;
  switch (cuda::gptq_int(req, out.codes.data(), out.scales.data(), out.zeros.data(), out.dequantized.data(), message)) {
    case cuda::GptqStatus::Ok: return out;
    case cuda::GptqStatus::Cancelled: return Error::cancelled();
    case cuda::GptqStatus::NotPositiveDefinite: return Error::invalid("GPTQ: the damped Hessian is not positive definite");
    case cuda::GptqStatus::Failed: break;
  }
  if (out_of_device_memory(message)) return cpu_backend()->gptq(w, rows, cols, h, spec, ctx);
  return Error::backend("GPTQ on CUDA: " + message);
}

}  // namespace qs
