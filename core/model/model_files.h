#pragma once
// Writers must never replace what the model is read from: an export or a
// calibration file renamed over a weight file (or the model's config and
// tokenizer) would destroy the source while it is still mapped.
#include <string>

#include "model/model.h"
#include "util/result.h"

namespace qs {

// Invalid (naming `out_path`) when it is the model itself, one of its weight
// files, or one of the Hugging Face side files next to them (config.json,
// tokenizer files, the shard index); ok otherwise, also when it does not exist yet.
Result<void> refuse_model_file(const Model& model, const std::string& out_path);

}  // namespace qs
