#pragma once
#include <string>
#include <vector>

namespace qs::cli {

struct CompareOptions {
  std::string reference;           // the unquantized model: HF directory or .gguf
  std::vector<std::string> files;  // quantized models of it (GGUF files of any tool, HF directories)
  std::string text;                // evaluation text
  int ctx = 256;
  int chunks = -1;
  bool json = false;
  std::string backend;
};

// Each file against the reference on one text, llama-perplexity's protocol:
// its size, bits/weight over the tensors it holds, perplexity, mean KL
// divergence from the reference (± its standard error) and the share of
// positions whose most likely token is the reference's; one row per file,
// sorted by size, so that two tools' files draw one size/KLD curve.
int run_compare(const CompareOptions& opt);

}  // namespace qs::cli
