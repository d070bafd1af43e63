#include "plan_command.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <map>
#include <optional>
#include <nlohmann/json.hpp>

#include "calib/calibration_file.h"
#include "calib/layer_input_stats.h"
#include "calib/plan_model.h"
#include "export/gguf_export.h"
#include "export/gptq_export.h"
#include "export/size_account.h"
#include "io/open_model.h"
#include "model/convert.h"
#include "model/model_files.h"
#include "quant/allocate.h"
#include "quant/measure.h"
#include "quant/method_table.h"
#include "quant/metrics.h"
#include "quant/plan.h"
#include "util/atomic_file.h"

namespace qs::cli {
namespace {

// The size account of a plan for the GGUF file it exports to (the default
// target): the export's own decisions, made without reading a weight.
Result<GgufPrediction> gguf_account(const Model& model, const Plan& plan) {
  GgufExportOptions o;
  o.plan = &plan;
  return predict_gguf(model, o);
}

std::vector<std::string> split(const std::string& s) {
  std::vector<std::string> out;
  for (std::size_t start = 0; start <= s.size();) {
    const std::size_t comma = std::min(s.find(',', start), s.size());
    if (comma > start) out.push_back(s.substr(start, comma - start));
    start = comma + 1;
  }
  return out;
}

}  // namespace

int run_plan(const PlanOptions& opt) {
  if (opt.preset.empty() == (opt.budget <= 0)) {
    std::fprintf(stderr, "quantscope-cli plan: give --preset or --budget (one of them)\n");
    return 2;
  }
  const std::optional<Consumer> target = export_consumer_of(opt.target);
  if (target != Consumer::GgufExport && target != Consumer::GptqExport) {
    std::fprintf(stderr, "quantscope-cli plan: the size account of --target %s is not built yet (gguf and gptq are; "
                         "docs/engine.md)\n", opt.target.c_str());
    return 2;
  }
  if (target == Consumer::GptqExport && opt.budget > 0) {
    std::fprintf(stderr, "quantscope-cli plan: --budget mixes formats per layer, and a GPTQ checkpoint holds one grid "
                         "and method: allocate for --target gguf, or give a preset (gptq-w4g128)\n");
    return 2;
  }
  if (!opt.calib_file.empty() && opt.budget <= 0) {
    std::fprintf(stderr, "quantscope-cli plan: --calib-file is for --budget (a preset measures nothing)\n");
    return 2;
  }
  auto model = open_model(opt.path);
  if (!model) {
    std::fprintf(stderr, "quantscope-cli: %s\n", model.error().message.c_str());
    return 2;
  }
  // Before any work: the plan must not replace a file the command reads (the model's, or the calibration).
  if (!opt.out.empty()) {
    auto refused = check_replaceable(opt.out);
    if (refused) refused = refuse_model_file(*model, opt.out);
    std::error_code ec;
    if (refused && !opt.calib_file.empty() && std::filesystem::equivalent(opt.out, opt.calib_file, ec))
      refused = Error::invalid(opt.out + ": is the calibration file this command reads; choose another output file");
    if (!refused) {
      std::fprintf(stderr, "quantscope-cli: %s\n", refused.error().message.c_str());
      return 2;
    }
  }
  Plan plan;
  nlohmann::ordered_json out;
  if (!opt.preset.empty()) {
    auto p = plan_preset(opt.preset, *model);
    if (!p) {
      std::fprintf(stderr, "quantscope-cli: %s\n", p.error().message.c_str());
      return 2;
    }
    plan = std::move(*p);
  } else {
    // With a calibration file: relative output errors, and the statistics gptq/awq candidates need.
    std::optional<CalibrationFile> calib;
    std::vector<const float*> hessians, means;
    if (!opt.calib_file.empty()) {
      auto c = read_calibration_file(opt.calib_file, &*model);
      if (!c) {
        std::fprintf(stderr, "quantscope-cli: %s\n", c.error().message.c_str());
        return 2;
      }
      calib = std::move(*c);
      for (const Layer& l : model->layers) {
        const LayerInputStats s = layer_input_stats(l, model->tensors[l.weight].cols(), &calib->run.capture);
        hessians.push_back(s.h);
        means.push_back(s.x_mean_abs);
      }
    }
    auto costs = measure_candidates(*model, split(opt.candidates), OpContext::none(), calib ? &hessians : nullptr,
                                    calib ? &means : nullptr);
    if (!costs) {
      std::fprintf(stderr, "quantscope-cli: %s\n", costs.error().message.c_str());
      return 2;
    }
    // The budget is over every weight the GGUF file writes (norms, the
    // embedding and head, layers no candidate fits), as its account counts them.
    const AccountedFixedPart fixed = allocation_fixed_part(*model, *costs);
    if (!fixed.gguf && !opt.json)
      std::printf("note: the model does not convert to GGUF (%s): the budget is over its tensors as stored\n",
                  fixed.why.c_str());
    auto a = allocate_to_budget(*model, *costs, opt.budget, fixed.fixed);
    if (!a) {
      std::fprintf(stderr, "quantscope-cli: %s\n", a.error().message.c_str());
      return 2;
    }
    plan = a->plan;
    out["bits_per_weight"] = a->bits_per_weight;  // the file's figure below replaces it where there is an account
    out["allocated_bits_per_weight"] = a->bits_per_weight;
    out["squared_error"] = a->squared_error;
    out["pareto"] = nlohmann::ordered_json::array();
    for (const auto& p : a->pareto) out["pareto"].push_back({p.bits_per_weight, p.squared_error});
    out["unallocated"] = a->fixed;
    if (!opt.json)
      std::printf("allocated %.3f bits/weight (budget %.3f), %s %.4g; %zu Pareto points; %zu layers "
                  "no candidate fits\n",
                  a->bits_per_weight, opt.budget, opt.calib_file.empty() ? "squared weight error" : "summed relative output error",
                  a->squared_error, a->pareto.size(), a->fixed.size());
  }
  auto cfg = resolve_plan(plan, *model);
  if (!cfg) {
    std::fprintf(stderr, "quantscope-cli: %s\n", cfg.error().message.c_str());
    return 2;
  }
  if (!opt.out.empty()) {
    if (auto r = write_plan(opt.out, plan); !r) {
      std::fprintf(stderr, "quantscope-cli: %s\n", r.error().message.c_str());
      return 1;
    }
  }
  // The one account: the bytes and bits/weight of the file the plan exports to.
  if (target == Consumer::GptqExport) {
    auto options = gptq_options_from_plan(*model, plan);
    auto account = options ? predict_gptq(*model, options->options) : Result<GptqPrediction>(options.error());
    if (!account) {
      std::fprintf(stderr, "quantscope-cli: --target gptq: %s\n", account.error().message.c_str());
      return 2;
    }
    out["target"] = "gptq";
    out["bytes"] = account->bytes;
    out["bits_per_weight"] = account->bits_per_weight();
    if (!opt.json)
      std::printf("GPTQ model.safetensors: %llu bytes, %.3f bits/weight over all %llu weights it holds (%zu of %zu "
                  "modules on the grid)\n",
                  static_cast<unsigned long long>(account->bytes), account->bits_per_weight(),
                  static_cast<unsigned long long>(account->weights), account->quantized_modules, account->modules);
  } else if (auto account = gguf_account(*model, plan)) {
    out["target"] = "gguf";
    out["bytes"] = account->bytes;
    out["bits_per_weight"] = account->bits_per_weight();
    if (!opt.json)
      std::printf("GGUF file: %llu bytes, %.3f bits/weight over all %llu weights it holds\n",
                  static_cast<unsigned long long>(account->bytes), account->bits_per_weight(),
                  static_cast<unsigned long long>(account->elements));
  } else {
    out["target_error"] = account.error().message;
    if (!opt.json) std::printf("GGUF file: not predicted: %s\n", account.error().message.c_str());
  }
  out["plan"] = nlohmann::ordered_json::parse(plan_to_json(plan));
  out["layers"] = nlohmann::ordered_json::array();
  for (std::size_t i = 0; i < model->layers.size(); ++i) {
    out["layers"].push_back({{"name", model->layers[i].name}, {"format", (*cfg)[i].format}, {"method", (*cfg)[i].method}});
    if (!opt.json) std::printf("%-44s %-10s %s\n", model->layers[i].name.c_str(), (*cfg)[i].format.c_str(), (*cfg)[i].method.c_str());
  }
  if (opt.json) std::printf("%s\n", out.dump(2).c_str());
  else if (!opt.out.empty()) std::printf("wrote %s\n", opt.out.c_str());
  return 0;
}

int run_measure_plan(const std::string& model_path, const std::string& plan_path, bool json, const std::string& calib_file) {
  auto plan = read_plan(plan_path);
  if (!plan) {
    std::fprintf(stderr, "quantscope-cli: %s\n", plan.error().message.c_str());
    return 2;
  }
  auto model = open_model(model_path);
  if (!model) {
    std::fprintf(stderr, "quantscope-cli: %s\n", model.error().message.c_str());
    return 2;
  }
  auto cfg = resolve_plan(*plan, *model);
  if (!cfg) {
    std::fprintf(stderr, "quantscope-cli: %s\n", cfg.error().message.c_str());
    return 2;
  }
  std::optional<CalibrationFile> calib;
  if (!calib_file.empty()) {
    auto c = read_calibration_file(calib_file, &*model);
    if (!c) {
      std::fprintf(stderr, "quantscope-cli: %s\n", c.error().message.c_str());
      return 2;
    }
    calib = std::move(*c);
  }
  nlohmann::ordered_json out;
  out["path"] = model->path;
  out["plan"] = plan_path;
  if (calib) out["calib_file"] = calib_file;
  double worst_out = -1;
  out["layers"] = nlohmann::ordered_json::array();
  double err = 0, ref = 0, bits = 0, weights = 0;
  int skipped = 0;
  for (std::size_t i = 0; i < model->layers.size(); ++i) {
    const Layer& l = model->layers[i];
    const TensorInfo& t = model->tensors[l.weight];
    const LayerConfig& c = (*cfg)[i];
    nlohmann::ordered_json jl = {{"name", l.name}, {"format", c.format}, {"method", c.method}};
    // The same per-layer apply as `eval` (calib/plan_model.h): the method with
    // the calibration's statistics of the layer's input, ggml types with the
    // GGUF export's fallback. SmoothQuant is measured on its weight side.
    const std::int64_t rows = t.rows(), cols = t.cols();
    const LayerInputStats stats = calib ? layer_input_stats(l, cols, &calib->run.capture) : LayerInputStats{};
    LayerConfig applied = config_for_layer(l, c);
    if (const MethodRow* m = find_method(c.method); m && m->id == MethodId::SmoothQuant) {
      applied.method = std::string(method_row(MethodId::Rtn).name);
      applied.params.clear();
    }
    std::vector<float> w(static_cast<std::size_t>(t.numel()));
    PlannedWeight pw;
    Result<void> m = tensor_to_f32(t, w.data());
    std::vector<float> q;
    if (m) {
      q = w;
      m = fake_quantize_planned(applied, t, q, pw, OpContext::none(), stats);
    }
    if (m && pw.applied == "kept" && !pw.note.empty()) m = Error::unsupported(pw.note);
    if (!m) {
      if (m.error().code != ErrorCode::Unsupported) {
        std::fprintf(stderr, "quantscope-cli: %s: %s\n", l.name.c_str(), m.error().message.c_str());
        return 2;
      }
      ++skipped;
      jl["skipped"] = m.error().message;
      if (!json) std::printf("%-44s %-10s skipped: %s\n", l.name.c_str(), c.format.c_str(), m.error().message.c_str());
    } else {
      const WeightError e = weight_error(w.data(), q.data(), w.size());
      const double n = static_cast<double>(t.numel());
      err += e.mse * n;
      ref += e.mse * n * std::pow(10.0, e.sqnr_db / 10.0);
      bits += pw.bits_per_weight * n;
      weights += n;
      jl["applied"] = pw.applied;
      if (!pw.note.empty()) jl["note"] = pw.note;
      jl["bits_per_weight"] = pw.bits_per_weight;
      jl["sqnr_db"] = e.sqnr_db;
      jl["max_abs_error"] = e.max_abs;
      std::string out_col;
      if (stats.h) {
        const double oe = relative_output_error_h(w.data(), q.data(), rows, cols, stats.h);
        jl["rel_output_error"] = oe;
        worst_out = std::max(worst_out, oe);
        char buf[48];
        std::snprintf(buf, sizeof buf, "  out err %9.3g", oe);
        out_col = buf;
      }
      if (!json)
        std::printf("%-44s %-10s %-6s %6.3f bits  %7.2f dB  max %9.3g%s\n", l.name.c_str(), c.format.c_str(), c.method.c_str(),
                    pw.bits_per_weight, e.sqnr_db, e.max_abs, out_col.c_str());
    }
    out["layers"].push_back(std::move(jl));
  }
  const double bpw = weights > 0 ? bits / weights : 0, sqnr = err > 0 ? 10.0 * std::log10(ref / err) : INFINITY;
  out["totals"] = {{"bits_per_weight", bpw}, {"sqnr_db", sqnr}, {"layers_skipped", skipped}};
  if (calib) out["totals"]["max_rel_output_error"] = worst_out;
  if (calib && !json) {
    const auto& inputs = calib->run.capture.inputs;
    const bool any_h = std::any_of(inputs.begin(), inputs.end(), [](const InputStats& s) { return !s.hessian.empty(); });
    if (worst_out < 0)
      std::printf("out err: %s\n", any_h ? "no measured layer reads an input with a Hessian in the calibration file"
                                         : "the calibration file holds no Hessians (calibrated with --no-hessians)");
    else
      std::printf("out err: tr(dW H dW^T) / tr(W H W^T) on the Hessians of %s (%lld tokens); worst layer %.3g\n",
                  calib_file.c_str(), static_cast<long long>(calib->run.capture.tokens), worst_out);
  }
  if (json) std::printf("%s\n", out.dump(2).c_str());
  else std::printf("plan total: %.3f bits/weight, SQNR %.2f dB over the measured layers, %d skipped\n", bpw, sqnr, skipped);
  return 0;
}

}  // namespace qs::cli
