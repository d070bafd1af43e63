#include "plan_command.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <optional>
#include <nlohmann/json.hpp>

#include "calib/calibration_file.h"
#include "calib/plan_model.h"
#include "io/open_model.h"
#include "model/convert.h"
#include "quant/allocate.h"
#include "quant/measure.h"
#include "quant/metrics.h"
#include "quant/plan.h"

namespace qs::cli {
namespace {

// The calibration input a layer reads, or none (embeddings, head, other).
std::optional<LlamaRunner::LinearInput> input_of(LayerRole role) {
  using In = LlamaRunner::LinearInput;
  switch (role) {
    case LayerRole::Q: case LayerRole::K: case LayerRole::V: return In::Attention;
    case LayerRole::O: return In::AttentionOutput;
    case LayerRole::Gate: case LayerRole::Up: return In::Mlp;
    case LayerRole::Down: return In::MlpDown;
    default: return std::nullopt;
  }
}

// tr(dW H dW^T) / tr(W H W^T) of the layer as the plan quantizes it (as eval applies it); -1 without an H.
Result<double> output_error(const CalibrationFile& calib, const Layer& l, const TensorInfo& t, const LayerConfig& c) {
  const auto in = input_of(l.role);
  const InputStats* s = in ? calib.run.capture.find(l.block, *in) : nullptr;
  if (!s || s->hessian.empty()) return -1.0;
  if (s->cols != t.cols()) return Error::invalid(l.name + ": the calibration file's input has " + std::to_string(s->cols) + " channels, the layer " + std::to_string(t.cols()));
  std::vector<float> w(t.numel());
  if (auto r = convert_to_f32(t.dtype, t.bytes().data(), w.size(), w.data()); !r) return r.error();
  std::vector<float> q = w;
  PlannedWeight pw;
  if (auto r = fake_quantize_planned(c, t, q, pw); !r) return r.error();
  return relative_output_error_h(w.data(), q.data(), t.rows(), t.cols(), s->hessian.data());
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
  auto model = open_model(opt.path);
  if (!model) {
    std::fprintf(stderr, "quantscope-cli: %s\n", model.error().message.c_str());
    return 2;
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
    auto costs = measure_candidates(*model, split(opt.candidates), OpContext::none());
    if (!costs) {
      std::fprintf(stderr, "quantscope-cli: %s\n", costs.error().message.c_str());
      return 2;
    }
    auto a = allocate_to_budget(*model, *costs, opt.budget);
    if (!a) {
      std::fprintf(stderr, "quantscope-cli: %s\n", a.error().message.c_str());
      return 1;
    }
    plan = a->plan;
    out["bits_per_weight"] = a->bits_per_weight;
    out["squared_error"] = a->squared_error;
    out["pareto"] = nlohmann::ordered_json::array();
    for (const auto& p : a->pareto) out["pareto"].push_back({p.bits_per_weight, p.squared_error});
    out["unallocated"] = a->fixed;
    if (!opt.json)
      std::printf("allocated %.3f bits/weight (budget %.3f), squared weight error %.4g; %zu Pareto points; %zu layers "
                  "no candidate fits\n",
                  a->bits_per_weight, opt.budget, a->squared_error, a->pareto.size(), a->fixed.size());
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
    // Only RTN is measured here; the other methods need calibration data or run at export.
    auto choice = parse_quant_choice(c.format);
    Result<LayerQuantError> m = choice ? measure_quantization(t, *choice, OpContext::none()) : Result<LayerQuantError>(choice.error());
    if (!m) {
      ++skipped;
      jl["skipped"] = m.error().message;
      if (!json) std::printf("%-44s %-10s skipped: %s\n", l.name.c_str(), c.format.c_str(), m.error().message.c_str());
    } else {
      const double n = static_cast<double>(t.numel());
      err += m->error.mse * n;
      ref += m->error.mse * n * std::pow(10.0, m->error.sqnr_db / 10.0);
      bits += m->bits_per_weight * n;
      weights += n;
      jl["bits_per_weight"] = m->bits_per_weight;
      jl["sqnr_db"] = m->error.sqnr_db;
      jl["max_abs_error"] = m->error.max_abs;
      std::string out_col;
      if (calib) {
        auto oe = output_error(*calib, l, t, c);
        if (!oe) {
          std::fprintf(stderr, "quantscope-cli: %s\n", oe.error().message.c_str());
          return 2;
        }
        if (*oe >= 0) {
          jl["rel_output_error"] = *oe;
          worst_out = std::max(worst_out, *oe);
          char buf[48];
          std::snprintf(buf, sizeof buf, "  out err %9.3g", *oe);
          out_col = buf;
        }
      }
      if (!json)
        std::printf("%-44s %-10s %-6s %6.3f bits  %7.2f dB  max %9.3g%s\n", l.name.c_str(), c.format.c_str(), c.method.c_str(),
                    m->bits_per_weight, m->error.sqnr_db, m->error.max_abs, out_col.c_str());
    }
    out["layers"].push_back(std::move(jl));
  }
  const double bpw = weights > 0 ? bits / weights : 0, sqnr = err > 0 ? 10.0 * std::log10(ref / err) : INFINITY;
  out["totals"] = {{"bits_per_weight", bpw}, {"sqnr_db", sqnr}, {"layers_skipped", skipped}};
  if (calib) out["totals"]["max_rel_output_error"] = worst_out;
  if (calib && !json) {
    if (worst_out < 0)
      std::printf("out err: %s holds no Hessians (calibrated with --no-hessians): no output error\n", calib_file.c_str());
    else
      std::printf("out err: tr(dW H dW^T) / tr(W H W^T) on the Hessians of %s (%lld tokens); worst layer %.3g\n",
                  calib_file.c_str(), static_cast<long long>(calib->run.capture.tokens), worst_out);
  }
  if (json) std::printf("%s\n", out.dump(2).c_str());
  else std::printf("plan total: %.3f bits/weight, SQNR %.2f dB over the measured layers, %d skipped\n", bpw, sqnr, skipped);
  return 0;
}

}  // namespace qs::cli
