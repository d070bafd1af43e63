#include "quant/method_table.h"

#include <cmath>
#include <cstdio>

#include "quant/ggml_block_pack.h"
#include "quant/ggml_kquants.h"

namespace qs {
namespace {

constexpr unsigned kAllKinds = kind_bit(FormatKind::Ggml) | kind_bit(FormatKind::IntGrid) | kind_bit(FormatKind::Element);
constexpr unsigned kc(std::initializer_list<Consumer> cs) {
  unsigned m = 0;
  for (Consumer c : cs) m |= consumer_bit(c);
  return m;
}
using C = Consumer;

constexpr MethodParam kClipParams[] = {
    {"min_ratio", 0.05, 1.0, 0.5, false, "smallest range tried, as a share of [min, max]"},
    {"step", 0.001, 0.5, 0.01, false, "ratio step between the ranges tried"},
};
constexpr MethodParam kGptqParams[] = {
    {"percdamp", 0.0, 1.0, 0.01, false, "damping: this share of mean(diag H) added to the diagonal"},
    {"block_size", 1, 1 << 20, 128, true, "columns per lazy-update block"},
    {"act_order", 0, 1, 0, true, "1: columns in order of decreasing diag(H)"},
    {"static_groups", 0, 1, 0, true, "1: group scales fixed before the walk (with act_order)"},
};
constexpr MethodParam kAwqParams[] = {
    {"alpha_points", 1, 1000, 20, true, "scale exponents tried: alpha = k / points"},
    {"clip", 0, 1, 1, true, "1: also search a clip ratio per group"},
};
constexpr MethodParam kOutlierParams[] = {
    {"fraction", 0.0, 0.5, 0.01, false, "share of weights (or input channels) kept in F16"},
    {"channels", 0, 1, 0, true, "1: keep whole input channels (LLM.int8()); 0: single weights (SpQR)"},
};
constexpr MethodParam kSmoothParams[] = {
    {"alpha", 0.0, 1.0, 0.5, false, "migration strength: s = max|x|^alpha / max|w|^(1-alpha)"},
    {"act_bits", 2, 16, 8, true, "bits of the per-token activation grid"},
    {"smooth", 0, 1, 1, true, "0: W8A8 without smoothing"},
};

// GPTQ's walk reaches integer grids and the ggml types whose blocks it can
// re-derive (not the IQ4_NL codebook, nor Q2_K/Q3_K).
Result<void> gptq_targets(const QuantChoice& c) {
  if (c.kind == FormatKind::IntGrid) return {};
  if (c.kind == FormatKind::Ggml && (ggml_block_pack_supported(c.ggml_type) || ggml_superblock_supported(c.ggml_type)))
    return {};
  return Error::unsupported("GPTQ cannot target " + std::string(c.row->label) +
                            " (integer grids, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K, Q5_K, Q6_K)");
}

const MethodRow kMethods[] = {
    {MethodId::Rtn, "rtn", "RTN", "round to nearest on the format's grid", kNeedsNothing, kAllKinds,
     kc({C::Measure, C::Evaluate, C::GgufExport, C::GptqExport, C::FakeQuantExport, C::Hdf5Export}), {}, nullptr},
    {MethodId::Clip, "clip", "RTN + MSE clip", "search per group for the clip range of least (diag(H)-weighted) error",
     kNeedsNothing, kind_bit(FormatKind::Ggml) | kind_bit(FormatKind::IntGrid),
     kc({C::Measure, C::Evaluate, C::GgufExport, C::FakeQuantExport}), kClipParams, nullptr},
    {MethodId::Gptq, "gptq", "GPTQ", "column by column rounding with error feedback through H^-1", kNeedsHessian,
     kind_bit(FormatKind::Ggml) | kind_bit(FormatKind::IntGrid),
     kc({C::Measure, C::Evaluate, C::GgufExport, C::GptqExport, C::FakeQuantExport}), kGptqParams, gptq_targets},
    {MethodId::Awq, "awq", "AWQ", "activation-aware per-input-channel scales searched on the output error",
     kNeedsHessian | kNeedsInputMeanAbs, kAllKinds, kc({C::Measure, C::Evaluate, C::FakeQuantExport}), kAwqParams,
     nullptr},
    {MethodId::Outliers, "outliers", "Outlier keeping", "the largest weights or input channels kept in an F16 side table",
     kNeedsNothing, kAllKinds, kc({C::Measure, C::Evaluate, C::FakeQuantExport, C::Hdf5Export}), kOutlierParams,
     nullptr},
    {MethodId::SmoothQuant, "smoothquant", "SmoothQuant W8A8",
     "activation outliers migrated into the weights, inputs quantized per token", kNeedsInputAbsMax,
     kind_bit(FormatKind::IntGrid) | kind_bit(FormatKind::Element) | kind_bit(FormatKind::Ggml), kc({C::Evaluate}),
     kSmoothParams, nullptr},
};

}  // namespace

std::string_view consumer_name(Consumer c) {
  switch (c) {
    case C::Measure: return "measure";
    case C::Evaluate: return "eval";
    case C::GgufExport: return "gguf";
    case C::GptqExport: return "gptq";
    case C::FakeQuantExport: return "fakequant";
    case C::Hdf5Export: return "hdf5";
  }
  return "?";
}

std::optional<Consumer> export_consumer_of(std::string_view name) {
  for (Consumer c : {C::GgufExport, C::GptqExport, C::FakeQuantExport, C::Hdf5Export})
    if (consumer_name(c) == name) return c;
  return std::nullopt;
}

double MethodRow::param(const std::map<std::string, double>& given, std::string_view key) const {
  if (const auto it = given.find(std::string(key)); it != given.end()) return it->second;
  for (const MethodParam& p : params)
    if (p.name == key) return p.fallback;
  return 0.0;
}

std::span<const MethodRow> method_table() { return kMethods; }

const MethodRow* find_method(std::string_view name) {
  for (const MethodRow& m : kMethods)
    if (m.name == name) return &m;
  return nullptr;
}

const MethodRow& method_row(MethodId id) {
  for (const MethodRow& m : kMethods)
    if (m.id == id) return m;
  return kMethods[0];
}

std::string method_names() {
  std::string out;
  for (const MethodRow& m : kMethods) out += (out.empty() ? "" : ", ") + std::string(m.name);
  return out;
}

Result<void> check_method_params(const MethodRow& m, const std::map<std::string, double>& params) {
  for (const auto& [name, value] : params) {
    for (const MethodParam& p : m.params) {
      if (p.name != name) continue;
      char range[96];
      std::snprintf(range, sizeof range, "%g ... %g", p.min, p.max);
      if (!(value >= p.min && value <= p.max) || (p.integer && value != std::floor(value)))
        return Error::invalid("method \"" + std::string(m.name) + "\": param " + name + " = " + std::to_string(value) +
                              " is outside " + range + (p.integer ? " (whole numbers)" : ""));
    }
  }
  return {};
}

bool known_method_param(std::string_view name) {
  for (const MethodRow& m : kMethods)
    for (const MethodParam& p : m.params)
      if (p.name == name) return true;
  return false;
}

}  // namespace qs
