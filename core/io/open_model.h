#pragma once
// open_model: the one entry point that turns a path into a Model. It detects
// the format, reads headers only, and maps the weight files.
#include <string>

#include "model/model.h"
#include "util/result.h"

namespace qs {

// `path` may be a Hugging Face directory (config.json + model.safetensors or a
// sharded model.safetensors.index.json), a single .safetensors file, or a .gguf file.
Result<Model> open_model(const std::string& path);

// A sharded checkpoint from its index file (model.safetensors.index.json).
Result<Model> open_sharded_safetensors(const std::string& index_path);

}  // namespace qs
