#pragma once
// Fake-quant export: the model with every planned layer replaced by its
// dequantized weights (quantize, then dequantize), in F16, BF16 or F32 under
// the original names, with the original config and tokenizer files, so that
// any framework can evaluate a plan without knowing its formats. The plan is
// recorded in the safetensors metadata ("quantscope_plan").
#include <cmath>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "backend/cpu_backend.h"
#include "model/model.h"
#include "quant/plan.h"
#include "util/op_context.h"
#include "util/result.h"

namespace qs {

struct ActivationCapture;
class Backend;

struct FakeQuantOptions {
  DType dtype = DType::F16;  // F16, BF16 or F32
  // The layers' input statistics for the plan's methods (quant/layer_method.h):
  // gptq needs H, awq H and mean |x|; clip and outliers rank by them when given.
  // A calibration run's capture (calib/calibrate.h: a calibration file, or
  // the run of an export's calibration text).
  const ActivationCapture* capture = nullptr;
  // Where GPTQ runs (quantize_with_method's backend): the chosen device's, the CPU's by default.
  Backend* backend = cpu_backend().get();
  // Tests only: called with the staged model.safetensors once it is written,
  // before it is read back and verified (to corrupt it and see the export fail).
  std::function<void(const std::string& staged_file)> after_write = nullptr;
};

struct FakeQuantLayer {
  std::string name, format;
  std::string method = "rtn";  // as applied (gptq/awq on the embedding or head: rtn)
  bool quantized = false;
  std::string reason;  // why it was copied as it is (or, quantized, the fallback type it was written as)
  double sqnr_db = 0;  // of the dequantized weight (F32) against the source
  // Of the weight as read back from the written file (in the output type, so
  // its rounding included) against the source; NaN when not quantized.
  double readback_sqnr_db = NAN;
};

struct FakeQuantReport {
  std::vector<FakeQuantLayer> layers;
  std::uint64_t bytes = 0;  // model.safetensors
  // model.safetensors was read back before it was moved into place, every
  // tensor with its dtype, shape and bytes (by hash); otherwise the export fails.
  bool verified = false;
};

// `source`: a Hugging Face model (directory or .safetensors). Each planned
// layer gets its format with its method (rtn, clip, gptq, awq, outliers;
// gptq and awq need the statistics above and are refused without them, and
// the embedding and head, whose inputs are not captured, get rtn); out_dir is
// written atomically (util/staging_dir.h).
Result<FakeQuantReport> export_fake_quant(const Model& source, const Plan& plan, const std::string& out_dir,
                                          const FakeQuantOptions& options, OpContext& ctx);

}  // namespace qs
