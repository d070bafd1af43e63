#include "calib/plan_model.h"

#include <cctype>
#include <cmath>
#include <map>
#include <optional>

#include "calib/layer_input_stats.h"
#include "model/convert.h"
#include "quant/clip_search.h"
#include "quant/fake_quant.h"
#include "quant/ggml_dequant.h"
#include "quant/ggml_quantize.h"
#include "quant/int_grid.h"
#include "quant/llama_ftype.h"
#include "quant/measure.h"
#include "quant/named_format.h"
#include "quant/smoothquant.h"
#include "util/half.h"

namespace qs {
namespace {

// The ggml type a plan format names ("q4_k", "q3_k", "iq4_nl", ...), as the GGUF export reads it.
std::optional<DType> ggml_type_of(const std::string& format) {
  for (DType t : {DType::Q4_0, DType::Q4_1, DType::Q5_0, DType::Q5_1, DType::Q8_0, DType::Q2_K, DType::Q3_K, DType::Q4_K,
                  DType::Q5_K, DType::Q6_K, DType::IQ4_NL}) {
    std::string name(dtype_name(t));
    for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (name == format) return t;
  }
  return std::nullopt;
}

// SmoothQuant's W8A8 for a plan's "smoothquant" layers: per block, the inputs
// that follow a norm (q/k/v's, gate/up's) are divided by s from the
// calibration's per-channel activation max and the max over every weight
// that reads the input (the weights multiplied by it); o's and down's inputs
// are quantized without smoothing (no norm before them to fold 1/s into, as
// SmoothQuant does for LLaMA). Params: alpha (0.5), act_bits (8), smooth (1;
// 0: W8A8 without smoothing).
using InputKey = std::pair<int, LlamaLinearInput>;

std::optional<LlamaLinearInput> linear_input_of(LayerRole r) {
  switch (r) {
    case LayerRole::Q: case LayerRole::K: case LayerRole::V: return LlamaLinearInput::Attention;
    case LayerRole::O: return LlamaLinearInput::AttentionOutput;
    case LayerRole::Gate: case LayerRole::Up: return LlamaLinearInput::Mlp;
    case LayerRole::Down: return LlamaLinearInput::MlpDown;
    default: return std::nullopt;
  }
}

double param_of(const LayerConfig& c, const char* key, double fallback) {
  const auto it = c.params.find(key);
  return it == c.params.end() ? fallback : it->second;
}

Result<std::map<InputKey, LlamaModel::InputQuant>> plan_smoothing(const Model& model, const std::vector<LayerConfig>& configs,
                                                                  const ActivationCapture* calib) {
  std::map<InputKey, std::vector<std::size_t>> smoothed, all;
  for (std::size_t i = 0; i < model.layers.size(); ++i) {
    const Layer& l = model.layers[i];
    const auto input = linear_input_of(l.role);
    if (input) all[{l.block, *input}].push_back(i);
    if (configs[i].method != "smoothquant") continue;
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
    const double alpha = param_of(c, "alpha", 0.5), bits = param_of(c, "act_bits", 8);
    if (!(alpha >= 0.0 && alpha <= 1.0)) return Error::invalid(first.name + ": smoothquant alpha must be in [0, 1]");
    if (!(bits >= 2 && bits <= 16)) return Error::invalid(first.name + ": smoothquant act_bits must be in 2 ... 16");
    LlamaModel::InputQuant q;
    q.bits = static_cast<int>(bits);
    const bool after_norm = key.second == LlamaLinearInput::Attention || key.second == LlamaLinearInput::Mlp;
    if (after_norm && param_of(c, "smooth", 1) != 0) {
      const TensorInfo& t0 = model.tensors[first.weight];
      const std::int64_t cols = t0.cols();
      const InputStats* s = calib ? calib->find_for(first.role, first.block) : nullptr;
      if (!s || s->abs_max.size() != static_cast<std::size_t>(cols))
        return Error::unsupported(first.name + ": method \"smoothquant\" needs the calibration's per-channel activation "
                                  "max of its input: give a calibration file");
      std::vector<float> wmax(static_cast<std::size_t>(cols), 0.0f);
      for (std::size_t i : layers) {
        const TensorInfo& t = model.tensors[model.layers[i].weight];
        w.resize(t.numel());
        if (auto r = tensor_to_f32(t, w.data()); !r) return Error::unsupported(t.name + ": " + r.error().message);
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
  if (config.method != "rtn" && config.method != "clip" && config.method != "outliers" && !method_needs_calibration(config.method))
    return Error::unsupported("method \"" + config.method + "\" is not applied in evaluation (rtn, clip, gptq, awq, outliers, smoothquant are)");
  if (method_needs_calibration(config.method) && !stats.h)
    return Error::unsupported("method \"" + config.method +
                              "\" needs the calibration statistics of the layer's input: give a calibration file");
  if (config.format == "f32") return {};
  if (t.channels_last) {
    out.note = "channels-last (Keras) kernels are not quantized";
    return {};
  }
  if (const auto g = ggml_type_of(config.format)) {
    const DType type = llama_fallback_type(*g, cols);
    if (type != *g)
      out.note = "fallback: rows of " + std::to_string(cols) + " are not whole " + std::string(dtype_name(*g)) + " blocks";
    out.applied = std::string(dtype_name(type));
    if (type == DType::F16 || type == DType::BF16) {
      round_16bit(type, w);
      return {};
    }
    if (!ggml_quantize_supported(type)) return Error::unsupported(std::string(dtype_name(type)) + " cannot be written yet");
    const std::size_t blocks = w.size() / dtype_block_elems(type);
    if (method_needs_calibration(config.method) || config.method == "outliers") {  // onto the (fallback) type's grid
      std::string name(dtype_name(type));
      for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      auto choice = parse_quant_choice(name);
      if (!choice) return choice.error();
      auto r = quantize_with_method(w.data(), rows, cols, *choice, config, stats, ctx);
      if (!r) return r.error();
      w = std::move(r->dequantized);
      out.applied += " (" + config.method + ")";
      return {};
    }
    if (config.method == "clip") {
      ClipSearchSpec spec;
      if (auto p = config.params.find("min_ratio"); p != config.params.end()) spec.min_ratio = static_cast<float>(p->second);
      if (auto p = config.params.find("step"); p != config.params.end()) spec.step = static_cast<float>(p->second);
      auto c = clip_search_ggml(w.data(), rows, cols, type, spec, ctx);
      if (!c) return c.error();
      w = std::move(c->dequantized);
      out.applied += " (clip search)";
      return {};
    }
    std::vector<std::byte> packed(blocks * dtype_block_bytes(type));
    if (auto r = quantize_ggml_blocks(type, w.data(), blocks, packed.data()); !r) return r.error();
    dequantize_ggml_blocks(type, packed.data(), blocks, w.data());
    return {};
  }
  auto choice = parse_quant_choice(config.format);
  if (!choice) return choice.error();
  if (config.method != "rtn") {  // clip, gptq, awq, outliers on integer grids and the element formats
    if (auto fits = validate_target(choice->kind == QuantChoice::Kind::Named ? QuantTarget::named_format(choice->named)
                                                                            : QuantTarget::int_grid(choice->grid),
                                    cols);
        !fits) {
      out.note = fits.error().message;
      return {};
    }
    auto r = quantize_with_method(w.data(), rows, cols, *choice, config, stats, ctx);
    if (!r) return r.error();
    w = std::move(r->dequantized);
    out.applied = config.format + " (" + config.method + ")";
    return {};
  }
  if (choice->kind == QuantChoice::Kind::Named) {
    if (auto r = check_named_format_shape(choice->named, cols); !r) {
      out.note = r.error().message;
      return {};
    }
    std::vector<float> deq(w.size());
    if (auto r = rtn_named_format(choice->named, w.data(), rows, cols, deq.data()); !r) return r.error();
    w = std::move(deq);
  } else {
    if (auto r = validate_int_grid(choice->grid, cols); !r) {
      out.note = r.error().message;
      return {};
    }
    auto q = rtn_int(w.data(), rows, cols, choice->grid);
    if (!q) return q.error();
    dequantize_int_into(*q, w.data());
  }
  out.applied = config.format;
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
    const LayerInputStats stats = layer_input_stats(l, t.cols(), nullptr, calib);
    LayerConfig config = (*configs)[it->second];
    if (config.method == "smoothquant") {  // the format on W diag(s), kept in the smoothed space
      const LlamaModel::InputQuant& q = smoothing->at({l.block, *linear_input_of(l.role)});
      const std::int64_t cols = t.cols();
      if (!q.smooth.empty())
        for (std::size_t i = 0; i < w.size(); ++i) w[i] *= q.smooth[i % static_cast<std::size_t>(cols)];
      config.method = "rtn";
      config.params.clear();
      if (auto r = fake_quantize_planned(config, t, w, pw, ctx); !r) return Error{r.error().code, pw.layer + ": " + r.error().message};
      pw.applied += q.smooth.empty() ? " (W8A8: A" + std::to_string(q.bits) + " per token)"
                                     : " (SmoothQuant W8A8: A" + std::to_string(q.bits) + " per token)";
      done.push_back(std::move(pw));
      return {};
    }
    // The embedding is a lookup and the head's input is not captured: GPTQ/AWQ have no
    // statistics there, so they get RTN, as the GGUF export gives them.
    if (method_needs_calibration(config.method) && (l.role == LayerRole::Embed || l.role == LayerRole::LmHead)) {
      config.method = "rtn";
      config.params.clear();
      pw.note = "no input statistics for the embedding/head: rtn";
    }
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
