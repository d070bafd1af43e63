#include "export/hf_side_files.h"

#include "util/read_text_file.h"
#include "util/json_depth.h"

namespace qs {

namespace fs = std::filesystem;

fs::path source_dir(const Model& model) {
  return fs::is_directory(model.path) ? fs::path(model.path) : fs::path(model.path).parent_path();
}

Result<nlohmann::ordered_json> read_source_config(const Model& model) {
  const fs::path p = source_dir(model) / "config.json";
  if (!fs::exists(p)) return nlohmann::ordered_json::object();
  auto text = read_text_file(p.string(), std::size_t{16} << 20);
  if (!text) return text.error();
  if (auto r = check_json_depth(*text, p.string()); !r) return r.error();
  try {
    return nlohmann::ordered_json::parse(*text);
  } catch (const nlohmann::ordered_json::exception& e) {
    return Error::format(p.string() + ": invalid JSON: " + e.what());
  }
}

Result<void> copy_tokenizer_files(const Model& model, const fs::path& dir) {
  const fs::path src = source_dir(model);
  for (const char* f : {"tokenizer.json", "tokenizer.model", "tokenizer_config.json", "special_tokens_map.json",
                        "generation_config.json"}) {
    std::error_code ec;
    if (fs::exists(src / f) && !fs::copy_file(src / f, dir / f, ec)) return Error::io((dir / f).string() + ": " + ec.message());
  }
  return {};
}

}  // namespace qs
