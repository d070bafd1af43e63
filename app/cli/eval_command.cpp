#include "eval_command.h"

#include <chrono>
#include <cstdio>
#include <map>
#include <optional>
#include <nlohmann/json.hpp>

#include "calib/calibration_file.h"
#include "calib/kl_divergence.h"
#include "calib/plan_model.h"
#include "eval_inputs.h"
#include "forward_backend.h"
#include "perplexity_command.h"
#include "quant/plan.h"

namespace qs::cli {

int run_eval(const EvalOptions& opt) {
  if (opt.plan.empty())  // the model as it is: its perplexity
    return run_perplexity({opt.path, opt.text, opt.ctx, opt.chunks, opt.json, opt.backend});
  const auto t0 = std::chrono::steady_clock::now();
  int exit_code = 0;
  auto in = load_eval_inputs(opt.path, opt.text, opt.ctx, opt.chunks, exit_code);
  if (!in) return exit_code;
  const auto& ids = in->ids;
  const Model* model = in->model.get();
  const LlamaModel* lm = in->lm.get();

  auto plan = read_plan(opt.plan);
  if (!plan) return cli_fail(plan.error().message, 2);
  std::optional<CalibrationFile> calib;
  if (!opt.calib_file.empty()) {
    auto c = read_calibration_file(opt.calib_file, &*model);  // another model's file is refused here
    if (!c) return cli_fail(c.error().message, exit_code_of(c.error()));
    calib = std::move(*c);
  }
  std::vector<PlannedWeight> applied;
  auto qlm = load_llama_with_plan(*model, *plan, &applied, OpContext::none(), calib ? &calib->run.capture : nullptr);
  if (!qlm) return cli_fail(qlm.error().message, exit_code_of(qlm.error()));
  const double load_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  auto run_ref = pick_forward_runner(*lm, ids, opt.ctx, opt.backend);
  if (!run_ref) return cli_fail(run_ref.error().message, 2);
  auto run_q = pick_forward_runner(*qlm, ids, opt.ctx, opt.backend);
  if (!run_q) return cli_fail(run_q.error().message, 2);
  auto r = compare_models(**run_ref, **run_q, lm->config(), ids, in->chunking);
  if (!r) return cli_fail(r.error().message, 2);
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
