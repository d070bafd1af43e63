#include "cli_child.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>

#include "cli_main.h"
#include "util/temp_registry.h"

#if defined(__SANITIZE_ADDRESS__)
#define QS_UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define QS_UNDER_ASAN 1
#endif
#endif

namespace qs::reliability {

ChildRun run_cli_child(const std::vector<std::string>& args, const std::string& tmpdir, double timeout_s) {
  return run_in_child(
      [&] {
        std::vector<std::string> storage{"quantscope-cli"};
        storage.insert(storage.end(), args.begin(), args.end());
        std::vector<char*> argv;
        for (auto& s : storage) argv.push_back(s.data());
        argv.push_back(nullptr);
        return qs::cli::cli_main(static_cast<int>(storage.size()), argv.data());
      },
      tmpdir, timeout_s);
}

ChildRun run_in_child(const std::function<int()>& body, const std::string& tmpdir, double timeout_s) {
  ChildRun r;
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) {
    r.err = "pipe failed";
    return r;
  }
  std::fflush(stdout);
  std::fflush(stderr);
  const auto t0 = std::chrono::steady_clock::now();
  const pid_t pid = ::fork();
  if (pid == 0) {
    const int null = ::open("/dev/null", O_RDWR);
    ::dup2(null, 0);
    ::dup2(null, 1);
    ::dup2(fds[1], 2);
    ::setenv("TMPDIR", tmpdir.c_str(), 1);
#ifndef QS_UNDER_ASAN
    // The machine's memory is not the test's to spend: a reader that believes a
    // lying size must fail here as it would on a smaller machine, not swap.
    const rlimit as{std::uint64_t{6} << 30, std::uint64_t{6} << 30};
    ::setrlimit(RLIMIT_AS, &as);
#endif
    // The corpus's inputs are tiny: a budget far below the machine's makes any
    // size a damaged file declares meet the budget check, on every machine alike.
    ::setenv("QS_MEMORY_BUDGET", "2G", 1);
    qs::install_temp_cleanup();
    int code = 2;
    try {
      code = body();
    } catch (...) {
      std::abort();  // as the real binary ends on an escaped exception; never back into the test
    }
    std::fflush(stdout);
    std::fflush(stderr);
    ::_exit(code);
  }
  ::close(fds[1]);
  if (pid < 0) {
    ::close(fds[0]);
    r.err = "fork failed";
    return r;
  }
  const auto deadline = t0 + std::chrono::duration<double>(timeout_s);
  char buf[4096];
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      r.timed_out = true;
      ::kill(pid, SIGKILL);
      break;
    }
    pollfd p{fds[0], POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
    const ssize_t n = ::read(fds[0], buf, sizeof buf);
    if (n <= 0) break;
    if (r.err.size() < (1u << 20)) r.err.append(buf, static_cast<std::size_t>(n));
  }
  ::close(fds[0]);
  // stderr closed; the child may still be running (or hang) after it.
  int status = 0;
  bool reaped = false;
  for (;;) {
    const pid_t w = ::waitpid(pid, &status, WNOHANG);
    if (w == pid) reaped = true;
    if (w == pid || (w < 0 && errno != EINTR)) break;
    if (std::chrono::steady_clock::now() >= deadline && !r.timed_out) {
      r.timed_out = true;
      ::kill(pid, SIGKILL);
    }
    ::usleep(1000);
  }
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (reaped && WIFEXITED(status)) r.exit_code = WEXITSTATUS(status);
  if (reaped && WIFSIGNALED(status)) r.signal = WTERMSIG(status);
  return r;
}

}  // namespace qs::reliability
