#pragma once
// The QuantScope quantized checkpoint (docs/hdf5-checkpoint.md): every tensor
// as the plan quantized it (integer-grid codes with their scales and zero
// points, ggml blocks, NF4/FP8/MXFP4/NVFP4 codes and scales, outlier side
// tables, or the source bytes), with the plan, the source's identity and each
// layer's measured error. Streaming (one tensor at a time)
// and atomic (a temporary file renamed on success), verified before the rename.
#include <cmath>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "model/model.h"
#include "quant/plan.h"
#include "util/op_context.h"
#include "util/result.h"

namespace qs {

struct H5ExportedLayer {
  std::string name, format;
  bool quantized = false;
  std::string reason;  // why it was copied
  double bits_per_weight = 0, sqnr_db = 0;
  // The same measured again on the values decoded from the written file (our
  // reader, io/quantized_h5.h); the export fails unless it equals sqnr_db.
  // NaN when not quantized.
  double readback_sqnr_db = NAN;
};

struct H5ExportReport {
  std::vector<H5ExportedLayer> layers;
  std::uint64_t bytes = 0;
  // The file was read back before it was renamed into place: every tensor's
  // description, its datasets' bytes (by hash) and each quantized layer's
  // error; an export that fails this fails and leaves nothing.
  bool verified = false;
};

struct ActivationCapture;

struct H5ExportOptions {
  // A calibration run's capture (a calibration file): method "outliers" ranks
  // by it (|w| sqrt(H_jj), or mean |x| for channels) as the plan editor and
  // evaluation do; without one by |w|.
  const ActivationCapture* capture = nullptr;
  // Tests only: called with the temporary file once it is written and closed,
  // before it is read back and verified (to corrupt it and see the export fail).
  std::function<void(const std::string& temp_file)> after_write = nullptr;
};

// Methods: "rtn" and "outliers" (any format, the side table stored); the
// others are refused by name.
Result<H5ExportReport> export_quantized_h5(const Model& source, const Plan& plan, const std::string& out_path,
                                           const H5ExportOptions& options, OpContext& ctx);

}  // namespace qs
