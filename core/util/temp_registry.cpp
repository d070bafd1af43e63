#include "util/temp_registry.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <filesystem>

namespace qs {
namespace {

// Fixed slots: the handler reads them without allocating or locking.
constexpr int kSlots = 64;
constexpr std::size_t kPathMax = 4096;
struct Slot {
  std::atomic<int> state{0};  // 0 free, 1 being filled, 2 active (file), 3 active (directory)
  char path[kPathMax];
};
Slot g_slots[kSlots];

// One level of a directory's entries, then the directory: getdents64 and
// unlinkat are plain system calls, safe in a signal handler (readdir is not).
void remove_dir_in_handler(const char* path) {
  const int fd = ::open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd >= 0) {
    alignas(8) char buf[8192];
    for (;;) {
      const long n = ::syscall(SYS_getdents64, fd, buf, sizeof buf);
      if (n <= 0) break;
      for (long off = 0; off < n;) {
        const auto* name = buf + off + 19;  // struct linux_dirent64: ino 8, off 8, reclen 2, type 1, name
        unsigned short reclen = 0;
        std::memcpy(&reclen, buf + off + 16, sizeof reclen);
        if (std::strcmp(name, ".") != 0 && std::strcmp(name, "..") != 0) ::unlinkat(fd, name, 0);
        off += reclen;
      }
    }
    ::close(fd);
  }
  ::rmdir(path);
}

extern "C" void on_terminating_signal(int sig) {
  const int saved = errno;
  for (Slot& s : g_slots) {
    const int st = s.state.load(std::memory_order_acquire);
    if (st == 2) ::unlink(s.path);
    else if (st == 3) remove_dir_in_handler(s.path);
  }
  errno = saved;
  // SA_RESETHAND restored the default action: die of the signal, as without us.
  ::raise(sig);
}

// ".NAME.tmp-" for a target NAME.
std::string temp_stem(const std::filesystem::path& target) {
  std::string stem(1, '.');
  stem.append(target.filename().string());
  stem.append(".tmp-");
  return stem;
}

}  // namespace

void install_temp_cleanup() {
  for (const int sig : {SIGTERM, SIGINT, SIGHUP}) {
    struct sigaction old {};
    if (::sigaction(sig, nullptr, &old) != 0 || old.sa_handler != SIG_DFL) continue;  // ignored or handled: leave it
    struct sigaction sa {};
    sa.sa_handler = on_terminating_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESETHAND;
    ::sigaction(sig, &sa, nullptr);
  }
}

int register_temp(const std::string& path, bool directory) {
  // Absolute: the handler must find it whatever the working directory is by then.
  std::error_code ec;
  const std::string abs = std::filesystem::absolute(path, ec).string();
  const std::string& p = ec ? path : abs;
  if (p.size() >= kPathMax) return -1;
  for (int i = 0; i < kSlots; ++i) {
    int expected = 0;
    if (!g_slots[i].state.compare_exchange_strong(expected, 1, std::memory_order_acq_rel)) continue;
    std::memcpy(g_slots[i].path, p.c_str(), p.size() + 1);
    g_slots[i].state.store(directory ? 3 : 2, std::memory_order_release);
    return i;
  }
  return -1;
}

void unregister_temp(int slot) {
  if (slot >= 0 && slot < kSlots) g_slots[slot].state.store(0, std::memory_order_release);
}

std::string temp_prefix_for(const std::string& target) {
  namespace fs = std::filesystem;
  const fs::path t(target);
  const fs::path dir = t.has_parent_path() ? t.parent_path() : fs::path(".");
  return (dir / temp_stem(t)).string() + std::to_string(::getpid()) + "-";
}

void remove_stale_temps(const std::string& target) {
  namespace fs = std::filesystem;
  const fs::path t(target);
  const fs::path dir = t.has_parent_path() ? t.parent_path() : fs::path(".");
  const std::string stem = temp_stem(t);
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (name.size() <= stem.size() || name.compare(0, stem.size(), stem) != 0) continue;
    // Exactly ".NAME.tmp-PID-XXXXXX" (mkstemp's six characters): a writer that no longer runs left it.
    const std::string rest = name.substr(stem.size());
    const std::size_t dash = rest.find('-');
    if (dash == std::string::npos || dash == 0 || rest.find_first_not_of("0123456789") != dash ||
        rest.size() != dash + 7 ||
        !std::all_of(rest.begin() + static_cast<std::ptrdiff_t>(dash) + 1, rest.end(),
                     [](char c) { return std::isalnum(static_cast<unsigned char>(c)) != 0; }))
      continue;
    const long pid = std::strtol(rest.substr(0, dash).c_str(), nullptr, 10);
    if (pid <= 0 || pid == ::getpid() || ::kill(static_cast<pid_t>(pid), 0) == 0 || errno != ESRCH) continue;
    std::error_code rec;
    fs::remove_all(it->path(), rec);
  }
}

}  // namespace qs
