#pragma once
// A device for registry tests: the CPU's backend under another name, up only
// while `*up` holds (other tests may ask for "auto"), its forward runners made
// by `make` (a plain CPU runner, or one that counts its passes).
#include <functional>
#include <memory>
#include <string>

#include "backend/cpu_backend.h"
#include "calib/device.h"

namespace qs::test {

using RunnerMaker = std::function<std::unique_ptr<ForwardRunner>(const LlamaModel& model, int capacity)>;

inline void register_test_device(const std::string& name, const bool* up, RunnerMaker make) {
  class TestDevice final : public Device {
   public:
    TestDevice(std::string name, RunnerMaker make) : name_(std::move(name)), make_(std::move(make)) {}
    std::string name() const override { return name_; }
    std::string description() const override { return "test device"; }
    std::shared_ptr<Backend> backend() const override { return cpu_backend(); }
    std::unique_ptr<ForwardRunner> forward_runner(const LlamaModel& model, int capacity, ThreadPool*,
                                                  std::string&) const override {
      return make_(model, capacity);
    }
    std::string hands_to_cpu(DeviceOp) const override { return {}; }

   private:
    std::string name_;
    RunnerMaker make_;
  };
  register_device(name, [name, up, make](std::string& why) -> std::shared_ptr<Device> {
    if (!*up) {
      why = "test device absent";
      return nullptr;
    }
    return std::make_shared<TestDevice>(name, make);
  });
}

}  // namespace qs::test
