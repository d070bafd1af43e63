#include "calib/kl_divergence.h"

#include <algorithm>
#include <chrono>
#include <cmath>

#include "calib/forward_runner.h"
#include "calib/llama_forward.h"

namespace qs {
namespace {

// log Σ exp(row) with the max taken out, and the max; the same sums as perplexity.cpp.
struct LogSumExp {
  float max;
  double log_sum;
};
LogSumExp log_sum_exp(const float* row, int vocab) {
  const float mx = *std::max_element(row, row + vocab);
  double sum = 0;
  for (int j = 0; j < vocab; ++j) sum += std::exp(row[j] - mx);
  return {mx, std::log(sum)};
}

// Accumulates NLLs as perplexity() does and finishes the result the same way.
struct NllSums {
  double nll = 0, nll2 = 0;
  std::int64_t count = 0;
  PerplexityResult result;

  void add(const float* row, int vocab, std::int32_t target) {
    const LogSumExp l = log_sum_exp(row, vocab);
    const double v = -(static_cast<double>(row[target]) - l.max - l.log_sum);
    nll += v;
    nll2 += v * v;
    ++count;
  }
  void end_chunk() { result.running_ppl.push_back(std::exp(nll / static_cast<double>(count))); }
  void finish(int chunks, int n_ctx, double seconds) {
    PerplexityResult& r = result;
    r.seconds = seconds;
    r.chunks = chunks;
    r.tokens_scored = count;
    r.tokens_run = static_cast<std::int64_t>(chunks) * n_ctx;
    r.mean_nll = nll / static_cast<double>(count);
    r.ppl = std::exp(r.mean_nll);
    const double var = nll2 / static_cast<double>(count) - r.mean_nll * r.mean_nll;
    r.ppl_error = var > 0 && count > 1 ? std::sqrt(var / static_cast<double>(count - 1)) * r.ppl : 0.0;
  }
};

// log-softmax in double throughout (the NLL above keeps perplexity()'s float steps instead).
double log_normaliser(const float* row, int vocab) {
  const double mx = *std::max_element(row, row + vocab);
  double sum = 0;
  for (int j = 0; j < vocab; ++j) sum += std::exp(static_cast<double>(row[j]) - mx);
  return mx + std::log(sum);
}

// The options checked before anything is allocated; the number of chunks.
Result<int> evaluation_chunks(const LlamaConfig& c, std::span<const std::int32_t> tokens, const PerplexityOptions& opt) {
  if (opt.n_ctx < 4) return Error::invalid("evaluation: the context must be at least 4 tokens, got " + std::to_string(opt.n_ctx));
  if (c.max_position > 0 && opt.n_ctx > c.max_position)
    return Error::invalid("evaluation: context " + std::to_string(opt.n_ctx) + " exceeds the model's " +
                          std::to_string(c.max_position) + " positions");
  int chunks = static_cast<int>(tokens.size() / static_cast<std::size_t>(opt.n_ctx));
  if (opt.max_chunks >= 0) chunks = std::min(chunks, opt.max_chunks);
  if (chunks < 1)
    return Error::invalid("evaluation: " + std::to_string(tokens.size()) + " tokens are fewer than one chunk of " +
                          std::to_string(opt.n_ctx) + "; give more text or a smaller context");
  return chunks;
}

}  // namespace

double kl_divergence(const float* p, const float* q, int vocab) {
  const double zp = log_normaliser(p, vocab), zq = log_normaliser(q, vocab);
  double kl = 0;
  for (int i = 0; i < vocab; ++i) {
    const double log_p = static_cast<double>(p[i]) - zp;
    const double log_q = static_cast<double>(q[i]) - zq;
    kl += std::exp(log_p) * (log_p - log_q);
  }
  return std::max(kl, 0.0);  // rounding may leave -1e-17 for identical rows
}

Result<ModelComparison> compare_models(const LlamaModel& reference, const LlamaModel& quantized,
                                       std::span<const std::int32_t> tokens, const PerplexityOptions& opt, OpContext& ctx) {
  const LlamaConfig& c = reference.config();
  const LlamaConfig& cq = quantized.config();
  if (c.vocab != cq.vocab || c.hidden != cq.hidden || c.layers != cq.layers)
    return Error::invalid("evaluation: the quantized model does not have the reference's shape");
  if (auto r = evaluation_chunks(c, tokens, opt); !r) return r.error();
  auto run_ref = make_cpu_forward_runner(reference, opt.n_ctx, opt.pool);
  auto run_q = make_cpu_forward_runner(quantized, opt.n_ctx, opt.pool);
  return compare_models(*run_ref, *run_q, c, tokens, opt, ctx);
}

Result<ModelComparison> compare_models(ForwardRunner& run_ref, ForwardRunner& run_q, const LlamaConfig& c,
                                       std::span<const std::int32_t> tokens, const PerplexityOptions& opt, OpContext& ctx) {
  auto chunks_or = evaluation_chunks(c, tokens, opt);
  if (!chunks_or) return chunks_or.error();
  const int chunks = *chunks_or;
  if (run_ref.capacity() < opt.n_ctx || run_q.capacity() < opt.n_ctx)
    return Error::invalid("evaluation: a runner's cache holds fewer positions than the context of " + std::to_string(opt.n_ctx));
  const auto t0 = std::chrono::steady_clock::now();
  std::vector<float> logits_ref, logits_q;
  std::vector<std::int32_t> chunk(static_cast<std::size_t>(opt.n_ctx));
  const int first = opt.n_ctx / 2;
  NllSums ref, q;
  std::vector<double> klds;
  double kl_sum = 0, kl_sum2 = 0;
  std::int64_t agree = 0;
  for (int k = 0; k < chunks; ++k) {
    if (ctx.cancelled()) return Error::cancelled();
    std::copy_n(tokens.begin() + static_cast<std::ptrdiff_t>(k) * opt.n_ctx, opt.n_ctx, chunk.begin());
    if (opt.bos >= 0) chunk[0] = opt.bos;
    run_ref.clear();
    if (auto r = run_ref.forward(chunk, logits_ref, opt.n_ctx - first); !r) return r.error();
    run_q.clear();
    if (auto r = run_q.forward(chunk, logits_q, opt.n_ctx - first); !r) return r.error();
    for (int i = first; i < opt.n_ctx - 1; ++i) {
      const std::size_t at = static_cast<std::size_t>(i - first) * static_cast<std::size_t>(c.vocab);
      const float* pr = logits_ref.data() + at;
      const float* pq = logits_q.data() + at;
      const std::int32_t target = chunk[static_cast<std::size_t>(i) + 1];
      ref.add(pr, c.vocab, target);
      q.add(pq, c.vocab, target);
      const double kl = kl_divergence(pr, pq, c.vocab);
      klds.push_back(kl);
      kl_sum += kl;
      kl_sum2 += kl * kl;
      agree += std::max_element(pr, pr + c.vocab) - pr == std::max_element(pq, pq + c.vocab) - pq;
    }
    ref.end_chunk();
    q.end_chunk();
    ctx.progress(static_cast<double>(k + 1) / chunks);
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  ref.finish(chunks, opt.n_ctx, seconds);
  q.finish(chunks, opt.n_ctx, seconds);
  ModelComparison out;
  out.reference = std::move(ref.result);
  out.quantized = std::move(q.result);
  const auto n = static_cast<double>(klds.size());
  out.positions = static_cast<std::int64_t>(klds.size());
  out.mean_kld = kl_sum / n;
  const double var = kl_sum2 / n - out.mean_kld * out.mean_kld;
  out.kld_error = var > 0 && klds.size() > 1 ? std::sqrt(var / (n - 1)) : 0.0;
  out.max_kld = *std::max_element(klds.begin(), klds.end());
  std::nth_element(klds.begin(), klds.begin() + static_cast<std::ptrdiff_t>(klds.size() / 2), klds.end());
  out.median_kld = klds[klds.size() / 2];
  out.top1_agreement = static_cast<double>(agree) / n;
  return out;
}

}  // namespace qs
