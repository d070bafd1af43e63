#pragma once
// Perplexity with llama.cpp's llama-perplexity protocol: the text's tokens
// (with BOS when the model adds one) are cut into chunks of n_ctx tokens (the
// remainder is dropped), each chunk runs from an empty cache with its first
// token replaced by BOS, and only the second half of each chunk is scored:
// the logits at positions n_ctx/2 … n_ctx-2 against the next token.
// ppl = exp(mean NLL), with llama.cpp's ± (standard error of the mean NLL times ppl).
#include <cstdint>
#include <span>
#include <vector>

#include "util/op_context.h"
#include "util/result.h"

namespace qs {

class ForwardRunner;
class LlamaModel;
struct LlamaConfig;
class ThreadPool;

struct PerplexityOptions {
  int n_ctx = 256;
  int max_chunks = -1;       // -1: all whole chunks
  std::int32_t bos = -1;     // the token that replaces each chunk's first; -1: keep the text's
  ThreadPool* pool = nullptr;
};

struct PerplexityResult {
  double ppl = 0;
  double ppl_error = 0;     // llama.cpp's "± x"
  double mean_nll = 0;
  int chunks = 0;
  std::int64_t tokens_scored = 0;
  std::int64_t tokens_run = 0;      // tokens through the forward pass (chunks * n_ctx)
  double seconds = 0;               // forward passes and scoring
  std::vector<double> running_ppl;  // after each chunk, as llama-perplexity prints "[i]x"
};

Result<PerplexityResult> perplexity(const LlamaModel& model, std::span<const std::int32_t> tokens,
                                    const PerplexityOptions& opt, OpContext& ctx = OpContext::none());
// The same on any runner of that model (CPU or device; see forward_runner.h):
// its cache must hold n_ctx positions and is cleared for each chunk; opt.pool is unused.
Result<PerplexityResult> perplexity(ForwardRunner& runner, const LlamaConfig& config, std::span<const std::int32_t> tokens,
                                    const PerplexityOptions& opt, OpContext& ctx = OpContext::none());

}  // namespace qs
