#include "io/hdf5_guard.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/prctl.h>
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
constexpr const char* kBudgetVar = "QS_HDF5_CHECK_BUDGET";
constexpr const char* kSecondsVar = "QS_HDF5_CHECK_ALARM";

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
      for (const QuantizedH5Tensor& t : f->tensors)  // every dataset libhdf5 will be asked for, undecoded
        if (auto v = read_quantized_h5_stored(*f, t); !v) return v.error();
      return {};
    }
  }
  return {};
}

constexpr const char* kArg0 = "quantscope-hdf5-check";
constexpr const char* kMagic = "QSVET1\n";

void write_all(int fd, const std::string& m) {
  for (std::size_t at = 0; at < m.size();) {
    const ssize_t n = ::write(fd, m.data() + at, m.size() - at);
    if (n <= 0) return;
    at += static_cast<std::size_t>(n);
  }
}

// The child's whole life, before main(): limits, the read, the answer on
// stdout — the magic line, then "OK" or the error's code and message. Only a
// process started as kArg0 with the variables set is a child (a variable that
// leaked into a user's environment does not turn the CLI into one); glibc hands
// constructors argc/argv.
[[gnu::constructor]] void run_as_vetting_child(int argc, char** argv, char**) {
  const char* kind = std::getenv(kKindVar);
  const char* path_var = std::getenv(kPathVar);
  if (argc != 1 || !argv || !argv[0] || std::strcmp(argv[0], kArg0) != 0 || !kind || !path_var) return;
  g_in_child = true;
  const std::string path = path_var;
  const int k = std::atoi(kind);
  const char* budget_var = std::getenv(kBudgetVar);
  const char* seconds_var = std::getenv(kSecondsVar);
  const rlim_t budget = budget_var ? std::strtoull(budget_var, nullptr, 10) : 0;
  const unsigned seconds = seconds_var ? static_cast<unsigned>(std::strtoul(seconds_var, nullptr, 10)) : 0;
  for (const char* v : {kKindVar, kPathVar, kBudgetVar, kSecondsVar}) ::unsetenv(v);
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);  // the reader's process gone (killed, quit): so is this
  const rlimit no_core{0, 0};
  ::setrlimit(RLIMIT_CORE, &no_core);
#ifndef QS_H5_GUARD_ASAN  // ASan reserves terabytes of address space: its allocator limits are in ASAN_OPTIONS
  if (budget > 0) {
    const rlimit as{budget, budget};
    ::setrlimit(RLIMIT_AS, &as);
  }
#else
  (void)budget;
#endif
  if (seconds > 0) ::alarm(seconds);
  write_all(1, kMagic);
  Result<void> r;
  try {
    r = read_whole(path, static_cast<VetKind>(k));
  } catch (const std::bad_alloc&) {
    r = Error::unsupported(path + ": declares more than the HDF5 check's memory limit");
  } catch (...) {
    std::abort();  // any other exception is a bug in a reader: a crash, as in the process itself
  }
  if (r) {
    write_all(1, "OK");
    ::_exit(0);
  }
  write_all(1, std::string(1, static_cast<char>('0' + static_cast<int>(r.error().code))) + r.error().message);
  ::_exit(0);
}

}  // namespace

Result<void> vet_in_child(const std::string& path, VetKind kind) {
  if (g_in_child) return {};
  struct stat st {};
  // A path that is not there, or not a regular file (a FIFO would block the
  // child's open), is the reader's to refuse without libhdf5.
  if (::stat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) return {};
  const std::uint64_t size = static_cast<std::uint64_t>(st.st_size);
  // Generous for a healthy file (a read runs at hundreds of MB/s), finite for a loop;
  // QS_HDF5_CHECK_SECONDS raises it for very slow storage.
  unsigned seconds = static_cast<unsigned>(5 + size / (50u << 20));
  if (const char* set = std::getenv("QS_HDF5_CHECK_SECONDS"); set && std::strtoul(set, nullptr, 10) > seconds)
    seconds = static_cast<unsigned>(std::strtoul(set, nullptr, 10));
  // What a reader may hold: the file's values, expanded (compressed chunks) at most 4x, and 2 GiB besides.
  const std::uint64_t budget = std::max<std::uint64_t>(std::uint64_t{2} << 30, 4 * size) + (std::uint64_t{1} << 30);

  std::vector<std::string> env_storage;
  std::string asan = "ASAN_OPTIONS=", ubsan = "UBSAN_OPTIONS=";
  for (char** e = environ; e && *e; ++e) {
    if (std::strncmp(*e, "QS_HDF5_", 8) == 0 || std::strncmp(*e, "OPENBLAS_NUM_THREADS=", 21) == 0) continue;
    if (std::strncmp(*e, "ASAN_OPTIONS=", 13) == 0) asan = *e;
    else if (std::strncmp(*e, "UBSAN_OPTIONS=", 14) == 0) ubsan = *e;
    else env_storage.emplace_back(*e);
  }
  // Under the sanitizers: a report in our own (instrumented) reader code exits 86 —
  // a bug, which the parent must not call a damaged file — while libhdf5's own
  // crashes (not instrumented) stay plain signals and its huge allocations fail.
  const std::string mb = std::to_string(budget >> 20);
  asan += ":exitcode=86:abort_on_error=0:handle_segv=0:handle_abort=0:detect_leaks=0:allocator_may_return_null=1"
          ":max_allocation_size_mb=" + mb + ":soft_rss_limit_mb=" + mb;
  ubsan += ":exitcode=86:abort_on_error=0";
  env_storage.push_back(asan);
  env_storage.push_back(ubsan);
  env_storage.emplace_back("OPENBLAS_NUM_THREADS=1");  // its pool is not needed to read a file
  env_storage.push_back(std::string(kKindVar) + "=" + std::to_string(static_cast<int>(kind)));
  env_storage.push_back(std::string(kPathVar) + "=" + path);
  env_storage.push_back(std::string(kBudgetVar) + "=" + std::to_string(budget));
  env_storage.push_back(std::string(kSecondsVar) + "=" + std::to_string(seconds));
  std::vector<char*> envp;
  for (auto& e : env_storage) envp.push_back(e.data());
  envp.push_back(nullptr);
  std::string arg0 = kArg0;
  char* argv[] = {arg0.data(), nullptr};

  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return Error::io(path + ": cannot check the HDF5 file: " + std::strerror(errno));
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, fds[1], 1);
#ifndef QS_H5_GUARD_ASAN
  posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0);  // a crash report is not the user's
#endif  // (a sanitizer build keeps stderr: its report is the finding)
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
  std::string answer;
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
      if (answer.size() < (1u << 16)) answer.append(buf, static_cast<std::size_t>(n));
    } else if (n == 0 || errno != EINTR) {
      break;
    }
  }
  ::close(fds[0]);
  int status = -1;
  pid_t waited;
  while ((waited = ::waitpid(pid, &status, 0)) < 0 && errno == EINTR) {
  }
  const bool exited = waited == pid && WIFEXITED(status);
  const bool signalled = waited == pid && WIFSIGNALED(status);
  if (exited && WEXITSTATUS(status) == 86) {
    std::fprintf(stderr, "%s: a sanitizer report in QuantScope's own HDF5 reader (above); this is a bug\n", path.c_str());
    std::abort();
  }
  // Only the child's own answer counts: the magic line, then "OK" or the error's code and message.
  const std::string magic = kMagic;
  if (!killed && exited && WEXITSTATUS(status) == 0 && answer.compare(0, magic.size(), magic) == 0) {
    const std::string body = answer.substr(magic.size());
    if (body == "OK") return {};
    if (body.size() >= 2 && body[0] >= '0' && body[0] <= '5')
      return Error{static_cast<ErrorCode>(body[0] - '0'), body.substr(1)};
  }
  if (killed || (signalled && WTERMSIG(status) == SIGALRM))
    return Error::format(path + ": the HDF5 library did not finish reading this file in " + std::to_string(seconds) +
                         " s: it is damaged (libhdf5 loops on some damaged files), or the storage is very slow "
                         "(QS_HDF5_CHECK_SECONDS raises the limit)");
  if (!signalled && !(exited && WEXITSTATUS(status) == 0))
    return Error::io(path + ": the HDF5 file could not be checked: the check process gave no answer (exit " +
                     (exited ? std::to_string(WEXITSTATUS(status)) : std::string("unknown")) + ")");
  const std::string how = signalled ? "died of signal " + std::to_string(WTERMSIG(status)) : "gave no answer";
  return Error::format(path + ": the HDF5 library " + how + " reading this file (or needed more than " + mb +
                       " MiB): it is damaged or not a file QuantScope reads");
}

}  // namespace qs::h5
