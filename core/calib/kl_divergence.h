#pragma once
// Evaluation of a quantized model against its unquantized reference on a
// text, with llama-perplexity's protocol (perplexity.h: chunks of n_ctx, BOS
// first, the second half of each chunk scored): both models' perplexities and,
// at every scored position, the KL divergence of the quantized model's
// next-token distribution from the reference's,
//   KL(P || Q) = Σ_i p_i (log p_i − log q_i),   P = softmax(reference logits),
// as llama-perplexity --kl-divergence reports it (mean ± standard error of the
// mean), and how often both models' most likely token agree.
#include <cstdint>
#include <span>
#include <vector>

#include "calib/perplexity.h"
#include "util/op_context.h"
#include "util/result.h"

namespace qs {

class ForwardRunner;
class LlamaModel;

// KL(P || Q) of the softmax distributions of two logit rows, in double.
double kl_divergence(const float* reference_logits, const float* logits, int vocab);

struct ModelComparison {
  PerplexityResult reference, quantized;  // both computed exactly as perplexity() does
  double mean_kld = 0, kld_error = 0;     // mean over scored positions, standard error of the mean
  double max_kld = 0;
  double median_kld = 0;
  double top1_agreement = 0;              // share of positions where both argmax tokens are the same
  std::int64_t positions = 0;
};

Result<ModelComparison> compare_models(const LlamaModel& reference, const LlamaModel& quantized,
                                       std::span<const std::int32_t> tokens, const PerplexityOptions& opt,
                                       OpContext& ctx = OpContext::none());
// The same on two runners (CPU or device, forward_runner.h) of models with
// `config`'s shape; each cache must hold n_ctx positions. opt.pool is unused.
Result<ModelComparison> compare_models(ForwardRunner& reference, ForwardRunner& quantized, const LlamaConfig& config,
                                       std::span<const std::int32_t> tokens, const PerplexityOptions& opt,
                                       OpContext& ctx = OpContext::none());

}  // namespace qs
