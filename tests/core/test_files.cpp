#include "test_files.h"

#include <stdexcept>

#include "demo/demo_model.h"
#include "io/safetensors.h"

#include <cctype>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <random>
#include <stdexcept>

namespace qs::test {

TempDir::TempDir() {
  std::random_device rd;
  for (int i = 0; i < 100; ++i) {
    auto p = std::filesystem::temp_directory_path() / ("qs-test-" + std::to_string(rd()));
    if (std::filesystem::create_directory(p)) {
      path_ = p;
      return;
    }
  }
  throw std::runtime_error("cannot create a temporary directory");
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (!f) throw std::runtime_error("cannot write " + path);
}

std::string read_bytes(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

void flip_byte(const std::string& path, std::uint64_t offset) {
  std::fstream f(path, std::ios::binary | std::ios::in | std::ios::out);
  char c = 0;
  f.seekg(static_cast<std::streamoff>(offset));
  f.get(c);
  f.seekp(static_cast<std::streamoff>(offset));
  f.put(static_cast<char>(~c));
  if (!f) throw std::runtime_error("cannot flip byte " + std::to_string(offset) + " of " + path);
}

bool flip_safetensors_byte(const std::string& path, const std::string& tensor) {
  std::uint64_t at = 0;
  {
    auto f = qs::read_safetensors(path);  // its map goes before the write
    if (!f) return false;
    for (const auto& t : f->tensors)
      if (t.name == tensor) at = t.offset + t.nbytes / 2;
  }
  if (at == 0) return false;
  flip_byte(path, at);
  return true;
}

std::string safetensors_bytes(const std::string& header_json, const std::string& data) {
  std::string out(8, '\0');
  const std::uint64_t n = header_json.size();
  for (int i = 0; i < 8; ++i) out[static_cast<std::size_t>(i)] = static_cast<char>((n >> (8 * i)) & 0xFF);
  return out + header_json + data;
}

std::string shared_dir() {
  const std::string dir = QS_SHARED_DIR;
  return std::filesystem::exists(dir + "/models") ? dir : std::string();
}

std::string test_name_of(const std::string& description) {
  std::string n = description;
  for (char& c : n)
    if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
  return n;
}

std::string write_small_demo(const std::filesystem::path& dir, int layers, int hidden, int intermediate) {
  qs::DemoSpec spec;
  spec.layers = layers;
  spec.hidden = hidden;
  spec.intermediate = intermediate;
  if (auto r = qs::write_demo_model(dir.string(), spec); !r) throw std::runtime_error(r.error().message);
  return dir.string();
}

}  // namespace qs::test
