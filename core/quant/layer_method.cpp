#include "quant/layer_method.h"

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdlib>

#include "backend/backend.h"
#include "backend/thread_pool.h"
#include "quant/awq.h"
#include "quant/capability.h"
#include "quant/clip_search.h"
#include "quant/fake_quant.h"
#include "quant/method_table.h"
#include "quant/gptq.h"
#include "quant/metrics.h"
#include "quant/outlier_keep.h"

namespace qs {
namespace {

Error unsupported(const LayerConfig& c, const std::string& why) {
  return Error::unsupported("method \"" + c.method + "\" with " + c.format + ": " + why);
}

}  // namespace

bool method_needs_calibration(const std::string& method) {
  const MethodRow* m = find_method(method);
  return m && m->needs_calibration();
}

LayerConfig config_for_layer(const Layer& layer, LayerConfig config, bool* changed) {
  const bool no_input = layer.role == LayerRole::Embed || layer.role == LayerRole::LmHead;
  const MethodRow* m = find_method(config.method);
  const bool swap = no_input && m && (m->needs & (kNeedsHessian | kNeedsInputMeanAbs));
  if (swap) {
    config.method = std::string(method_row(MethodId::Rtn).name);
    config.params.clear();
  }
  if (changed) *changed = swap;
  return config;
}

std::string layer_config_key(const LayerConfig& config) {
  if (find_method(config.method) == &method_row(MethodId::Rtn) && config.params.empty()) return config.format;
  std::string key = config.format + "+" + config.method;
  if (!config.params.empty()) {
    key += "(";
    bool first = true;
    for (const auto& [name, value] : config.params) {  // std::map: sorted by name
      char number[32];
      const auto end = std::to_chars(number, number + sizeof number, value).ptr;  // shortest that round-trips
      key += (first ? "" : ",") + name + "=" + std::string(number, end);
      first = false;
    }
    key += ")";
  }
  return key;
}

Result<LayerConfig> parse_layer_config_key(std::string_view key) {
  LayerConfig c;
  const auto bad = [&](const char* why) { return Error::invalid("layer config \"" + std::string(key) + "\": " + why); };
  const std::size_t plus = key.find('+');
  c.format = std::string(key.substr(0, plus));
  if (c.format.empty()) return bad("no format");
  if (plus == std::string_view::npos) return c;
  std::string_view rest = key.substr(plus + 1);
  const std::size_t open = rest.find('(');
  c.method = std::string(rest.substr(0, open));
  if (c.method.empty()) return bad("no method after '+'");
  if (open == std::string_view::npos) return c;
  if (rest.back() != ')') return bad("params must end with ')'");
  std::string_view params = rest.substr(open + 1, rest.size() - open - 2);
  while (!params.empty()) {
    const std::size_t comma = params.find(',');
    const std::string_view item = params.substr(0, comma);
    const std::size_t eq = item.find('=');
    if (eq == std::string_view::npos || eq == 0) return bad("a param is not name=value");
    const std::string value(item.substr(eq + 1));
    char* end = nullptr;
    const double v = std::strtod(value.c_str(), &end);
    if (value.empty() || end != value.c_str() + value.size()) return bad("a param value is not a number");
    c.params[std::string(item.substr(0, eq))] = v;
    if (comma == std::string_view::npos) break;
    params.remove_prefix(comma + 1);
  }
  return c;
}

Result<OutlierResult> keep_outliers(const QuantChoice& choice, const LayerConfig& config, const float* w,
                                    std::int64_t rows, std::int64_t cols, const LayerInputStats& stats) {
  const MethodRow& m = method_row(MethodId::Outliers);
  OutlierSpec spec;
  spec.target = choice;
  spec.fraction = m.param(config.params, "fraction");
  std::vector<float> importance;
  if (m.param(config.params, "channels") != 0) {
    // Whole input channels (LLM.int8()): those whose inputs are largest when
    // calibrated (ranked by mean |x|), else those holding the largest weights.
    spec.select = stats.x_mean_abs ? OutlierSpec::Select::InputChannelsByActivation
                                   : OutlierSpec::Select::InputChannelsByWeight;
    spec.act_absmax = stats.x_mean_abs;
  } else if (stats.h) {
    // Single weights ranked by |w| sqrt(H_jj): the size of their share of the output (SpQR-like).
    importance.resize(static_cast<std::size_t>(cols));
    for (std::int64_t c = 0; c < cols; ++c)
      importance[static_cast<std::size_t>(c)] = std::sqrt(std::max(0.0f, stats.h[c * cols + c]));
    spec.column_importance = importance.data();
  }
  return outlier_keep(w, rows, cols, spec);
}

Result<LayerMethodResult> quantize_with_method(const float* w, std::int64_t rows, std::int64_t cols,
                                               const QuantChoice& choice, const LayerConfig& config,
                                               const LayerInputStats& stats, OpContext& ctx, Backend* backend,
                                               bool output_error) {
  const MethodRow* method = find_method(config.method);
  if (!method) return Error::invalid("unknown method \"" + config.method + "\" (" + method_names() + ")");
  if (auto r = supports(Consumer::Measure, choice, *method, cols); !r) return unsupported(config, r.error().message);
  if (auto r = check_method_params(*method, config.params); !r) return r.error();
  if (choice.keeps_precision()) method = &method_row(MethodId::Rtn);  // a copy: the method does not reach it
  if ((method->needs & kNeedsHessian) && !stats.h)
    return unsupported(config, "needs the Hessian of the layer's input: calibrate first");
  if ((method->needs & kNeedsInputMeanAbs) && !stats.x_mean_abs)
    return unsupported(config, "needs the mean |x| of the layer's input: calibrate first");
  const auto param = [&](std::string_view key) { return method->param(config.params, key); };

  LayerMethodResult out;
  const auto start = std::chrono::steady_clock::now();
  // diag(H) weights the clip search's error as llama.cpp's imatrix does.
  std::vector<float> diag;
  if (stats.h) {
    diag.resize(static_cast<std::size_t>(cols));
    for (std::int64_t c = 0; c < cols; ++c) diag[static_cast<std::size_t>(c)] = std::max(0.0f, stats.h[c * cols + c]);
  }
  switch (method->id) {
    case MethodId::Rtn: {
      out.dequantized.resize(static_cast<std::size_t>(rows * cols));
      if (auto r = choice.fake_quantize(w, rows, cols, out.dequantized.data()); !r) return r.error();
      break;
    }
    case MethodId::Clip: {
      ClipSearchSpec spec;
      spec.min_ratio = static_cast<float>(param("min_ratio"));
      spec.step = static_cast<float>(param("step"));
      spec.column_weight = diag.empty() ? nullptr : diag.data();
      if (choice.kind == FormatKind::IntGrid) {
        spec.grid = choice.grid;
        auto r = clip_search(w, rows, cols, spec, ctx);
        if (!r) return r.error();
        out.dequantized = std::move(r->dequantized);
      } else {
        auto r = clip_search_ggml(w, rows, cols, choice.ggml_type, spec, ctx);
        if (!r) return r.error();
        out.dequantized = std::move(r->dequantized);
      }
      break;
    }
    case MethodId::Gptq: {
      GptqSpec spec;
      spec.percdamp = param("percdamp");
      spec.block_size = static_cast<int>(param("block_size"));
      spec.act_order = param("act_order") != 0;
      spec.static_groups = param("static_groups") != 0;
      if (choice.kind == FormatKind::IntGrid) spec.grid = choice.grid;
      else spec.block_type = choice.ggml_type;
      auto r = backend ? backend->gptq(w, rows, cols, stats.h, spec, ctx) : gptq(w, rows, cols, stats.h, spec, ctx);
      if (!r) return r.error();
      out.dequantized = std::move(r->dequantized);
      break;
    }
    case MethodId::Awq: {
      AwqSpec spec;
      spec.target = choice;
      spec.grid = static_cast<int>(param("alpha_points"));
      spec.clip = param("clip") != 0;
      auto r = awq(w, rows, cols, stats.h, stats.x_mean_abs, spec, ctx);
      if (!r) return r.error();
      out.dequantized = std::move(r->dequantized);
      break;
    }
    case MethodId::Outliers: {
      auto r = keep_outliers(choice, config, w, rows, cols, stats);
      if (!r) return r.error();
      out.dequantized = std::move(r->dequantized);
      out.figures.bits_per_weight = r->bits_per_weight;  // the side table counted
      break;
    }
    case MethodId::SmoothQuant:
      return unsupported(config, "migrates scales across a block's inputs: it is applied by a plan's evaluation");
  }
  if (ctx.cancelled()) return Error::cancelled();
  out.figures.milliseconds =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  if (method->id != MethodId::Outliers) out.figures.bits_per_weight = choice.bits_per_weight(rows, cols);
  out.figures.error = weight_error(w, out.dequantized.data(), static_cast<std::uint64_t>(rows * cols));
  if (stats.h && output_error) out.rel_output_error = relative_output_error_h(w, out.dequantized.data(), rows, cols, stats.h);
  return out;
}

}  // namespace qs
