#pragma once
// A linear layer's input statistics for the quantization methods
// (quant/layer_method.h) from a calibration: the Hessians of calib/hessians.h
// (H only) or a calibration run's capture (H and mean |x|). Shared by the
// evaluation of a plan and the exports, so that each ranks and fits a layer
// from the same numbers.
#include <cstdint>

#include "model/layer.h"
#include "quant/layer_method.h"

namespace qs {

struct ActivationCapture;
struct CalibrationHessians;

// Empty (null pointers) where the calibration has nothing for the layer (the
// embedding, the head) or its sizes do not match `cols`.
LayerInputStats layer_input_stats(const Layer& layer, std::int64_t cols, const CalibrationHessians* hessians,
                                  const ActivationCapture* capture);

}  // namespace qs
