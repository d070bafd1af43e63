#pragma once
// A llama-family model with its weights fake-quantized by a Plan: every
// planned layer's weight is quantized and dequantized in memory as the
// exports would write it, so the forward pass measures what the quantized
// checkpoint will do. ggml block formats take llama.cpp's fallback for rows
// their blocks cannot split (as the GGUF export does: on stories260K a
// q4_k_m plan gives exactly the weights of llama-quantize's Q4_K_M file);
// integer grids and the named formats (NF4, FP8, MXFP4, NVFP4, F16, BF16)
// are rounded by the quantization core; "f32" keeps the weight.
// Methods: "rtn"; "clip" (ggml types: the per-block clip search, as the GGUF
// export writes it; integer grids: core's clip search); "outliers" (the kept
// weights in F16 on top of the format; ranked by the calibration when given);
// "gptq" and "awq" with a calibration capture that has the layer input's
// statistics (quant/layer_method.h); without one they are refused, saying so;
// "smoothquant": W8A8, the weights on W diag(s) and the inputs divided by s and
// quantized per token in the forward pass (LlamaModel::InputQuant; s from the
// capture's per-channel activation max for the inputs that follow a norm).
#include <string>
#include <vector>

#include "calib/activation_capture.h"
#include "calib/llama_forward.h"
#include "model/model.h"
#include "quant/layer_method.h"
#include "quant/plan.h"
#include "util/op_context.h"
#include "util/result.h"

namespace qs {

struct PlannedWeight {
  std::string layer, format;  // the plan's format
  std::string applied;        // what was applied ("Q5_0", "int4-g128", "F16", ...), or "kept"
  std::string note;           // the fallback or the reason it was kept
  double bits_per_weight = 0; // of what was applied (side tables counted), or of the source when kept
};

// Quantizes and dequantizes `w` ([rows, cols] of tensor `t`) in place as
// `config` says; `out` records what was applied.
// `stats`: the layer input's calibration statistics (gptq/awq need them; clip weights its error by diag(H)).
Result<void> fake_quantize_planned(const LayerConfig& config, const TensorInfo& t, std::vector<float>& w, PlannedWeight& out,
                                   OpContext& ctx = OpContext::none(), const LayerInputStats& stats = {});

// LlamaModel::load with the plan applied; `report` (optional) gets one entry per planned layer that the model reads.
// `calib` (optional): the calibration capture the gptq/awq layers take their input statistics from.
Result<LlamaModel> load_llama_with_plan(const Model& model, const Plan& plan, std::vector<PlannedWeight>* report = nullptr,
                                        OpContext& ctx = OpContext::none(), const ActivationCapture* calib = nullptr);

}  // namespace qs
