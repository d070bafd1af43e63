// Killing an export: the target is never partial, and no temporary outlives
// the process — SIGTERM, SIGINT and SIGHUP remove them before it dies; after a
// SIGKILL the next export to the same target removes the one left behind.
#include <gtest/gtest.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "cli_run.h"
#include "demo/demo_model.h"
#include "io/safetensors.h"

extern char** environ;

namespace {

namespace fs = std::filesystem;

// quantscope-cli with `args`, killed with `sig` after `delay` (or finished
// before); returns how it ended (the wait status).
int run_and_kill(const std::vector<std::string>& args, int sig, std::chrono::milliseconds delay) {
  std::vector<std::string> all = {QS_CLI_PATH};
  all.insert(all.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (std::string& a : all) argv.push_back(a.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0);
  pid_t pid = -1;
  const int rc = posix_spawn(&pid, argv[0], &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) return -1;
  std::this_thread::sleep_for(delay);
  ::kill(pid, sig);
  int status = 0;
  ::waitpid(pid, &status, 0);
  return status;
}

// Names in `dir` that start with '.' (the temporaries' ".NAME.tmp-PID-XXXXXX").
std::vector<std::string> hidden_in(const fs::path& dir) {
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.path().filename().string()[0] == '.') out.push_back(e.path().filename().string());
  return out;
}

class Signals : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() / ("qs-signals-" + std::to_string(::getpid()));
    fs::remove_all(root_);
    fs::create_directories(root_ / "out");
    // Large enough that an export runs for a while on a 2-core machine (~25 M weights).
    qs::DemoSpec spec;
    spec.layers = 2;
    spec.hidden = 1024;
    spec.intermediate = 2816;
    ASSERT_TRUE(qs::write_demo_model((root_ / "model").string(), spec).ok());
    plan_ = (root_ / "plan.json").string();
    FILE* f = std::fopen(plan_.c_str(), "w");
    std::fputs(R"({"version":1,"default":{"format":"q4_k","method":"rtn"}})", f);
    std::fclose(f);
  }
  void TearDown() override { fs::remove_all(root_); }
  fs::path root_;
  std::string plan_;
};

TEST_F(Signals, KilledExportsLeaveNoTemporaryAndNoPartialTarget) {
  const fs::path out = root_ / "out";
  const int sigs[] = {SIGTERM, SIGINT, SIGHUP};
  int killed = 0, finished = 0;
  for (int point = 0; point < 10; ++point) {
    const fs::path target = out / ("fq" + std::to_string(point));
    const int sig = sigs[point % 3];
    const int status = run_and_kill({"export", "-f", "fakequant", "--plan", plan_, "-o", target.string(),
                                     (root_ / "model").string()},
                                    sig, std::chrono::milliseconds(40 + 90 * point));
    ASSERT_NE(status, -1);
    EXPECT_TRUE(hidden_in(out).empty()) << "after signal " << sig << " at point " << point << ": " << hidden_in(out).front();
    if (WIFSIGNALED(status)) {
      EXPECT_EQ(WTERMSIG(status), sig);  // it died of the signal, as without the handler
      ++killed;
    } else {
      ++finished;
    }
    // The target is absent or whole: a complete checkpoint that reads back.
    if (fs::exists(target)) {
      auto st = qs::read_safetensors((target / "model.safetensors").string());
      EXPECT_TRUE(st.ok()) << target << ": " << (st.ok() ? "" : st.error().message);
    }
  }
  std::printf("  %d exports killed mid-way, %d finished first\n", killed, finished);
  EXPECT_GE(killed, 3);

  // SIGKILL cannot be caught: its temporary stays, and the next export to that target removes it.
  const fs::path target = out / "killed";
  run_and_kill({"export", "-f", "fakequant", "--plan", plan_, "-o", target.string(), (root_ / "model").string()},
               SIGKILL, std::chrono::milliseconds(300));
  const auto left = hidden_in(out);
  ASSERT_FALSE(fs::exists(target) && left.empty()) << "the export finished before the SIGKILL: slow the test down";
  const qs::test::CliRun again = qs::test::run("export -f fakequant --plan " + plan_ + " -o " + target.string() + " " +
                                               (root_ / "model").string());
  ASSERT_EQ(again.code, 0) << again.out;
  EXPECT_TRUE(hidden_in(out).empty()) << hidden_in(out).front();
}

// A calibration killed mid-run: no calibration file, whole or partial, and no
// temporary (its write goes through the same AtomicFile as every export).
TEST_F(Signals, KilledCalibrationsLeaveNothing) {
  const fs::path shared = QS_SHARED_DIR;
  if (!fs::is_directory(shared / "models/stories260K/hf"))
    GTEST_SKIP() << "../shared is absent (fresh clone): calibration needs stories260K's tokenizer";
  const fs::path out = root_ / "out";
  const std::string text = (shared / "models/stories260K/eval/tiny_stories_eval.txt").string();
  int killed = 0;
  const int sigs[] = {SIGTERM, SIGINT, SIGHUP};
  for (int point = 0; point < 3; ++point) {
    std::string name = "c";
    name.append(std::to_string(point)).append(".h5");  // (not "c" + ...: GCC 12's -Wrestrict false positive)
    const fs::path target = out / name;
    // Many short sequences drawn from the text: a few seconds of forward passes, then the write.
    const int status = run_and_kill({"calibrate", (shared / "models/stories260K/hf").string(), "--text", text, "--ctx", "64",
                                     "--seqs", "4096", "-o", target.string()},
                                    sigs[point], std::chrono::milliseconds(150 + 500 * point));
    ASSERT_NE(status, -1);
    if (WIFSIGNALED(status)) ++killed;
    EXPECT_TRUE(hidden_in(out).empty()) << hidden_in(out).front();
    EXPECT_EQ(fs::exists(target), !WIFSIGNALED(status)) << target;
  }
  EXPECT_GE(killed, 1);
}

}  // namespace
