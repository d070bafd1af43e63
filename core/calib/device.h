#pragma once
// Devices: where work runs. A device makes the Backend that runs whole-tensor
// ops (statistics, RTN, Hessian sums, GPTQ) and the llama forward pass, and
// says what it hands to the CPU. The CPU is a device like any other
// (cpu_device(), never a null pointer); kernels/ registers CUDA's at start-up,
// so core never depends on CUDA. This is the one registry: the backend and
// the forward runner of a choice ("auto", "cpu", "cuda") come from the same
// device.
#include <functional>
#include <memory>
#include <string>

#include "backend/backend.h"
#include "calib/forward_runner.h"
#include "util/result.h"

namespace qs {

class ThreadPool;

// What a caller may ask a device to run.
enum class DeviceOp {
  Forward,             // the llama forward pass
  ForwardInputQuant,   // the forward pass with W8A8 input quantization (SmoothQuant evaluation)
  HessianSum,          // H += X^T X of calibration
  Gptq,                // GPTQ on one layer
};

class Device {
 public:
  virtual ~Device() = default;
  virtual std::string name() const = 0;         // "cpu", "cuda": what a choice names
  virtual std::string description() const = 0;  // for users: "CPU (16 threads)", "NVIDIA H100 80GB HBM3"
  // The CPU: the core's own loops run here, nothing is copied anywhere.
  virtual bool is_host() const { return false; }
  virtual std::shared_ptr<Backend> backend() const = 0;
  // A forward pass over `model` with a cache of `capacity` positions, or
  // nullptr with the reason (no memory for it, a shape it cannot take).
  // `pool` is the CPU's threads (nullptr: ThreadPool::global()).
  virtual std::unique_ptr<ForwardRunner> forward_runner(const LlamaModel& model, int capacity, ThreadPool* pool,
                                                        std::string& why_not) const = 0;
  // Empty when the device runs `op` itself; else why the CPU runs it instead.
  virtual std::string hands_to_cpu(DeviceOp op) const = 0;
};

// The process's CPU device (its backend is cpu_backend()).
std::shared_ptr<Device> cpu_device();

// A factory returns nullptr with the reason when its device is not usable now
// (asked anew at every choice: a device may come and go).
using DeviceFactory = std::function<std::shared_ptr<Device>(std::string& why_not)>;
void register_device(const std::string& name, DeviceFactory factory);

struct DeviceChoice {
  std::shared_ptr<Device> device;  // never null
  // Set when a device was asked for ("auto" or by name) and the CPU runs
  // instead: why, in words a user can act on. Empty otherwise.
  std::string fallback_reason;
};

// `choice`: "auto" (a registered device if one starts, else the CPU), "cpu",
// or a registered name; empty means $QS_BACKEND, else "auto". An unknown name
// is an error; a named device that cannot start falls back to the CPU with the
// reason, or is an error when `strict` (a user who asked for it by name on the
// command line of a device-only job).
Result<DeviceChoice> choose_device(std::string choice, bool strict = false);

// The backend of choose_device(choice, strict = choice names a device); "auto"
// remembers why it fell back (backend_fallback_reason).
Result<std::shared_ptr<Backend>> make_backend(std::string choice = {});
// Why the last make_backend("auto") ran on the CPU (empty if it did not, or no device is registered).
std::string backend_fallback_reason();

struct ForwardRunnerChoice {
  std::unique_ptr<ForwardRunner> runner;
  std::string fallback_reason;  // as DeviceChoice's, or why the device could not make the runner
};

// A forward runner from the device `choice` names; where that device cannot
// run it (not up, no memory, W8A8 inputs), the CPU's, with the reason:
// evaluation is worth finishing on the CPU. Only an unknown name is an error.
Result<ForwardRunnerChoice> make_forward_runner(const LlamaModel& model, int capacity, std::string choice = {},
                                                ThreadPool* pool = nullptr);

}  // namespace qs
