#pragma once
// The method table: one row per quantization method, and the only place that
// knows a method's name. A row says what the method needs (a Hessian,
// activation statistics, nothing), which format kinds it can target, its
// parameters with their ranges and defaults, and which consumers apply it
// (capability.h asks). Adding a method is adding a row here and its case in
// quantize_with_method (layer_method.cpp).
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "quant/format_table.h"
#include "util/result.h"

namespace qs {

enum class MethodId { Rtn, Clip, Gptq, Awq, Outliers, SmoothQuant };

// What a method reads from calibration (bit flags).
enum MethodNeeds : unsigned {
  kNeedsNothing = 0,
  kNeedsHessian = 1,       // H = X^T X / n of the layer's input
  kNeedsInputMeanAbs = 2,  // mean |x| per input channel
  kNeedsInputAbsMax = 4,   // max |x| per input channel
};

// Who applies plans (bit flags): the plan editor and `measure`, `eval`, and the four exports.
enum class Consumer : unsigned {
  Measure = 1,
  Evaluate = 2,
  GgufExport = 4,
  GptqExport = 8,
  FakeQuantExport = 16,
  Hdf5Export = 32,
};
constexpr unsigned consumer_bit(Consumer c) { return static_cast<unsigned>(c); }
std::string_view consumer_name(Consumer c);  // "measure", "eval", "gguf", "gptq", "fakequant", "hdf5"
// The export an `export -f` / `plan --target` name means ("gguf", "gptq", "hdf5", "fakequant"); none otherwise.
std::optional<Consumer> export_consumer_of(std::string_view name);

struct MethodParam {
  std::string_view name;
  double min, max, fallback;
  bool integer;  // whole numbers only (0/1 switches too)
  std::string_view about;
};

struct MethodRow {
  MethodId id;
  std::string_view name;   // the plan's spelling
  std::string_view label;  // for people
  std::string_view about;  // one line for tooltips and --help
  unsigned needs;          // MethodNeeds
  unsigned kinds;          // kind_bit(FormatKind) it can target
  unsigned consumers;      // consumer_bit(Consumer) that apply it
  std::span<const MethodParam> params;
  // A further check of a target within its kinds (GPTQ's ggml types); null: every format of the kinds.
  Result<void> (*targets)(const QuantChoice& c);

  bool needs_calibration() const { return needs != kNeedsNothing; }
  // The value of a param: the config's, else the default (params are checked when a plan is read).
  double param(const std::map<std::string, double>& given, std::string_view name) const;
};

std::span<const MethodRow> method_table();
const MethodRow* find_method(std::string_view name);
const MethodRow& method_row(MethodId id);
// "rtn, clip, gptq, ..." for messages.
std::string method_names();

// Values outside the range of a param the method takes are Invalid, naming
// the param and its range. Params of other methods pass: a plan's overrides
// merge over the default's params, so "gptq everywhere, rtn on the head" gives
// the head's rtn a percdamp it ignores.
Result<void> check_method_params(const MethodRow& m, const std::map<std::string, double>& params);
// A param some method takes (a plan naming any other is a typo).
bool known_method_param(std::string_view name);

}  // namespace qs
