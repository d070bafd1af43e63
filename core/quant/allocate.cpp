#include "quant/allocate.h"
#include "model/convert.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "quant/capability.h"
#include "quant/layer_method.h"
#include "quant/measure.h"
#include "quant/method_table.h"
#include "quant/metrics.h"

namespace qs {
namespace {

struct Choice {
  std::vector<int> pick;  // candidate index per layer, -1 for layers without candidates
  double bits = 0, error = 0, weights = 0;
  FixedPart fixed;
  double average() const { return weights + fixed.weights > 0 ? (bits + fixed.bits) / (weights + fixed.weights) : 0.0; }
};

Choice choose(const Model& model, const std::vector<std::vector<CandidateCost>>& costs, double lambda,
              const FixedPart& fixed) {
  Choice c;
  c.fixed = fixed;
  c.pick.assign(costs.size(), -1);
  for (std::size_t l = 0; l < costs.size(); ++l) {
    if (costs[l].empty()) continue;
    const double n = static_cast<double>(model.tensors[model.layers[l].weight].numel());
    double best = INFINITY;
    for (std::size_t k = 0; k < costs[l].size(); ++k) {
      const double v = costs[l][k].squared_error + lambda * costs[l][k].bits_per_weight * n;
      if (v < best) {
        best = v;
        c.pick[l] = static_cast<int>(k);
      }
    }
    const auto& chosen = costs[l][static_cast<std::size_t>(c.pick[l])];
    c.bits += chosen.bits_per_weight * n;
    c.error += chosen.squared_error;
    c.weights += n;
  }
  return c;
}

}  // namespace

Result<std::vector<std::vector<CandidateCost>>> measure_candidates(const Model& model,
                                                                   const std::vector<std::string>& candidates,
                                                                   OpContext& ctx,
                                                                   const std::vector<const float*>* hessians,
                                                                   const std::vector<const float*>* x_mean_abs) {
  if (hessians && hessians->size() != model.layers.size())
    return Error::invalid("allocation: one Hessian entry per layer expected");
  if (x_mean_abs && x_mean_abs->size() != model.layers.size())
    return Error::invalid("allocation: one mean |x| entry per layer expected");
  // Each candidate is a layer config: a format, and a method with its params when not plain RTN.
  struct Candidate {
    LayerConfig config;
    QuantChoice format;
    const MethodRow* method;
    std::string key;  // the canonical spelling the plan gets
  };
  std::vector<Candidate> cands;
  for (const auto& text : candidates) {
    auto config = parse_layer_config_key(text);
    if (!config) return config.error();
    auto format = parse_quant_choice(config->format);
    if (!format) return format.error();
    const MethodRow* method = find_method(config->method);
    if (!method) return Error::invalid("candidate \"" + text + "\": unknown method (" + method_names() + ")");
    if (auto r = supports(Consumer::Measure, *format, *method); !r)
      return Error::invalid("candidate \"" + text + "\": " + r.error().message);
    if (auto r = check_method_params(*method, config->params); !r) return Error::invalid("candidate \"" + text + "\": " + r.error().message);
    if (((method->needs & kNeedsHessian) && !hessians) || ((method->needs & kNeedsInputMeanAbs) && !x_mean_abs))
      return Error::invalid("candidate \"" + text + "\": method " + config->method +
                            " needs calibration statistics (a calibration file)");
    config->format = format->name;
    cands.push_back({*config, *format, method, layer_config_key(*config)});
  }
  std::vector<std::vector<CandidateCost>> out(model.layers.size());
  for (std::size_t l = 0; l < model.layers.size(); ++l) {
    const Layer& layer = model.layers[l];
    const TensorInfo& t = model.tensors[layer.weight];
    const float* h = hessians ? (*hessians)[l] : nullptr;
    std::vector<float> w;  // the layer as F32, once, for the methods
    for (const Candidate& c : cands) {
      if (ctx.cancelled()) return Error::cancelled();
      const LayerConfig config = config_for_layer(layer, c.config);  // no input statistics on the embedding/head: rtn
      const bool plain = find_method(config.method)->id == MethodId::Rtn && config.params.empty();
      if (!plain) {
        if (w.empty()) {
          if (auto fits = check_f32_memory(t); !fits) return fits.error();
          w.resize(static_cast<std::size_t>(t.numel()));
          if (auto r = tensor_to_f32(t, w.data()); !r) return Error::unsupported(t.where() + ": " + r.error().message);
        }
        LayerInputStats stats{h, x_mean_abs ? (*x_mean_abs)[l] : nullptr};
        auto r = quantize_with_method(w.data(), t.rows(), t.cols(), c.format, config, stats, ctx, nullptr, h != nullptr);
        if (!r) {
          if (r.error().code == ErrorCode::Unsupported) continue;  // the shape (or missing statistics) rules it out here
          return Error{r.error().code, t.where() + ": " + r.error().message};
        }
        const double relative = std::isfinite(r->figures.error.sqnr_db) ? std::pow(10.0, -r->figures.error.sqnr_db / 10.0) : 0.0;
        out[l].push_back({c.key, r->figures.bits_per_weight,
                          h ? r->rel_output_error : hessians ? relative : r->figures.error.mse * static_cast<double>(t.numel())});
        continue;
      }
      if (h) {  // the relative output error needs the dequantized weight
        std::vector<float> wf, deq;
        if (auto r = quantize_dequantize(t, c.format, wf, deq, ctx); !r) {
          if (r.error().code == ErrorCode::Unsupported) continue;
          return r.error();
        }
        out[l].push_back({c.key, c.format.bits_per_weight(t.rows(), t.cols()),
                          relative_output_error_h(wf.data(), deq.data(), t.rows(), t.cols(), h)});
        continue;
      }
      auto m = measure_quantization(t, c.format, ctx);
      if (!m) {
        if (m.error().code == ErrorCode::Unsupported) continue;  // shape the format cannot take
        return m.error();
      }
      // SQNR = 10 log10(||W||^2 / ||dW||^2): the relative weight error is its inverse power.
      const double relative = std::isfinite(m->error.sqnr_db) ? std::pow(10.0, -m->error.sqnr_db / 10.0) : 0.0;
      out[l].push_back({c.key, m->bits_per_weight, hessians ? relative : m->error.mse * static_cast<double>(t.numel())});
    }
    ctx.progress(static_cast<double>(l + 1) / static_cast<double>(model.layers.size()));
  }
  return out;
}

Result<Allocation> allocate_to_budget(const Model& model, const std::vector<std::vector<CandidateCost>>& costs,
                                      double target, const FixedPart& fixed) {
  if (costs.size() != model.layers.size()) return Error::invalid("allocation: one cost list per layer expected");
  // lambda = 0 takes the most accurate candidate everywhere; a huge lambda the cheapest.
  const Choice richest = choose(model, costs, 0.0, fixed);
  const Choice cheapest = choose(model, costs, 1e30, fixed);
  if (richest.weights == 0) return Error::invalid("allocation: no layer takes any of the candidate formats");
  if (cheapest.average() > target + 1e-9) {
    char msg[160];
    std::snprintf(msg, sizeof msg, "allocation: the smallest budget these candidates can meet is %.4f bits/weight, above %.4f",
                  std::ceil(cheapest.average() * 1e4) / 1e4, target);
    return Error::invalid(msg);
  }
  Choice best = richest;
  if (richest.average() > target) {
    // Bisect log(lambda) for the smallest price that meets the budget.
    double lo = -60.0, hi = 70.0;  // ln lambda
    for (int it = 0; it < 200; ++it) {
      const double mid = 0.5 * (lo + hi);
      if (choose(model, costs, std::exp(mid), fixed).average() <= target) hi = mid;
      else lo = mid;
    }
    best = choose(model, costs, std::exp(hi), fixed);
  }
  Allocation a;
  a.bits_per_weight = best.average();
  a.squared_error = best.error;
  for (double ln = -60.0; ln <= 70.0; ln += 0.5) {
    const Choice c = choose(model, costs, std::exp(ln), fixed);
    if (a.pareto.empty() || std::fabs(a.pareto.back().bits_per_weight - c.average()) > 1e-12)
      a.pareto.push_back({c.average(), c.error});
  }
  // The plan: the most common pick as the default, overrides for the rest.
  std::map<std::string, int> votes;
  for (std::size_t l = 0; l < costs.size(); ++l)
    if (best.pick[l] >= 0) ++votes[costs[l][static_cast<std::size_t>(best.pick[l])].format];
  a.plan.preset = "budget";
  // Candidates are layer config keys ("q4_0", "q4_k+gptq(act_order=1)"): known good, they parse.
  const auto config_of = [](const std::string& key) {
    auto c = parse_layer_config_key(key);
    return c ? *c : LayerConfig{key, std::string(method_row(MethodId::Rtn).name), {}};
  };
  // The default must carry no params: an override's params merge over the
  // default's and cannot remove one, so a layer would inherit what it did not
  // choose. Among keys without params the most chosen; if every pick has
  // params, the most chosen format with plain RTN (every layer then overrides).
  std::string base_key;
  int base_votes = -1;
  for (const auto& [key, n] : votes)
    if (config_of(key).params.empty() && n > base_votes) {
      base_key = key;
      base_votes = n;
    }
  if (base_key.empty()) {
    const std::string most =
        std::max_element(votes.begin(), votes.end(), [](auto& x, auto& y) { return x.second < y.second; })->first;
    base_key = config_of(most).format;  // a format alone is the key of plain RTN
  }
  a.plan.base = config_of(base_key);
  a.chosen.assign(costs.size(), std::string());
  for (std::size_t l = 0; l < costs.size(); ++l) {
    if (best.pick[l] < 0) {  // kept in F16 (a copy: the method does not reach it)
      a.fixed.push_back(model.layers[l].name);
      PlanOverride o;
      o.match.name = model.layers[l].name;
      o.format = "f16";
      o.method = std::string(method_row(MethodId::Rtn).name);
      a.plan.overrides.push_back(std::move(o));
      continue;
    }
    const std::string& key = costs[l][static_cast<std::size_t>(best.pick[l])].format;
    a.chosen[l] = key;
    if (key == base_key) continue;
    const LayerConfig c = config_of(key);
    PlanOverride o;
    o.match.name = model.layers[l].name;
    if (c.format != a.plan.base.format) o.format = c.format;
    if (c.method != a.plan.base.method || c.params != a.plan.base.params) {
      o.method = c.method;
      o.params = c.params;
    }
    a.plan.overrides.push_back(std::move(o));
  }
  return a;
}

}  // namespace qs
