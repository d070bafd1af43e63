#include "calib/perplexity.h"

#include <algorithm>
#include <chrono>
#include <cmath>

#include "calib/forward_runner.h"
#include "calib/llama_forward.h"

namespace qs {

namespace {

// The options checked against the model and the text before anything is
// allocated; the number of chunks to run.
Result<int> count_chunks(const LlamaConfig& c, std::span<const std::int32_t> tokens, const PerplexityOptions& opt) {
  if (opt.n_ctx < 4) return Error::invalid("perplexity: the context must be at least 4 tokens, got " + std::to_string(opt.n_ctx));
  if (c.max_position > 0 && opt.n_ctx > c.max_position)
    return Error::invalid("perplexity: context " + std::to_string(opt.n_ctx) + " exceeds the model's " +
                          std::to_string(c.max_position) + " positions");
  int chunks = static_cast<int>(tokens.size() / static_cast<std::size_t>(opt.n_ctx));
  if (opt.max_chunks >= 0) chunks = std::min(chunks, opt.max_chunks);
  if (chunks < 1)
    return Error::invalid("perplexity: " + std::to_string(tokens.size()) + " tokens are fewer than one chunk of " +
                          std::to_string(opt.n_ctx) + "; give more text or a smaller context");
  return chunks;
}

}  // namespace

Result<PerplexityResult> perplexity(const LlamaModel& model, std::span<const std::int32_t> tokens,
                                    const PerplexityOptions& opt, OpContext& ctx) {
  if (auto r = count_chunks(model.config(), tokens, opt); !r) return r.error();
  auto runner = make_cpu_forward_runner(model, opt.n_ctx, opt.pool);
  return perplexity(*runner, model.config(), tokens, opt, ctx);
}

Result<PerplexityResult> perplexity(ForwardRunner& runner, const LlamaConfig& c, std::span<const std::int32_t> tokens,
                                    const PerplexityOptions& opt, OpContext& ctx) {
  auto chunks_or = count_chunks(c, tokens, opt);
  if (!chunks_or) return chunks_or.error();
  const int chunks = *chunks_or;
  const auto t0 = std::chrono::steady_clock::now();
  if (runner.capacity() < opt.n_ctx)
    return Error::invalid("perplexity: the runner's cache holds " + std::to_string(runner.capacity()) +
                          " positions, fewer than the context of " + std::to_string(opt.n_ctx));
  std::vector<float> logits;
  std::vector<std::int32_t> chunk(static_cast<std::size_t>(opt.n_ctx));
  const int first = opt.n_ctx / 2;
  double nll = 0, nll2 = 0;
  std::int64_t count = 0;
  PerplexityResult res;
  for (int k = 0; k < chunks; ++k) {
    if (ctx.cancelled()) return Error::cancelled();
    std::copy_n(tokens.begin() + static_cast<std::ptrdiff_t>(k) * opt.n_ctx, opt.n_ctx, chunk.begin());
    if (opt.bos >= 0) chunk[0] = opt.bos;
    runner.clear();
    // Only the scored half needs logits: rows first … n_ctx-1 (the last has no target).
    if (auto r = runner.forward(chunk, logits, opt.n_ctx - first); !r) return r.error();
    for (int i = first; i < opt.n_ctx - 1; ++i) {
      const float* row = logits.data() + static_cast<std::size_t>(i - first) * static_cast<std::size_t>(c.vocab);
      const float mx = *std::max_element(row, row + c.vocab);
      double sum = 0;
      for (int j = 0; j < c.vocab; ++j) sum += std::exp(row[j] - mx);
      const std::int32_t target = chunk[static_cast<std::size_t>(i) + 1];
      const double v = -(static_cast<double>(row[target]) - mx - std::log(sum));
      nll += v;
      nll2 += v * v;
      ++count;
    }
    res.running_ppl.push_back(std::exp(nll / static_cast<double>(count)));
    ctx.progress(static_cast<double>(k + 1) / chunks);
  }
  res.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  res.chunks = chunks;
  res.tokens_scored = count;
  res.tokens_run = static_cast<std::int64_t>(chunks) * opt.n_ctx;
  res.mean_nll = nll / static_cast<double>(count);
  res.ppl = std::exp(res.mean_nll);
  const double var = nll2 / static_cast<double>(count) - res.mean_nll * res.mean_nll;
  res.ppl_error = var > 0 && count > 1 ? std::sqrt(var / static_cast<double>(count - 1)) * res.ppl : 0.0;
  return res;
}

}  // namespace qs
