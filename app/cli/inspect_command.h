#pragma once
#include <string>

namespace qs::cli {

struct InspectOptions {
  std::string path;
  bool json = false;
  bool stats = true;  // false: headers only, no pass over the weights
  double outlier_k = 6.0;
  std::string backend;  // auto / cpu / cuda (empty: QS_BACKEND or auto)
};

// Prints the architecture and the layer table; returns the process exit code.
int run_inspect(const InspectOptions& opt);

}  // namespace qs::cli
