#pragma once
#include <string>
#include <vector>

namespace qs::cli {

struct MeasureOptions {
  std::string path;
  std::vector<std::string> formats;  // e.g. {"q4_k", "int4-g128"}
  bool json = false;
};

// Quantizes every linear layer with each format (RTN / ggml reference) and
// prints bits per weight, SQNR and max error per layer and for the model.
int run_measure(const MeasureOptions& opt);

}  // namespace qs::cli
