#pragma once
// The CUDA backend's quantization ops: core's types in, cuda_ops.h's kernels
// underneath. Cases the kernels do not take go to the CPU defaults (Backend::*).
#include <memory>

#include "backend/backend.h"

namespace qs {

Result<WeightError> cuda_rtn_int(const TensorData& w, const IntGridSpec& spec, IntQuantized& q, float* dequantized,
                                 OpContext& ctx);
Result<std::unique_ptr<HessianAccumulator>> cuda_hessian_accumulator(std::int64_t cols);
Result<GptqResult> cuda_gptq(const float* w, std::int64_t rows, std::int64_t cols, const float* h, const GptqSpec& spec,
                             OpContext& ctx);

// Why cuda_gptq hands a spec to the CPU (empty when it takes it itself).
std::string cuda_gptq_cpu_reason(const GptqSpec& spec);

}  // namespace qs
