#include "model/model_files.h"

#include <filesystem>
#include <system_error>

namespace qs {
namespace {

bool same_file(const std::filesystem::path& a, const std::filesystem::path& b) {
  std::error_code ec;
  return std::filesystem::exists(a, ec) && std::filesystem::exists(b, ec) && std::filesystem::equivalent(a, b, ec);
}

}  // namespace

Result<void> refuse_model_file(const Model& model, const std::string& out_path) {
  namespace fs = std::filesystem;
  if (same_file(out_path, model.path)) return Error::invalid(out_path + ": is the source model; choose another output file");
  for (const std::string& f : model.weight_files)
    if (same_file(out_path, f)) return Error::invalid(out_path + ": is a file of the source model; choose another output file");
  std::error_code ec;
  const fs::path dir = fs::is_directory(model.path, ec) ? fs::path(model.path) : fs::path(model.path).parent_path();
  for (const char* side : {"config.json", "generation_config.json", "tokenizer.json", "tokenizer.model",
                           "tokenizer_config.json", "special_tokens_map.json", "model.safetensors.index.json"})
    if (same_file(out_path, dir / side))
      return Error::invalid(out_path + ": is a file of the source model; choose another output file");
  return {};
}

}  // namespace qs
