#pragma once
// The one capability query: can this consumer (the plan editor's measurement,
// `eval`, an export) apply this format with this method? Ok, or Unsupported
// with the reason a person can act on. The plan table, the export dialog and
// the CLI show that reason; every consumer refuses exactly what it answers no
// to. The answer comes from the format's and the method's rows alone.
#include <cstdint>

#include "quant/format_table.h"
#include "quant/method_table.h"
#include "quant/plan.h"
#include "util/result.h"

namespace qs {

// Format × method × consumer, independent of the layer's shape.
Result<void> supports(Consumer consumer, const QuantChoice& format, const MethodRow& method);
// The same for one layer's row length (the format's blocks or groups must fit;
// for the GGUF export a format whose blocks do not fit still goes, as
// llama.cpp's fallback type: gguf_storage_of says which).
Result<void> supports(Consumer consumer, const QuantChoice& format, const MethodRow& method, std::int64_t cols);

// The shape-independent half of the query for every layer of a plan on a
// model: ok, or the first layer whose (format, method) the consumer refuses,
// named with why. Commands ask before any work so that the refusal can name the
// plan file; the consumers themselves still check each layer's shape.
Result<void> plan_supported(Consumer consumer, const Plan& plan, const Model& model);

// What the GGUF export writes for a layer of `cols` inputs planned as `format`:
// its GGUF type, or llama-quantize's fallback type where a row is not whole
// blocks (Q4_K -> Q5_0 -> F16, ...). Unsupported when the format has no GGUF type.
Result<QuantChoice> gguf_storage_of(const QuantChoice& format, std::int64_t cols);

// What a layer planned as (`format`, `config`) with rows of `cols` is stored
// as, for every consumer alike: a ggml format is what llama.cpp stores, so on
// rows that are not whole blocks it becomes llama-quantize's fallback type
// (and a kept fallback takes no method); any other format is itself. `note`
// says why it differs, empty when it does not.
struct StoredLayer {
  QuantChoice format;
  LayerConfig config;
  std::string note;
};
Result<StoredLayer> stored_layer(const QuantChoice& format, const LayerConfig& config, std::int64_t cols);

}  // namespace qs
