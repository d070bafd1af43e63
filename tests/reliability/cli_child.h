#pragma once
// Runs one quantscope-cli command line in a forked child (the real cli_main,
// no exec): its exit code or the signal that ended it, whether it ran past the
// time limit (then it is killed), and what it printed on stderr.
#include <functional>
#include <string>
#include <vector>

namespace qs::reliability {

struct ChildRun {
  int exit_code = -1;  // -1 when it did not exit
  int signal = 0;      // the signal that ended it, 0 when it exited
  bool timed_out = false;
  double seconds = 0;
  std::string err;     // stderr (stdout goes to /dev/null)
};

// `tmpdir` becomes the child's TMPDIR, so that anything it leaves there is seen.
ChildRun run_cli_child(const std::vector<std::string>& args, const std::string& tmpdir, double timeout_s);

// The same for any function: its return value is the child's exit code.
ChildRun run_in_child(const std::function<int()>& body, const std::string& tmpdir, double timeout_s);

}  // namespace qs::reliability
