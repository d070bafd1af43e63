#pragma once
// Keras HDF5 models: full-model files (model_weights/ with layer_names and
// weight_names attributes, model_config JSON) and weights-only files, with
// Keras 2 ("dense_1/kernel:0") and Keras 3 legacy ("dense_1/kernel") naming.
// Kernels are presented out-channel first (Dense [out, in], Conv2D [out, in,
// kh, kw]) as views on the stored bytes (TensorInfo::channels_last).
#include <string>

#include "model/model.h"
#include "util/result.h"

namespace qs {

Result<Model> open_keras_h5(const std::string& path);

}  // namespace qs
