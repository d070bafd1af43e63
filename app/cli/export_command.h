#pragma once
#include <string>

namespace qs::cli {

struct ExportOptions {
  std::string path;    // source model
  std::string out;     // output file
  std::string ftype = "q8_0";  // llama.cpp file type
  bool json = false;
};

// Writes a quantized GGUF with llama-quantize's per-tensor types for the file
// type, and lists each tensor's type and the rule or fallback that chose it.
int run_export(const ExportOptions& opt);

}  // namespace qs::cli
