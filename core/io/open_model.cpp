#include "io/open_model.h"

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "io/gguf_model.h"
#include "io/hf_config.h"
#include "io/keras_h5.h"
#include "io/safetensors.h"
#include "util/read_text_file.h"
#include "util/json_depth.h"

namespace qs {
namespace fs = std::filesystem;

namespace {

constexpr std::size_t kMaxIndexBytes = 64u << 20;

// What the first bytes say a file is (safetensors has no magic number).
std::string sniff_format(const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) return {};
  unsigned char magic[8] = {};
  const std::size_t n = std::fread(magic, 1, sizeof magic, f);
  std::fclose(f);
  if (n >= 4 && std::memcmp(magic, "GGUF", 4) == 0) return "GGUF";
  if (n >= 8 && std::memcmp(magic, "\x89HDF\r\n\x1a\n", 8) == 0) return "HDF5 (Keras)";
  if (n >= 4 && std::memcmp(magic, "PK\x03\x04", 4) == 0) return "ZIP";
  return {};
}

Result<void> add_safetensors_file(Model& model, const std::string& path) {
  auto file = read_safetensors(path);
  if (!file) return file.error();
  for (auto& t : file->tensors) model.tensors.push_back(std::move(t));
  model.weight_files.push_back(path);
  return {};
}

Result<void> check_unique_names(const Model& model) {
  std::set<std::string_view> seen;
  for (const auto& t : model.tensors)
    if (!seen.insert(t.name).second) return Error::format(model.path + ": tensor \"" + t.name + "\" appears in more than one file");
  return {};
}

Result<void> read_config_beside(Model& model, const fs::path& dir) {
  const fs::path cfg = dir / "config.json";
  if (!fs::exists(cfg)) return {};
  auto arch = read_hf_config(cfg.string());
  if (!arch) return arch.error();
  model.arch = std::move(*arch);
  return {};
}

}  // namespace

Result<Model> open_sharded_safetensors(const std::string& index_path) {
  auto text = read_text_file(index_path, kMaxIndexBytes);
  if (!text) return text.error();
  if (auto r = check_json_depth(*text, index_path); !r) return r.error();
  const auto j = nlohmann::json::parse(*text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return Error::format(index_path + ": not a valid JSON object");
  auto wm = j.find("weight_map");
  if (wm == j.end() || !wm->is_object()) return Error::format(index_path + ": missing \"weight_map\" object");

  const fs::path dir = fs::path(index_path).parent_path();
  std::map<std::string, std::set<std::string>> shard_tensors;  // shard file -> names mapped to it
  for (const auto& [name, shard] : wm->items()) {
    if (!shard.is_string()) return Error::format(index_path + ": weight_map[\"" + name + "\"] must be a file name");
    const std::string s = shard.get<std::string>();
    if (s.empty() || s.find('/') != std::string::npos || s.find('\\') != std::string::npos || s == "." || s == "..")
      return Error::format(index_path + ": weight_map[\"" + name + "\"] = \"" + s + "\" is not a plain file name in the model directory");
    shard_tensors[s].insert(name);
  }
  if (shard_tensors.empty()) return Error::format(index_path + ": weight_map is empty");

  Model model;
  model.path = dir.string();
  model.format = ModelFormat::HfDirectory;
  for (const auto& [shard, names] : shard_tensors) {
    const fs::path p = dir / shard;
    if (!fs::exists(p)) return Error::io(index_path + ": shard \"" + shard + "\" named in weight_map does not exist");
    const std::size_t first = model.tensors.size();
    if (auto r = add_safetensors_file(model, p.string()); !r) return r.error();
    std::set<std::string> in_file;
    for (std::size_t i = first; i < model.tensors.size(); ++i) {
      const auto& t = model.tensors[i];
      if (!names.count(t.name))
        return Error::format(p.string() + ": tensor \"" + t.name + "\" is not mapped to this shard in " + index_path);
      in_file.insert(t.name);
    }
    for (const auto& n : names)
      if (!in_file.count(n)) return Error::format(index_path + ": tensor \"" + n + "\" is mapped to " + shard + " but that file does not hold it");
  }
  if (auto r = check_unique_names(model); !r) return r.error();
  if (auto r = read_config_beside(model, dir); !r) return r.error();
  group_layers(model);
  return model;
}

Result<Model> open_model(const std::string& path) {
  std::error_code ec;
  const fs::path p(path);
  if (!fs::exists(p, ec)) return Error::io(path + ": no such file or directory");

  if (fs::is_directory(p, ec)) {
    if (fs::exists(p / "model.safetensors.index.json")) return open_sharded_safetensors((p / "model.safetensors.index.json").string());
    std::vector<std::string> files;
    if (fs::exists(p / "model.safetensors")) {
      files.push_back((p / "model.safetensors").string());
    } else {
      for (const auto& e : fs::directory_iterator(p, ec))
        if (e.is_regular_file() && e.path().extension() == ".safetensors") files.push_back(e.path().string());
      std::sort(files.begin(), files.end());
    }
    if (files.empty()) return Error::unsupported(path + ": no .safetensors weights in this directory");
    Model model;
    model.path = p.string();
    model.format = ModelFormat::HfDirectory;
    for (const auto& f : files)
      if (auto r = add_safetensors_file(model, f); !r) return r.error();
    if (auto r = check_unique_names(model); !r) return r.error();
    if (auto r = read_config_beside(model, p); !r) return r.error();
    group_layers(model);
    return model;
  }

  // A FIFO, socket or device is refused before anything opens it (opening a FIFO waits for a writer).
  if (!fs::is_regular_file(p, ec)) return Error::io(path + ": not a regular file");
  if (p.filename() == "model.safetensors.index.json") return open_sharded_safetensors(path);
  const std::string kind = sniff_format(path);
  if (kind == "GGUF" || p.extension() == ".gguf") return open_gguf_model(path);  // (a bad magic is reported there)
  if (kind == "HDF5 (Keras)" || p.extension() == ".h5" || p.extension() == ".hdf5") return open_keras_h5(path);
  if (kind == "ZIP" || p.extension() == ".keras")
    return Error::unsupported(path + ": Keras 3 .keras archives cannot be opened yet; save the model as .h5 "
                              "(model.save(\"model.h5\")) and open that");
  if (!kind.empty()) return Error::unsupported(path + ": " + kind + " files cannot be opened yet");

  Model model;
  model.path = path;
  model.format = ModelFormat::Safetensors;
  if (auto r = add_safetensors_file(model, path); !r) return r.error();
  // A config.json beside the file gives its architecture (the file was picked out of an HF directory).
  if (auto r = read_config_beside(model, p.has_parent_path() ? p.parent_path() : fs::path(".")); !r) return r.error();
  group_layers(model);
  return model;
}

}  // namespace qs
