#include "io/hdf5_guard.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "calib/calibration_file.h"
#include "io/keras_h5.h"
#include "io/quantized_h5.h"

extern char** environ;

#if defined(__SANITIZE_ADDRESS__)
#define QS_H5_GUARD_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define QS_H5_GUARD_ASAN 1
#endif
#endif

namespace qs::h5 {
namespace {

constexpr const char* kKindVar = "QS_HDF5_VET_KIND";
constexpr const char* kPathVar = "QS_HDF5_VET_PATH";
constexpr const char* kBudgetVar = "QS_HDF5_VET_BUDGET";
constexpr const char* kSecondsVar = "QS_HDF5_VET_SECONDS";

bool g_in_child = false;

Result<void> read_whole(const std::string& path, VetKind kind) {
  switch (kind) {
    case VetKind::KerasModel:
      if (auto m = open_keras_h5(path); !m) return m.error();
      return {};
    case VetKind::CalibrationFile:
      if (auto f = read_calibration_file(path, nullptr); !f) return f.error();
      return {};
    case VetKind::QuantizedCheckpoint: {
      auto f = read_quantized_h5(path);
      if (!f) return f.error();
      for (const QuantizedH5Tensor& t : f->tensors)
        if (auto v = read_quantized_h5_values(*f, t); !v) return v.error();
      return {};
    }
  }
  return {};
}

// The child's whole life, before main(): limits, the read, the answer on stdout.
[[gnu::constructor]] void run_as_vetting_child() {
  const char* kind = std::getenv(kKindVar);
  const char* path = std::getenv(kPathVar);
  if (!kind || !path) return;
  g_in_child = true;
  const rlimit no_core{0, 0};
  ::setrlimit(RLIMIT_CORE, &no_core);
#ifndef QS_H5_GUARD_ASAN  // ASan reserves terabytes of address space: no AS limit under it
  if (const char* b = std::getenv(kBudgetVar)) {
    const rlim_t budget = std::strtoull(b, nullptr, 10);
    const rlimit as{budget, budget};
    ::setrlimit(RLIMIT_AS, &as);
  }
#endif
  if (const char* s = std::getenv(kSecondsVar)) ::alarm(static_cast<unsigned>(std::strtoul(s, nullptr, 10)));
  const int k = std::atoi(kind);
  Result<void> r;
  try {
    r = read_whole(path, static_cast<VetKind>(k));
  } catch (...) {
    ::_exit(3);  // bad_alloc under the limit, or anything else: not a clean answer
  }
  if (r) ::_exit(0);
  const std::string& m = r.error().message;
  for (std::size_t at = 0; at < m.size();) {
    const ssize_t n = ::write(1, m.data() + at, m.size() - at);
    if (n <= 0) break;
    at += static_cast<std::size_t>(n);
  }
  ::_exit(2);
}

}  // namespace

Result<void> vet_in_child(const std::string& path, VetKind kind) {
  if (g_in_child) return {};
  struct stat st {};
  const std::uint64_t size = ::stat(path.c_str(), &st) == 0 ? static_cast<std::uint64_t>(st.st_size) : 0;
  // Generous for a healthy file (a read runs at hundreds of MB/s), finite for a loop.
  const unsigned seconds = static_cast<unsigned>(10 + size / (50u << 20));
  // What a reader may hold: the file's values, expanded (compressed chunks) at most 4x, and 2 GiB besides.
  const std::uint64_t budget = std::max<std::uint64_t>(std::uint64_t{2} << 30, 4 * size) + (std::uint64_t{1} << 30);

  std::vector<std::string> env_storage;
  for (char** e = environ; e && *e; ++e)
    if (std::strncmp(*e, "QS_HDF5_VET_", 12) != 0) env_storage.emplace_back(*e);
  env_storage.push_back(std::string(kKindVar) + "=" + std::to_string(static_cast<int>(kind)));
  env_storage.push_back(std::string(kPathVar) + "=" + path);
  env_storage.push_back(std::string(kBudgetVar) + "=" + std::to_string(budget));
  env_storage.push_back(std::string(kSecondsVar) + "=" + std::to_string(seconds));
  std::vector<char*> envp;
  for (auto& e : env_storage) envp.push_back(e.data());
  envp.push_back(nullptr);
  char arg0[] = "quantscope-hdf5-check";
  char* argv[] = {arg0, nullptr};

  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return Error::io(path + ": cannot check the HDF5 file: " + std::strerror(errno));
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, fds[1], 1);
  posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0);  // a crash report is not the user's
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t none, all_default;
  sigemptyset(&none);
  sigfillset(&all_default);
  posix_spawnattr_setsigmask(&attr, &none);  // a worker thread's blocked signals must not block SIGALRM there
  posix_spawnattr_setsigdefault(&attr, &all_default);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  pid_t pid = -1;
  const int spawned = ::posix_spawn(&pid, "/proc/self/exe", &actions, &attr, argv, envp.data());
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  ::close(fds[1]);
  if (spawned != 0) {
    ::close(fds[0]);
    return Error::io(path + ": cannot check the HDF5 file in a child process: " + std::strerror(spawned));
  }
  // The child's alarm ends a hung read; this deadline (its start-up on top) ends anything else.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(seconds + 20);
  std::string message;
  bool killed = false;
  char buf[4096];
  for (;;) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now()).count();
    if (left <= 0) {
      ::kill(pid, SIGKILL);
      killed = true;
      break;
    }
    pollfd p{fds[0], POLLIN, 0};
    const int ready = ::poll(&p, 1, static_cast<int>(std::min<long long>(left, 1000)));
    if (ready < 0 && errno != EINTR) break;
    if (ready <= 0) continue;
    const ssize_t n = ::read(fds[0], buf, sizeof buf);
    if (n > 0) {
      if (message.size() < (1u << 16)) message.append(buf, static_cast<std::size_t>(n));
    } else if (n == 0 || errno != EINTR) {
      break;
    }
  }
  ::close(fds[0]);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (!killed && WIFEXITED(status) && WEXITSTATUS(status) == 0) return {};
  if (!killed && WIFEXITED(status) && WEXITSTATUS(status) == 2 && !message.empty()) return Error::format(message);
  if (killed || (WIFSIGNALED(status) && WTERMSIG(status) == SIGALRM))
    return Error::format(path + ": the HDF5 library did not finish reading this file in " + std::to_string(seconds) +
                         " s: it is damaged (libhdf5 loops on some damaged files)");
  const std::string how = WIFSIGNALED(status) ? "died of signal " + std::to_string(WTERMSIG(status))
                                              : "failed (exit " + std::to_string(WEXITSTATUS(status)) + ")";
  return Error::format(path + ": the HDF5 library " + how + " reading this file (or needed more than " +
                       std::to_string(budget >> 20) + " MiB): it is damaged or not a file QuantScope reads");
}

}  // namespace qs::h5
