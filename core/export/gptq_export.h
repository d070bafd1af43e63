#pragma once
// GPTQ checkpoint export (the safetensors layout transformers, vLLM and
// GPTQModel load; docs/formats.md 4): every linear layer of the transformer
// blocks as qweight / qzeros / scales (F16) / g_idx, everything else copied in
// F16, config.json with quantization_config plus quantize_config.json, and the
// tokenizer files. Symmetric grids are written in the universally read v1
// zero-point convention ("gptq"), asymmetric ones in v2 ("gptq_v2"), whose
// zero-points need no -1 offset that a zero of 0 would break.
// Layers whose shape the format cannot take stay in F16 and are listed in
// quantization_config.dynamic as "-:" exclusions.
#include <cmath>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "backend/cpu_backend.h"
#include "model/model.h"
#include "util/op_context.h"
#include "util/result.h"

namespace qs {

class Backend;
struct ActivationCapture;

struct GptqExportOptions {
  int bits = 4;          // 2, 3, 4, 8
  int group_size = 128;  // > 0, or -1: one group per output channel
  bool sym = true;
  // With a calibration run's capture (calib/calibrate.h: a calibration file,
  // or the run of an export's calibration text) every layer is quantized by
  // GPTQ (quant/gptq.h) with the H of its input, read where it is; without
  // one by RTN.
  const ActivationCapture* capture = nullptr;
  bool act_order = false;      // GPTQ: columns by descending H diagonal (desc_act; g_idx then maps groups)
  bool static_groups = false;  // GPTQ with act_order: groups fixed on the original column order
  double percdamp = 0.01;      // GPTQ damping, written as damp_percent
  int block_size = 128;        // GPTQ: columns per lazy-update block
  // Where GPTQ runs (Backend::gptq: a device takes what it can and hands the
  // rest to the CPU): the chosen device's backend, the CPU's by default.
  Backend* backend = cpu_backend().get();
  // Layers a plan keeps (f16/bf16/f32): left in F16 like those whose shape the
  // format cannot take, and listed as exclusions (by layer name).
  std::vector<std::string> kept_layers = {};
  // Tests only: called with the staged model.safetensors once it is written,
  // before it is read back and verified (to corrupt it and see the export fail).
  std::function<void(const std::string& staged_file)> after_write = nullptr;
};

struct GptqExportedModule {
  std::string name;     // e.g. "model.layers.0.self_attn.q_proj"
  std::string format;   // e.g. "int4-g128", "int3-ch-asym"
  bool quantized = false;
  std::string reason;   // why it stayed F16
  double sqnr_db = 0;   // of the dequantized weight (F16 scales), when quantized
  // The same measured again on the weight decoded from the written file
  // (qweight, qzeros, scales, g_idx as read back); the export fails unless it
  // equals sqnr_db. NaN when not quantized.
  double readback_sqnr_db = NAN;
};

struct GptqExportReport {
  std::vector<GptqExportedModule> modules;
  std::string checkpoint_format;  // "gptq" or "gptq_v2"
  std::uint64_t bytes = 0;        // model.safetensors
  // model.safetensors was read back before it was moved into place: every
  // tensor with its dtype, shape and bytes (by hash), every module decoded to
  // its measured error. An export that fails this fails and leaves nothing.
  bool verified = false;
};

struct Plan;

// The options a plan gives the GPTQ export: one integer grid (bits, group,
// symmetry) and one method (rtn, or gptq with its params) over the quantized
// layers of the blocks, as a GPTQ checkpoint holds one quantization_config;
// layers the plan keeps (f16/bf16/f32) become exclusions. A plan whose
// blocks' layers differ in grid or method, or whose formats or methods the
// capability query refuses for GPTQ, is Unsupported with the layer and the
// reason. Calibration and the backend are not touched.
struct GptqPlanOptions {
  GptqExportOptions options;
  bool gptq = false;  // the method is GPTQ (it needs calibration), else RTN
};
Result<GptqPlanOptions> gptq_options_from_plan(const Model& source, const Plan& plan, GptqExportOptions base = {});

// What export_gptq writes with these options, decided without reading a
// weight or needing calibration: model.safetensors to the byte, and bits per
// weight over every tensor it holds (docs/plan-format.md's account).
struct GptqPrediction {
  std::uint64_t bytes = 0;         // model.safetensors
  std::uint64_t tensor_bytes = 0;  // its tensors' data (no header)
  std::uint64_t weights = 0;       // elements of the source's tensors
  std::size_t modules = 0, quantized_modules = 0;
  double bits_per_weight() const { return weights ? 8.0 * static_cast<double>(tensor_bytes) / static_cast<double>(weights) : 0.0; }
};
Result<GptqPrediction> predict_gptq(const Model& source, const GptqExportOptions& options);

// `out_dir` must not exist yet (or be empty): it is written as a temporary
// sibling directory and renamed into place at the end. The weights are
// quantized onto the GPTQ grid with F16 scales (what GPTQ tooling stores), by
// RTN or, given Hessians, by GPTQ with the F16 scales in the walk, so that the
// file dequantizes exactly to GPTQ's result. Each layer is quantized once.
// The written file is verified (GptqExportReport::verified) before the rename.
Result<GptqExportReport> export_gptq(const Model& source, const std::string& out_dir, const GptqExportOptions& options,
                                     OpContext& ctx);

}  // namespace qs
