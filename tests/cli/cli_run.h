#pragma once
// What the quantscope-cli tests share: running the binary, and a suite whose
// demo model lives in a scratch folder removed at the end.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

#include "demo/demo_model.h"

namespace qs::test {

struct CliRun {
  int code = -1;
  std::string out;
};

// A file's bytes (empty when it cannot be read).
inline std::string file_bytes(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// Runs a shell command line and collects its stdout.
inline CliRun run_command(const std::string& cmd) {
  CliRun r;
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return r;
  std::array<char, 4096> buf{};
  std::size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), p)) > 0) r.out.append(buf.data(), n);
  const int status = pclose(p);
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

// Runs quantscope-cli with `args` through the shell; stderr joins stdout when asked.
inline CliRun run(const std::string& args, bool merge_stderr = false) {
  return run_command(std::string(QS_CLI_PATH) + " " + args + (merge_stderr ? " 2>&1" : " 2>/dev/null"));
}

// The same with environment assignments ("A=1 B=2") in front; stderr joins stdout.
inline CliRun run_env(const std::string& env, const std::string& args) {
  return run_command(env + " " + std::string(QS_CLI_PATH) + " " + args + " 2>&1");
}

class Cli : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = std::filesystem::temp_directory_path() / ("qs-cli-test-" + std::to_string(::getpid()));
    ASSERT_TRUE(qs::write_demo_model(dir_.string()).ok());
  }
  static void TearDownTestSuite() { std::filesystem::remove_all(dir_); }
  inline static std::filesystem::path dir_;
};

}  // namespace qs::test
