#include "quant/capability.h"

#include "quant/layer_method.h"
#include "quant/llama_ftype.h"

namespace qs {
namespace {

// What a consumer demands of a format's row, whatever the method.
Result<void> format_ok(Consumer consumer, const QuantChoice& f) {
  const FormatRow& r = *f.row;
  if (!r.fake_quant)
    return Error::unsupported(std::string(r.label) + ": " + std::string(r.missing));
  // A kept format is a copy: the GPTQ and HDF5 checkpoints hold the layer as it is (F16 / "copy").
  if (r.keeps_precision && (consumer == Consumer::GptqExport || consumer == Consumer::Hdf5Export)) return {};
  switch (consumer) {
    case Consumer::Measure:
    case Consumer::Evaluate:
    case Consumer::FakeQuantExport:
      return {};  // they store dequantized weights: every format with a quantizer
    case Consumer::GgufExport:
      if (!r.gguf)
        return Error::unsupported(std::string(r.label) + " has no GGUF type (ggml block types, f16, bf16, f32 have): "
                                  "export it as fake-quant, HDF5 or GPTQ");
      return {};
    case Consumer::GptqExport:
      if (!r.gptq_packing)
        return Error::unsupported(std::string(r.label) + " does not pack as GPTQ (integer grids of 2, 3, 4 or 8 bits do)");
      if (f.grid.bits != 2 && f.grid.bits != 3 && f.grid.bits != 4 && f.grid.bits != 8)
        return Error::unsupported(f.name + ": GPTQ packs 2, 3, 4 or 8 bits");
      if (f.grid.group_size < 0) return Error::unsupported(f.name + ": GPTQ has no per-tensor scale (use -ch or -g<N>)");
      return {};
    case Consumer::Hdf5Export:
      if (r.h5 == H5Storage::None)
        return Error::unsupported(std::string(r.label) + " has no HDF5 checkpoint layout yet (docs/hdf5-checkpoint.md)");
      return {};
  }
  return {};
}

}  // namespace

Result<void> supports(Consumer consumer, const QuantChoice& format, const MethodRow& method) {
  if (auto r = format_ok(consumer, format); !r) return r;
  if (!(method.consumers & consumer_bit(consumer))) {
    std::string takes;
    for (const MethodRow& m : method_table())
      if (m.consumers & consumer_bit(consumer)) takes += (takes.empty() ? "" : ", ") + std::string(m.name);
    return Error::unsupported("method \"" + std::string(method.name) + "\" is not applied by " +
                              std::string(consumer_name(consumer)) + " (" + takes + " are)");
  }
  // A kept format (f16/bf16/f32) is a copy: the method does not reach it, as
  // it does not reach a layer written at llama.cpp's F16 fallback.
  if (format.keeps_precision()) return {};
  if (!(method.kinds & kind_bit(format.kind)))
    return Error::unsupported("method \"" + std::string(method.name) + "\" cannot target " +
                              std::string(format.row->label));
  if (method.targets)
    if (auto r = method.targets(format); !r) return r;
  return {};
}

Result<void> plan_supported(Consumer consumer, const Plan& plan, const Model& model) {
  auto configs = resolve_plan(plan, model);
  if (!configs) return configs.error();
  for (std::size_t i = 0; i < model.layers.size(); ++i) {
    const Layer& l = model.layers[i];
    const LayerConfig c = config_for_layer(l, (*configs)[i]);
    auto format = parse_quant_choice(c.format);
    if (!format) return Error::invalid(l.name + ": " + format.error().message);
    const MethodRow* method = find_method(c.method);
    if (!method) return Error::invalid(l.name + ": unknown method \"" + c.method + "\"");
    if (auto r = supports(consumer, *format, *method); !r) return Error{r.error().code, l.name + ": " + r.error().message};
    if (auto r = check_method_params(*method, c.params); !r) return Error::invalid(l.name + ": " + r.error().message);
  }
  return {};
}

Result<QuantChoice> gguf_storage_of(const QuantChoice& format, std::int64_t cols) {
  const auto t = format.gguf_type();
  if (!t) return Error::unsupported(std::string(format.row->label) + " has no GGUF type");
  const DType stored = dtype_is_block_quantized(*t) ? llama_fallback_type(*t, cols) : *t;
  auto c = quant_choice_of(stored);
  if (!c) return Error::unsupported(std::string(dtype_name(stored)) + " is not a format QuantScope writes");
  return *c;
}

Result<StoredLayer> stored_layer(const QuantChoice& format, const LayerConfig& config, std::int64_t cols) {
  StoredLayer out{format, config, {}};
  if (format.kind != FormatKind::Ggml) return out;
  auto stored = gguf_storage_of(format, cols);
  if (!stored) return stored.error();
  if (stored->row == format.row) return out;
  out.format = *stored;
  out.config.format = stored->name;
  if (stored->keeps_precision()) out.config = {stored->name, std::string(method_row(MethodId::Rtn).name), {}};
  out.note = "rows of " + std::to_string(cols) + " are not whole " + std::string(format.row->label) + " blocks: stored as " +
             std::string(stored->row->label) + " (llama.cpp's fallback)";
  return out;
}

Result<void> supports(Consumer consumer, const QuantChoice& format, const MethodRow& method, std::int64_t cols) {
  if (consumer == Consumer::GgufExport) {
    // What is written decides: llama.cpp's fallback where a row is not whole blocks.
    auto stored = gguf_storage_of(format, cols);
    if (!stored) return stored.error();
    if (auto r = supports(consumer, *stored, method); !r) return r;
    return stored->keeps_precision() ? Result<void>() : stored->fits(cols);
  }
  if (auto r = supports(consumer, format, method); !r) return r;
  if (consumer == Consumer::GptqExport && !format.keeps_precision() && cols % 32 != 0)
    return Error::unsupported("GPTQ packs rows of a multiple of 32 inputs; this layer has " + std::to_string(cols));
  return format.fits(cols);
}

}  // namespace qs
