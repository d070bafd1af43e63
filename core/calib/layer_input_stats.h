#pragma once
// A linear layer's input statistics for the quantization methods
// (quant/layer_method.h) from a calibration run's capture: H and mean |x| of
// the input the layer reads. Shared by the plan editor's measurement, `measure`,
// the evaluation of a plan and every export, so that each ranks and fits a
// layer from the same numbers.
#include <cstdint>

#include "model/layer.h"
#include "quant/layer_method.h"

namespace qs {

struct ActivationCapture;

// Empty (null pointers) where the capture has nothing for the layer (the
// embedding, the head, no capture) or its sizes do not match `cols`.
LayerInputStats layer_input_stats(const Layer& layer, std::int64_t cols, const ActivationCapture* capture);

}  // namespace qs
