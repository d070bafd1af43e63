#pragma once
#include <string>

namespace qs::cli {

struct EvalOptions {
  std::string path;   // model: HF directory or .gguf
  std::string plan;   // plan.json; empty: the model as it is
  std::string text;   // evaluation text file
  int ctx = 256;      // tokens per chunk
  int chunks = -1;    // -1: all
  bool json = false;
  std::string backend;  // forward pass: auto, cpu, cuda (empty: $QS_BACKEND or auto)
  std::string calib_file;  // calibration file (quantscope-cli calibrate) for the plan's gptq/awq layers
};

// Perplexity of a model on a text (llama-perplexity's protocol) and, with a
// plan, of the model with its weights fake-quantized by the plan, plus the
// mean KL divergence of the quantized model's next-token distributions from
// the unquantized model's.
int run_eval(const EvalOptions& opt);

}  // namespace qs::cli
