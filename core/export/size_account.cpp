#include "export/size_account.h"

#include <map>

#include "export/gguf_export.h"
#include "quant/capability.h"
#include "quant/format_table.h"
#include "quant/layer_method.h"
#include "quant/method_table.h"
#include "quant/plan.h"

namespace qs {

namespace {

// The model as stored: every tensor that is not a candidate layer, those without candidates at 16 bits.
AccountedFixedPart model_account(const Model& model, const std::vector<std::vector<CandidateCost>>& costs,
                                 AccountedFixedPart out) {
  std::vector<bool> chosen(model.tensors.size(), false), kept16(model.tensors.size(), false);
  for (std::size_t l = 0; l < model.layers.size() && l < costs.size(); ++l)
    (costs[l].empty() ? kept16 : chosen)[model.layers[l].weight] = true;
  for (std::size_t i = 0; i < model.tensors.size(); ++i) {
    if (chosen[i]) continue;
    const TensorInfo& t = model.tensors[i];
    const double n = static_cast<double>(t.numel());
    out.fixed.bits += kept16[i] ? 16.0 * n : 8.0 * static_cast<double>(t.nbytes);
    out.fixed.weights += n;
  }
  return out;
}

}  // namespace

AccountedFixedPart allocation_fixed_part(const Model& model, const std::vector<std::vector<CandidateCost>>& costs) {
  AccountedFixedPart out;
  // A plan with a candidate GGUF cannot hold goes elsewhere: its account is the model's own.
  for (const auto& layer : costs)
    for (const CandidateCost& c : layer) {
      auto config = parse_layer_config_key(c.format);
      auto f = config ? parse_quant_choice(config->format) : Result<QuantChoice>(config.error());
      const MethodRow* m = config ? find_method(config->method) : nullptr;
      if (!f || !m) out.why = "candidate " + c.format + " does not parse";
      else if (auto r = supports(Consumer::GgufExport, *f, *m); !r) out.why = "candidate " + c.format + ": " + r.error().message;
    }
  if (!out.why.empty()) return model_account(model, costs, std::move(out));
  Plan keep;  // every layer F16: the layers without candidates as the allocation's plan keeps them
  keep.base.format = "f16";
  GgufExportOptions o;
  o.plan = &keep;
  auto account = predict_gguf(model, o);
  if (account) {
    std::map<std::string, const PredictedTensor*> by_source;
    for (const PredictedTensor& t : account->tensors) by_source[t.source] = &t;
    FixedPart f{8.0 * static_cast<double>(account->tensor_bytes), static_cast<double>(account->elements)};
    bool complete = true;
    for (std::size_t l = 0; l < model.layers.size() && l < costs.size(); ++l) {
      if (costs[l].empty()) continue;
      const auto it = by_source.find(model.tensors[model.layers[l].weight].name);
      if (it == by_source.end()) {
        complete = false;
        break;
      }
      f.bits -= 8.0 * static_cast<double>(it->second->bytes);
      f.weights -= static_cast<double>(it->second->elements);
    }
    if (complete) {
      out.fixed = f;
      out.gguf = true;
      return out;
    }
    out.why = "a layer is not a tensor of the GGUF file";
  } else {
    out.why = account.error().message;
  }
  return model_account(model, costs, std::move(out));
}

}  // namespace qs
