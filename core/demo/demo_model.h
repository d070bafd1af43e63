#pragma once
// The demo model: a small llama-shaped Hugging Face directory whose weights
// look like a real LLM's (heavy-tailed, a few outlier input channels 20-100x
// larger), so the first screen shows what the tool is for. Deterministic.
#include <cstdint>
#include <string>
#include <vector>

#include "model/dtype.h"
#include "util/result.h"

namespace qs {

struct DemoSpec {
  std::uint64_t seed = 42;
  int hidden = 256;
  int intermediate = 688;
  int layers = 6;
  int heads = 8;
  int kv_heads = 4;
  int vocab = 2048;
  DType dtype = DType::F16;  // F16, BF16 or F32
};

// Where the generator put the outliers, so tests can check the detectors find them.
struct DemoTruth {
  std::vector<int> hidden_outlier_channels;           // input channels of q/k/v/gate/up in every block
  std::vector<float> hidden_outlier_factors;          // their magnitude factors (20..100)
  std::vector<std::vector<int>> down_outlier_channels;  // per block: input channels of down_proj
};

DemoTruth demo_truth(const DemoSpec& spec);

// Writes config.json, model.safetensors and quantscope_demo.json into `dir`
// (created if needed). Files are written atomically.
Result<void> write_demo_model(const std::string& dir, const DemoSpec& spec = {});

// The per-user cache location of the default demo model, generated on first use
// (or when an older generator wrote it). Returns the directory.
std::string default_demo_dir();
Result<std::string> ensure_demo_model(const std::string& dir = default_demo_dir());

}  // namespace qs
