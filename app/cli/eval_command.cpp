#include "eval_command.h"

#include <chrono>
#include <cstdio>
#include <map>
#include <optional>
#include <nlohmann/json.hpp>

#include "calib/calibration_file.h"
#include "calib/kl_divergence.h"
#include "calib/llama_forward.h"
#include "calib/perplexity.h"
#include "calib/plan_model.h"
#include "calib/tokenizer.h"
#include "forward_backend.h"
#include "io/open_model.h"
#include "quant/plan.h"
#include "util/read_text_file.h"

namespace qs::cli {

int run_eval(const EvalOptions& opt) {
  auto fail = [](const std::string& message, int code) {
    std::fprintf(stderr, "quantscope-cli: %s\n", message.c_str());
    return code;
  };
  auto code_of = [](const Error& e) { return e.code == ErrorCode::Unsupported ? 3 : 2; };
  const auto t0 = std::chrono::steady_clock::now();
  auto text = read_text_file(opt.text, std::size_t{1} << 30);
  if (!text) return fail(text.error().message, 2);
  auto model = open_model(opt.path);
  if (!model) return fail(model.error().message, 2);
  auto tok = Tokenizer::for_model(*model);
  if (!tok) return fail(tok.error().message, code_of(tok.error()));
  const auto ids = tok->encode(*text, tok->add_bos());
  auto lm = LlamaModel::load(*model);
  if (!lm) return fail(lm.error().message, code_of(lm.error()));
  qs::PerplexityOptions p;
  p.n_ctx = opt.ctx;
  p.max_chunks = opt.chunks;
  p.bos = tok->add_bos() ? tok->bos_id() : -1;

  if (opt.plan.empty()) {
    const double load_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    auto runner = pick_forward_runner(*lm, ids, opt.ctx, opt.backend);
    if (!runner) return fail(runner.error().message, 2);
    auto r = perplexity(**runner, lm->config(), ids, p);
    if (!r) return fail(r.error().message, 2);
    const std::string where = (*runner)->description();
    const double tok_s = r->seconds > 0 ? static_cast<double>(r->tokens_run) / r->seconds : 0.0;
    if (opt.json) {
      nlohmann::ordered_json j = {{"model", model->path}, {"text", opt.text},     {"tokens", ids.size()},
                                  {"ctx", opt.ctx},       {"chunks", r->chunks},  {"tokens_scored", r->tokens_scored},
                                  {"perplexity", r->ppl}, {"perplexity_error", r->ppl_error},
                                  {"seconds", r->seconds}, {"load_seconds", load_s}, {"tokens_per_second", tok_s},
                                  {"backend", where}};
      std::printf("%s\n", j.dump(2).c_str());
      return 0;
    }
    std::printf("model: %s\ntext: %s (%zu tokens), %d chunks of %d, %lld tokens scored\n", model->path.c_str(), opt.text.c_str(),
                ids.size(), r->chunks, opt.ctx, static_cast<long long>(r->tokens_scored));
    std::printf("perplexity: %.4f +/- %.5f\n", r->ppl, r->ppl_error);
    std::printf("time: %.3f s (%.0f tokens/s, %s), %.3f s load\n", r->seconds, tok_s, where.c_str(), load_s);
    return 0;
  }

  auto plan = read_plan(opt.plan);
  if (!plan) return fail(plan.error().message, 2);
  std::optional<CalibrationFile> calib;
  if (!opt.calib_file.empty()) {
    auto c = read_calibration_file(opt.calib_file, &*model);  // another model's file is refused here
    if (!c) return fail(c.error().message, code_of(c.error()));
    calib = std::move(*c);
  }
  std::vector<PlannedWeight> applied;
  auto qlm = load_llama_with_plan(*model, *plan, &applied, OpContext::none(), calib ? &calib->run.capture : nullptr);
  if (!qlm) return fail(qlm.error().message, code_of(qlm.error()));
  const double load_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  auto run_ref = pick_forward_runner(*lm, ids, opt.ctx, opt.backend);
  if (!run_ref) return fail(run_ref.error().message, 2);
  auto run_q = pick_forward_runner(*qlm, ids, opt.ctx, opt.backend);
  if (!run_q) return fail(run_q.error().message, 2);
  auto r = compare_models(**run_ref, **run_q, lm->config(), ids, p);
  if (!r) return fail(r.error().message, 2);
  const std::string where = (*run_q)->description();
  std::map<std::string, int> counts;  // applied type -> layers
  for (const PlannedWeight& w : applied) ++counts[w.applied];
  const double tok_s = r->quantized.seconds > 0 ? 2.0 * static_cast<double>(r->quantized.tokens_run) / r->quantized.seconds : 0.0;
  if (opt.json) {
    nlohmann::ordered_json layers = nlohmann::ordered_json::array();
    for (const PlannedWeight& w : applied)
      layers.push_back({{"layer", w.layer}, {"format", w.format}, {"applied", w.applied}, {"note", w.note}});
    nlohmann::ordered_json j = {{"model", model->path},
                                {"plan", opt.plan},
                                {"text", opt.text},
                                {"tokens", ids.size()},
                                {"ctx", opt.ctx},
                                {"chunks", r->quantized.chunks},
                                {"tokens_scored", r->quantized.tokens_scored},
                                {"perplexity", r->quantized.ppl},
                                {"perplexity_error", r->quantized.ppl_error},
                                {"reference_perplexity", r->reference.ppl},
                                {"mean_kld", r->mean_kld},
                                {"kld_error", r->kld_error},
                                {"median_kld", r->median_kld},
                                {"max_kld", r->max_kld},
                                {"top1_agreement", r->top1_agreement},
                                {"seconds", r->quantized.seconds},
                                {"load_seconds", load_s},
                                {"tokens_per_second", tok_s},
                                {"backend", where},
                                {"layers", layers}};
    std::printf("%s\n", j.dump(2).c_str());
    return 0;
  }
  std::printf("model: %s\nplan: %s (", model->path.c_str(), opt.plan.c_str());
  bool first = true;
  for (const auto& [type, n] : counts) {
    std::printf("%s%d x %s", first ? "" : ", ", n, type.c_str());
    first = false;
  }
  std::printf(")\ntext: %s (%zu tokens), %d chunks of %d, %lld tokens scored\n", opt.text.c_str(), ids.size(),
              r->quantized.chunks, opt.ctx, static_cast<long long>(r->quantized.tokens_scored));
  std::printf("perplexity: %.4f +/- %.5f\n", r->quantized.ppl, r->quantized.ppl_error);
  std::printf("reference perplexity: %.4f (unquantized)\n", r->reference.ppl);
  std::printf("kld: %.6f +/- %.6f (mean KL divergence from the unquantized model; median %.6f, max %.4f)\n", r->mean_kld,
              r->kld_error, r->median_kld, r->max_kld);
  std::printf("same top token: %.2f %%\n", 100.0 * r->top1_agreement);
  std::printf("time: %.3f s for both models (%.0f tokens/s, %s), %.3f s load and quantize\n", r->quantized.seconds, tok_s,
              where.c_str(), load_s);
  return 0;
}

}  // namespace qs::cli
