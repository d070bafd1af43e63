#pragma once
// What a Hugging Face-style export carries besides the weights: the source's
// config.json (to be extended) and its tokenizer files (copied as they are).
#include <filesystem>
#include <nlohmann/json.hpp>

#include "model/model.h"
#include "util/result.h"

namespace qs {

// The directory of the source model (the model's path, or the folder of its file).
std::filesystem::path source_dir(const Model& model);
// The source's config.json, or an empty object when it has none.
Result<nlohmann::ordered_json> read_source_config(const Model& model);
// tokenizer.json, tokenizer.model, tokenizer_config.json, special_tokens_map.json
// and generation_config.json, those that exist, into `dir`.
Result<void> copy_tokenizer_files(const Model& model, const std::filesystem::path& dir);

}  // namespace qs
