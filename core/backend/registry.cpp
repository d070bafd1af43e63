#include "backend/registry.h"

#include <cstdlib>
#include <map>
#include <mutex>

#include "backend/cpu_backend.h"

namespace qs {
namespace {
std::mutex g_mutex;
std::map<std::string, BackendFactory>& factories() {
  static std::map<std::string, BackendFactory> f;
  return f;
}
std::string g_fallback_reason;
}  // namespace

void register_backend_factory(const std::string& name, BackendFactory factory) {
  std::lock_guard lock(g_mutex);
  factories()[name] = std::move(factory);
}

std::shared_ptr<Backend> cpu_backend() {
  static std::shared_ptr<Backend> cpu = std::make_shared<CpuBackend>();
  return cpu;
}

std::string backend_fallback_reason() {
  std::lock_guard lock(g_mutex);
  return g_fallback_reason;
}

Result<std::shared_ptr<Backend>> make_backend(std::string choice) {
  if (choice.empty()) {
    const char* env = std::getenv("QS_BACKEND");
    choice = (env && *env) ? env : "auto";
  }
  if (choice == "cpu") return cpu_backend();
  if (choice != "auto" && choice != "cuda")
    return Error::invalid("unknown backend \"" + choice + "\" (use auto, cpu or cuda)");

  std::lock_guard lock(g_mutex);
  auto it = factories().find("cuda");
  if (it == factories().end()) {
    if (choice == "cuda") return Error::unsupported("this build has no CUDA backend (nvcc was not found when it was built)");
    return cpu_backend();
  }
  std::string why;
  std::unique_ptr<Backend> b = it->second(why);
  if (b) return std::shared_ptr<Backend>(std::move(b));
  if (choice == "cuda") return Error::backend("CUDA backend unavailable: " + why);
  g_fallback_reason = why;
  return cpu_backend();
}

}  // namespace qs
