#pragma once
#include <string>

namespace qs::cli {

struct PerplexityOptions {
  std::string path;   // model: HF directory or .gguf
  std::string text;   // evaluation text file
  int ctx = 256;      // tokens per chunk
  int chunks = -1;    // -1: all
  bool json = false;
  std::string backend;  // forward pass: auto, cpu, cuda (empty: $QS_BACKEND or auto)
};

// Perplexity of a llama-family model on a text, with llama-perplexity's
// protocol (chunks of --ctx tokens, BOS first, the second half of each scored).
int run_perplexity(const PerplexityOptions& opt);

}  // namespace qs::cli
