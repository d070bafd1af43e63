#include "perplexity_command.h"

#include <chrono>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "backend/thread_pool.h"
#include "eval_inputs.h"
#include "forward_backend.h"

namespace qs::cli {

int run_perplexity(const PerplexityOptions& opt) {
  const auto t0 = std::chrono::steady_clock::now();
  int exit_code = 0;
  auto in = load_eval_inputs(opt.path, opt.text, opt.ctx, opt.chunks, exit_code);
  if (!in) return exit_code;
  const auto& ids = in->ids;
  const Model* model = in->model.get();
  const double load_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  auto runner = pick_forward_runner(*in->lm, ids, opt.ctx, opt.backend);
  if (!runner) return cli_fail(runner.error().message, 2);
  auto r = perplexity(**runner, in->lm->config(), ids, in->chunking);
  if (!r) return cli_fail(r.error().message, 2);
  const std::string where = (*runner)->description();
  const double tok_s = r->seconds > 0 ? static_cast<double>(r->tokens_run) / r->seconds : 0.0;
  if (opt.json) {
    nlohmann::ordered_json j = {{"model", model->path},      {"text", opt.text},
                                {"tokens", ids.size()},      {"ctx", opt.ctx},
                                {"chunks", r->chunks},       {"tokens_scored", r->tokens_scored},
                                {"perplexity", r->ppl},      {"perplexity_error", r->ppl_error},
                                {"mean_nll", r->mean_nll},   {"running_perplexity", r->running_ppl},
                                {"seconds", r->seconds},     {"load_seconds", load_s},
                                {"tokens_per_second", tok_s}, {"threads", ThreadPool::global().size()},
                                {"backend", where}};
    std::printf("%s\n", j.dump(2).c_str());
    return 0;
  }
  std::printf("model: %s\ntext: %s (%zu tokens with BOS)\n", model->path.c_str(), opt.text.c_str(), ids.size());
  std::printf("chunks: %d of %d tokens, %lld tokens scored (second half of each chunk)\n", r->chunks, opt.ctx,
              static_cast<long long>(r->tokens_scored));
  for (std::size_t i = 0; i < r->running_ppl.size(); ++i) std::printf("[%zu]%.4f%s", i + 1, r->running_ppl[i], i + 1 < r->running_ppl.size() ? "," : "\n");
  std::printf("perplexity: %.4f +/- %.5f\n", r->ppl, r->ppl_error);
  std::printf("time: %.3f s forward+scoring (%.0f tokens/s, %s), %.3f s load and tokenize\n", r->seconds, tok_s,
              where.c_str(), load_s);
  return 0;
}

}  // namespace qs::cli
