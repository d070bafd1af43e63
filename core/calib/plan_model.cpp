#include "calib/plan_model.h"

#include <cctype>
#include <cmath>
#include <map>
#include <optional>

#include "calib/layer_input_stats.h"
#include "calib/linear_input.h"
#include "model/convert.h"
#include "quant/capability.h"
#include "quant/clip_search.h"
#include "quant/fake_quant.h"
#include "quant/ggml_dequant.h"
#include "quant/ggml_quantize.h"
#include "quant/int_grid.h"
#include "quant/llama_ftype.h"
#include "quant/measure.h"
#include "quant/method_table.h"
#include "quant/named_format.h"
#include "quant/smoothquant.h"
#include "util/half.h"

namespace qs {
namespace {

// SmoothQuant's W8A8 for a plan's "smoothquant" layers: per block, the inputs
// that follow a norm (q/k/v's, gate/up's) are divided by s from the
// calibration's per-channel activation max and the max over every weight
// that reads the input (the weights multiplied by it); o's and down's inputs
// are quantized without smoothing (no norm before them to fold 1/s into, as
// SmoothQuant does for LLaMA). Params: alpha (0.5), act_bits (8), smooth (1;
// 0: W8A8 without smoothing).
using InputKey = std::pair<int, LlamaLinearInput>;

Result<std::map<InputKey, LlamaModel::InputQuant>> plan_smoothing(const Model& model, const std::vector<LayerConfig>& configs,
                                                                  const ActivationCapture* calib) {
  std::map<InputKey, std::vector<std::size_t>> smoothed, all;
  for (std::size_t i = 0; i < model.layers.size(); ++i) {
    const Layer& l = model.layers[i];
    const auto input = linear_input_of(l.role);
    if (input) all[{l.block, *input}].push_back(i);
    if (find_method(configs[i].method) != &method_row(MethodId::SmoothQuant)) continue;
    if (!input) return Error::unsupported(l.name + ": method \"smoothquant\" applies to a block's linear layers");
    smoothed[{l.block, *input}].push_back(i);
  }
  std::map<InputKey, LlamaModel::InputQuant> out;
  std::vector<float> w;
  for (const auto& [key, layers] : smoothed) {
    const Layer& first = model.layers[layers.front()];
    if (layers.size() != all[key].size())
      return Error::unsupported(first.name + ": its input is shared (q/k/v, gate/up): give all of them method "
                                "\"smoothquant\", or none");
    const LayerConfig& c = configs[layers.front()];
    const MethodRow& smooth = method_row(MethodId::SmoothQuant);
    const double alpha = smooth.param(c.params, "alpha"), bits = smooth.param(c.params, "act_bits");
    if (!(alpha >= 0.0 && alpha <= 1.0)) return Error::invalid(first.name + ": smoothquant alpha must be in [0, 1]");
    if (!(bits >= 2 && bits <= 16)) return Error::invalid(first.name + ": smoothquant act_bits must be in 2 ... 16");
    LlamaModel::InputQuant q;
    q.bits = static_cast<int>(bits);
    const bool after_norm = key.second == LlamaLinearInput::Attention || key.second == LlamaLinearInput::Mlp;
    if (after_norm && smooth.param(c.params, "smooth") != 0) {
      const TensorInfo& t0 = model.tensors[first.weight];
      const std::int64_t cols = t0.cols();
      const InputStats* s = calib ? calib->find_for(first.role, first.block) : nullptr;
      if (!s || s->abs_max.size() != static_cast<std::size_t>(cols))
        return Error::unsupported(first.name + ": method \"smoothquant\" needs the calibration's per-channel activation "
                                  "max of its input: give a calibration file");
      std::vector<float> wmax(static_cast<std::size_t>(cols), 0.0f);
      for (std::size_t i : layers) {
        const TensorInfo& t = model.tensors[model.layers[i].weight];
        if (auto fits = check_f32_memory(t); !fits) return fits.error();
        w.resize(t.numel());
        if (auto r = tensor_to_f32(t, w.data()); !r) return Error::unsupported(t.where() + ": " + r.error().message);
        for (std::int64_t r = 0; r < t.rows(); ++r)
          for (std::int64_t j = 0; j < cols; ++j)
            wmax[static_cast<std::size_t>(j)] = std::max(wmax[static_cast<std::size_t>(j)], std::fabs(w[static_cast<std::size_t>(r * cols + j)]));
      }
      q.smooth = smoothquant_factors_from_max(s->abs_max.data(), wmax.data(), cols, alpha);
    }
    out[key] = std::move(q);
  }
  return out;
}

void round_16bit(DType t, std::vector<float>& w) {
  for (float& v : w) v = t == DType::F16 ? f16_to_f32(f32_to_f16(v)) : bf16_to_f32(f32_to_bf16(v));
}

}  // namespace

Result<void> fake_quantize_planned(const LayerConfig& config, const TensorInfo& t, std::vector<float>& w, PlannedWeight& out,
                                   OpContext& ctx, const LayerInputStats& stats) {
  out.format = config.format;
  out.applied = "kept";
  const std::int64_t rows = t.rows(), cols = t.cols();
  out.bits_per_weight = t.numel() > 0 ? 8.0 * static_cast<double>(t.nbytes) / static_cast<double>(t.numel()) : 0.0;
  auto choice = parse_quant_choice(config.format);
  if (!choice) return choice.error();
  const MethodRow* method = find_method(config.method);
  if (!method) return Error::invalid("unknown method \"" + config.method + "\" (" + method_names() + ")");
  if (auto r = supports(Consumer::Evaluate, *choice, *method); !r) return r.error();
  if (method->id == MethodId::SmoothQuant)
    return Error::unsupported("method \"smoothquant\" is applied per block by load_llama_with_plan");
  if (choice->keeps_precision()) {
    if (auto t16 = choice->gguf_type(); t16 == DType::F16 || t16 == DType::BF16) {
      round_16bit(*t16, w);
      out.applied = config.format;
    }
    out.bits_per_weight = choice->bits_per_weight(rows, cols);
    return {};
  }
  if ((method->needs & kNeedsHessian) && !stats.h)
    return Error::unsupported("method \"" + config.method +
                              "\" needs the calibration statistics of the layer's input: give a calibration file");
  if (t.channels_last) {
    out.note = "channels-last (Keras) kernels are not quantized";
    return {};
  }
  // ggml types as the GGUF export writes them: llama-quantize's fallback where a row is not whole blocks.
  auto stored = stored_layer(*choice, config, cols);
  if (!stored) return stored.error();
  const QuantChoice& target = stored->format;
  if (choice->kind == FormatKind::Ggml) {
    out.note = stored->note;
    out.applied = std::string(target.row->label);
    if (target.keeps_precision()) {
      round_16bit(*target.gguf_type(), w);
      out.bits_per_weight = target.bits_per_weight(rows, cols);
      return {};
    }
    if (auto r = supports(Consumer::Evaluate, target, *method); !r) return r.error();
  } else if (auto fits = target.fits(cols); !fits) {
    out.note = fits.error().message;
    return {};
  } else {
    out.applied = config.format;
  }
  if (method->id == MethodId::Rtn) {
    std::vector<float> deq(w.size());
    if (auto r = target.fake_quantize(w.data(), rows, cols, deq.data()); !r) return r.error();
    w = std::move(deq);
    out.bits_per_weight = target.bits_per_weight(rows, cols);
    return {};
  }
  auto r = quantize_with_method(w.data(), rows, cols, target, config, stats, ctx, nullptr, false);
  if (!r) return r.error();
  w = std::move(r->dequantized);
  out.bits_per_weight = r->figures.bits_per_weight;
  out.applied += method->id == MethodId::Clip && target.kind == FormatKind::Ggml ? " (clip search)"
                                                                                : " (" + config.method + ")";
  return {};
}

Result<LlamaModel> load_llama_with_plan(const Model& model, const Plan& plan, std::vector<PlannedWeight>* report,
                                        OpContext& ctx, const ActivationCapture* calib) {
  auto configs = resolve_plan(plan, model);
  if (!configs) return configs.error();
  std::map<std::string, std::size_t> layer_of;  // weight tensor name -> layer
  for (std::size_t i = 0; i < model.layers.size(); ++i) layer_of[model.tensors[model.layers[i].weight].name] = i;
  auto smoothing = plan_smoothing(model, *configs, calib);
  if (!smoothing) return smoothing.error();
  std::vector<PlannedWeight> done;
  auto transform = [&](const TensorInfo& t, std::vector<float>& w) -> Result<void> {
    const auto it = layer_of.find(t.name);
    if (it == layer_of.end()) return {};
    PlannedWeight pw;
    pw.layer = model.layers[it->second].name;
    const Layer& l = model.layers[it->second];
    const LayerInputStats stats = layer_input_stats(l, t.cols(), calib);
    LayerConfig config = (*configs)[it->second];
    if (find_method(config.method) == &method_row(MethodId::SmoothQuant)) {  // the format on W diag(s), kept in the smoothed space
      const LlamaModel::InputQuant& q = smoothing->at({l.block, *linear_input_of(l.role)});
      const std::int64_t cols = t.cols();
      if (!q.smooth.empty())
        for (std::size_t i = 0; i < w.size(); ++i) w[i] *= q.smooth[i % static_cast<std::size_t>(cols)];
      config.method = std::string(method_row(MethodId::Rtn).name);
      config.params.clear();
      if (auto r = fake_quantize_planned(config, t, w, pw, ctx); !r) return Error{r.error().code, pw.layer + ": " + r.error().message};
      pw.applied += q.smooth.empty() ? " (W8A8: A" + std::to_string(q.bits) + " per token)"
                                     : " (SmoothQuant W8A8: A" + std::to_string(q.bits) + " per token)";
      done.push_back(std::move(pw));
      return {};
    }
    // The embedding is a lookup and the head's input is not captured: GPTQ/AWQ have no
    // statistics there, so they get RTN, as the GGUF export gives them.
    bool swapped = false;
    config = config_for_layer(l, std::move(config), &swapped);
    if (swapped) pw.note = "no input statistics for the embedding/head: rtn";
    if (auto r = fake_quantize_planned(config, t, w, pw, ctx, stats); !r)
      return Error{r.error().code, pw.layer + ": " + r.error().message};
    done.push_back(std::move(pw));
    return {};
  };
  auto lm = LlamaModel::load(model, ctx, transform);
  if (!lm) return lm.error();
  for (const auto& [key, q] : *smoothing) lm->set_input_quant(key.first, key.second, q);
  if (report) *report = std::move(done);
  return lm;
}

}  // namespace qs
