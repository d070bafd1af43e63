#include "calib/device.h"

#include <cstdlib>
#include <map>
#include <mutex>
#include <vector>

#include "backend/cpu_backend.h"
#include "backend/thread_pool.h"

namespace qs {
namespace {

class CpuDevice final : public Device {
 public:
  std::string name() const override { return "cpu"; }
  std::string description() const override { return cpu_backend()->description(); }
  bool is_host() const override { return true; }
  std::shared_ptr<Backend> backend() const override { return cpu_backend(); }
  std::unique_ptr<ForwardRunner> forward_runner(const LlamaModel& model, int capacity, ThreadPool* pool,
                                                std::string&) const override {
    return make_cpu_forward_runner(model, capacity, pool);
  }
  std::string hands_to_cpu(DeviceOp) const override { return {}; }
};

std::mutex g_mutex;
std::map<std::string, DeviceFactory>& factories() {
  static std::map<std::string, DeviceFactory> f;
  return f;
}
std::string g_fallback_reason;

// The name a choice resolves to: $QS_BACKEND, else "auto".
std::string resolved(std::string choice) {
  if (!choice.empty()) return choice;
  const char* env = std::getenv("QS_BACKEND");
  return (env && *env) ? env : "auto";
}

// How users write a device's name ("CUDA", not the choice's "cuda").
std::string display_name(const std::string& choice) { return choice == "cuda" ? "CUDA" : choice; }

}  // namespace

std::shared_ptr<Device> cpu_device() {
  static const std::shared_ptr<Device> cpu = std::make_shared<CpuDevice>();
  return cpu;
}

void register_device(const std::string& name, DeviceFactory factory) {
  std::lock_guard lock(g_mutex);
  factories()[name] = std::move(factory);
}

Result<DeviceChoice> choose_device(std::string choice, bool strict) {
  choice = resolved(std::move(choice));
  DeviceChoice out{cpu_device(), {}};
  if (choice == "cpu") return out;
  std::vector<std::pair<std::string, DeviceFactory>> candidates;
  {
    std::lock_guard lock(g_mutex);
    if (choice == "auto") {
      for (const auto& [name, f] : factories()) candidates.emplace_back(name, f);
    } else if (auto it = factories().find(choice); it != factories().end()) {
      candidates.emplace_back(it->first, it->second);
    } else if (choice != "cuda") {
      return Error::invalid("unknown backend \"" + choice + "\" (use auto, cpu or cuda)");
    }
  }
  if (candidates.empty()) {
    // "auto" in a build without devices is the ordinary CPU case: nothing to report.
    if (choice == "auto") return out;
    const std::string why = "this build has no " + display_name(choice) + " backend (nvcc was not found when it was built)";
    if (strict) return Error::unsupported(why);
    out.fallback_reason = why;
    return out;
  }
  std::string reasons, last_why;
  for (auto& [name, factory] : candidates) {  // outside the lock: a factory probes its device
    std::string why;
    if (auto d = factory(why)) {
      out.device = std::move(d);
      return out;
    }
    last_why = why.empty() ? std::string("unavailable") : why;
    reasons += (reasons.empty() ? "" : "; ") + name + ": " + last_why;
  }
  if (strict && choice != "auto") return Error::backend(display_name(choice) + " backend unavailable: " + last_why);
  out.fallback_reason = reasons;
  return out;
}

Result<std::shared_ptr<Backend>> make_backend(std::string choice) {
  choice = resolved(std::move(choice));
  auto c = choose_device(choice, choice != "auto");
  if (!c) return c.error();
  if (choice == "auto") {
    std::lock_guard lock(g_mutex);
    g_fallback_reason = c->fallback_reason;
  }
  return c->device->backend();
}

std::string backend_fallback_reason() {
  std::lock_guard lock(g_mutex);
  return g_fallback_reason;
}

Result<ForwardRunnerChoice> make_forward_runner(const LlamaModel& model, int capacity, std::string choice, ThreadPool* pool) {
  choice = resolved(std::move(choice));
  auto c = choose_device(choice);
  if (!c) return c.error();
  ForwardRunnerChoice out;
  out.fallback_reason = c->fallback_reason;
  const Device& device = *c->device;
  std::string why;
  if (model.quantizes_inputs()) why = device.hands_to_cpu(DeviceOp::ForwardInputQuant);
  if (why.empty()) why = device.hands_to_cpu(DeviceOp::Forward);
  if (why.empty()) {
    if ((out.runner = device.forward_runner(model, capacity, pool, why))) return out;
    if (why.empty()) why = "unavailable";
  }
  // Said only where a device was asked for: "auto" quietly runs what a device cannot on the CPU,
  // unless a device was found and could not take this model (the user should hear why).
  if (!device.is_host()) out.fallback_reason = device.name() + ": " + why;
  out.runner = make_cpu_forward_runner(model, capacity, pool);
  return out;
}

}  // namespace qs
