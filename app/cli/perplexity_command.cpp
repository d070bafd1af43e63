#include "perplexity_command.h"

#include <chrono>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "backend/thread_pool.h"
#include "calib/llama_forward.h"
#include "calib/perplexity.h"
#include "calib/tokenizer.h"
#include "forward_backend.h"
#include "io/open_model.h"
#include "util/read_text_file.h"

namespace qs::cli {

int run_perplexity(const PerplexityOptions& opt) {
  auto fail = [](const std::string& message, int code) {
    std::fprintf(stderr, "quantscope-cli: %s\n", message.c_str());
    return code;
  };
  const auto t0 = std::chrono::steady_clock::now();
  auto text = read_text_file(opt.text, std::size_t{1} << 30);
  if (!text) return fail(text.error().message, 2);
  auto model = open_model(opt.path);
  if (!model) return fail(model.error().message, 2);
  auto lm = LlamaModel::load(*model);
  if (!lm) return fail(lm.error().message, lm.error().code == ErrorCode::Unsupported ? 3 : 2);
  auto tok = Tokenizer::for_model(*model);
  if (!tok) return fail(tok.error().message, tok.error().code == ErrorCode::Unsupported ? 3 : 2);
  const auto ids = tok->encode(*text, tok->add_bos());
  const double load_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

  qs::PerplexityOptions p;
  p.n_ctx = opt.ctx;
  p.max_chunks = opt.chunks;
  p.bos = tok->add_bos() ? tok->bos_id() : -1;
  auto runner = pick_forward_runner(*lm, ids, opt.ctx, opt.backend);
  if (!runner) return fail(runner.error().message, 2);
  auto r = perplexity(**runner, lm->config(), ids, p);
  if (!r) return fail(r.error().message, 2);
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
