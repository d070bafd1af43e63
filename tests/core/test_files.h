#pragma once
// Helpers for tests that write files: a scratch directory removed at the end,
// and raw byte writing (to make malformed files on purpose).
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace qs::test {

class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }
  std::string file(const std::string& name) const { return (path_ / name).string(); }

 private:
  std::filesystem::path path_;
};

void write_bytes(const std::string& path, const std::string& bytes);
std::string read_bytes(const std::string& path);
// Inverts the byte at `offset` of an existing file in place (a corruption
// between an exporter's write and its read-back check).
void flip_byte(const std::string& path, std::uint64_t offset);
// The same for the byte in the middle of `tensor`'s data in a safetensors
// file; false when the file does not read or has no such tensor.
bool flip_safetensors_byte(const std::string& path, const std::string& tensor);
// A safetensors file from a header text and a data area, with the 8-byte length in front.
std::string safetensors_bytes(const std::string& header_json, const std::string& data);
// The shared/ folder beside the repository, or "" when absent.
std::string shared_dir();
// Writes a small demo model (core/demo) into `dir` and returns its path: a
// llama-shaped HF directory with planted outliers, for tests of whole-model paths.
std::string write_small_demo(const std::filesystem::path& dir, int layers, int hidden, int intermediate);
// A gtest parameter name from a description ("bad magic" -> "bad_magic").
std::string test_name_of(const std::string& description);

}  // namespace qs::test

// In a test body: `shared` names ../shared, or the test skips (with the reason
// printed) when it is absent, as in a user's fresh clone.
#define QS_REQUIRE_SHARED()                            \
  const std::string shared = qs::test::shared_dir();   \
  if (shared.empty()) GTEST_SKIP() << "../shared is absent (fresh clone): skipping a test on real models/cases"
