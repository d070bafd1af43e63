#pragma once
#include <string>

namespace qs::cli {

struct PlanOptions {
  std::string path;
  std::string out;         // plan.json
  std::string preset;      // or
  double budget = 0;       // target bits/weight (> 0)
  std::string candidates = "q4_0,q4_k,q5_k,q6_k,q8_0";  // formats or layer config keys ("q4_0+clip")
  std::string target = "gguf";  // the file the plan's account is of: gguf or gptq (hdf5, fakequant: not yet)
  std::string calib_file;  // calibration statistics for the allocation (output error; gptq/awq candidates)
  bool json = false;
};

// Writes a plan from a preset or allocated to a bits/weight budget, and prints
// every layer's format.
int run_plan(const PlanOptions& opt);

// `measure --plan`: measures every layer with the format the plan gives it;
// with a calibration file (docs/calibration-file.md), also each layer's
// relative output error tr(dW H dW^T) / tr(W H W^T) on its input's Hessian.
int run_measure_plan(const std::string& model_path, const std::string& plan_path, bool json,
                     const std::string& calib_file = "");

}  // namespace qs::cli
