#pragma once
// One quantization choice applied to one weight, and what it costs: bits per
// weight, weight error and time. The building block of live feedback and of
// `quantscope-cli measure`.
#include <string>
#include <string_view>
#include <vector>

#include "model/tensor_info.h"
#include "quant/int_grid.h"
#include "quant/metrics.h"
#include "quant/format_table.h"
#include "util/op_context.h"
#include "util/result.h"

namespace qs {

struct LayerQuantError {
  double bits_per_weight = 0;
  WeightError error;
  double milliseconds = 0;  // quantize + dequantize + error
  // tr(dW H dW^T) / tr(W H W^T) on the layer input's calibration Hessian; -1: not measured (no H)
  double rel_output_error = -1;
  // When what is stored differs from the plan's format (llama.cpp's fallback for
  // a ggml type on rows that are not whole blocks): its name, and why.
  std::string applied, note;
};

// The tensor's elements as F32 (row slices converted in parallel).
Result<void> tensor_to_f32(const TensorInfo& t, float* out);

// Round-to-nearest with `choice`: w gets the tensor as F32, deq its
// quantize-dequantize image (both rows x cols). `milliseconds`, when given,
// gets the quantizer's time. Errors as measure_quantization's.
Result<void> quantize_dequantize(const TensorInfo& t, const QuantChoice& choice, std::vector<float>& w,
                                 std::vector<float>& deq, OpContext& ctx, double* milliseconds = nullptr);

// Quantizes the tensor's 2-D view (rows = output channels) and measures it.
// Shapes a format cannot take (row length not a multiple of its block or group)
// are an Unsupported error that says why.
Result<LayerQuantError> measure_quantization(const TensorInfo& t, const QuantChoice& choice, OpContext& ctx);

}  // namespace qs
