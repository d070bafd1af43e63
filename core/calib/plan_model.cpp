#include "calib/plan_model.h"

#include <cctype>
#include <map>
#include <optional>

#include "quant/clip_search.h"
#include "quant/fake_quant.h"
#include "quant/ggml_dequant.h"
#include "quant/ggml_quantize.h"
#include "quant/int_grid.h"
#include "quant/llama_ftype.h"
#include "quant/measure.h"
#include "quant/named_format.h"
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
    return Error::unsupported("method \"" + config.method + "\" is not applied in evaluation (rtn, clip, gptq, awq, outliers are)");
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
  std::vector<PlannedWeight> done;
  auto transform = [&](const TensorInfo& t, std::vector<float>& w) -> Result<void> {
    const auto it = layer_of.find(t.name);
    if (it == layer_of.end()) return {};
    PlannedWeight pw;
    pw.layer = model.layers[it->second].name;
    const Layer& l = model.layers[it->second];
    LayerInputStats stats;
    if (const InputStats* s = calib ? calib->find_for(l.role, l.block) : nullptr;
        s && s->cols == t.cols() && s->hessian.size() == static_cast<std::size_t>(t.cols() * t.cols())) {
      stats.h = s->hessian.data();
      if (s->mean_abs.size() == static_cast<std::size_t>(t.cols())) stats.x_mean_abs = s->mean_abs.data();
    }
    LayerConfig config = (*configs)[it->second];
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
  if (report) *report = std::move(done);
  return lm;
}

}  // namespace qs
