// The CUDA device: its backend (cuda_backend.cpp) and forward pass
// (cuda_llama.cpp), and what it hands to the CPU.
#include "cuda_compute_device.h"

#include "calib/device.h"
#include "cuda_backend.h"
#include "cuda_llama.h"

namespace qs {
namespace {

class CudaDevice final : public Device {
 public:
  explicit CudaDevice(std::shared_ptr<Backend> backend) : backend_(std::move(backend)) {}
  std::string name() const override { return "cuda"; }
  std::string description() const override { return backend_->description(); }
  std::shared_ptr<Backend> backend() const override { return backend_; }
  std::unique_ptr<ForwardRunner> forward_runner(const LlamaModel& model, int capacity, ThreadPool*,
                                                std::string& why_not) const override {
    return make_cuda_forward_runner(model, capacity, why_not);
  }
  std::string hands_to_cpu(DeviceOp op) const override {
    // The device forward pass has no input quantization; GPTQ grids it lacks
    // and Hessians it has no memory for go to the CPU inside the backend.
    if (op == DeviceOp::ForwardInputQuant) return "W8A8 activation quantization (SmoothQuant) runs on the CPU";
    return {};
  }

 private:
  std::shared_ptr<Backend> backend_;
};

}  // namespace

void register_cuda_device() {
  register_device("cuda", [](std::string& why_not) -> std::shared_ptr<Device> {
    auto backend = make_cuda_backend(why_not);
    if (!backend) return nullptr;
    return std::make_shared<CudaDevice>(std::move(backend));
  });
}

}  // namespace qs
