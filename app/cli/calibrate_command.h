#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace qs::cli {

struct CalibrateOptions {
  std::string path;                 // model
  std::vector<std::string> texts;   // calibration text files
  int sequences = 128;
  int ctx = 256;                    // tokens per sequence
  std::uint64_t seed = 0;
  bool consecutive = false;         // consecutive windows from the start instead of drawn ones
  int heatmap_tokens = 128;
  bool no_hessians = false;
  std::string out;                  // calibration file; empty: next to the model (none with --imatrix alone)
  std::string imatrix;              // also (or only) an importance matrix in llama.cpp's layout
  bool json = false;
  std::string backend;              // forward pass: auto, cpu, cuda (empty: $QS_BACKEND or auto)
};

// Runs the model over calibration text, prints a summary per linear-layer
// input (outlier channels first) and writes the HDF5 calibration file.
int run_calibrate(const CalibrateOptions& opt);

}  // namespace qs::cli
