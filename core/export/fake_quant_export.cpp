#include "export/fake_quant_export.h"

#include <cmath>
#include <cstring>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>

#include "backend/backend.h"
#include "calib/layer_input_stats.h"
#include "export/content_hash.h"
#include "export/hf_side_files.h"
#include "export/safetensors_verify.h"
#include "io/safetensors.h"
#include "model/convert.h"
#include "quant/capability.h"
#include "quant/fake_quant.h"
#include "quant/layer_method.h"
#include "quant/measure.h"
#include "quant/method_table.h"
#include "quant/metrics.h"
#include "util/half.h"
#include "util/read_text_file.h"
#include "util/disk_space.h"
#include "util/staging_dir.h"

namespace qs {
namespace {

namespace fs = std::filesystem;

// A layer's input statistics from the calibration the options carry (none: empty).
LayerInputStats stats_for(const FakeQuantOptions& o, const Layer& l, std::int64_t cols) {
  return layer_input_stats(l, cols, o.capture);
}

void encode(DType to, const std::vector<float>& x, std::vector<std::byte>& out) {
  const std::size_t width = to == DType::F32 ? 4 : 2;
  out.resize(x.size() * width);
  if (to == DType::F32) {
    std::memcpy(out.data(), x.data(), out.size());
    return;
  }
  auto* dst = reinterpret_cast<std::uint16_t*>(out.data());
  for (std::size_t i = 0; i < x.size(); ++i) dst[i] = to == DType::F16 ? f32_to_f16(x[i]) : f32_to_bf16(x[i]);
}

const char* torch_dtype(DType t) { return t == DType::F32 ? "float32" : t == DType::BF16 ? "bfloat16" : "float16"; }

}  // namespace

Result<FakeQuantReport> export_fake_quant(const Model& source, const Plan& plan, const std::string& out_dir,
                                          const FakeQuantOptions& options, OpContext& ctx) {
  if (source.format != ModelFormat::HfDirectory && source.format != ModelFormat::Safetensors)
    return Error::unsupported(source.path + ": the fake-quant export writes Hugging Face models; open one");
  if (options.dtype != DType::F16 && options.dtype != DType::BF16 && options.dtype != DType::F32)
    return Error::invalid("fake-quant export: the output type must be F16, BF16 or F32");
  auto configs = resolve_plan(plan, source);
  if (!configs) return configs.error();

  FakeQuantReport report;
  std::map<std::size_t, std::size_t> layer_of_tensor;
  std::vector<std::optional<QuantChoice>> choices(source.layers.size());  // quantized layers only
  std::vector<LayerConfig> applied(source.layers.size());
  for (std::size_t i = 0; i < source.layers.size(); ++i) {
    const Layer& l = source.layers[i];
    const LayerConfig c = config_for_layer(l, (*configs)[i]);
    FakeQuantLayer fl{l.name, c.format, c.method, false, "", 0};
    auto choice = parse_quant_choice(c.format);
    if (!choice) return Error::invalid(l.name + ": " + choice.error().message);
    const MethodRow* method = find_method(c.method);
    if (!method) return Error::invalid(l.name + ": unknown method \"" + c.method + "\"");
    if (auto r = supports(Consumer::FakeQuantExport, *choice, *method); !r)
      return Error::unsupported(l.name + ": " + r.error().message);
    if (auto r = check_method_params(*method, c.params); !r) return Error::invalid(l.name + ": " + r.error().message);
    const TensorInfo& w = source.tensors[l.weight];
    // A ggml type is what llama.cpp stores: on rows that are not whole blocks,
    // llama-quantize's fallback type, as the GGUF export and `eval` apply it.
    QuantChoice target = *choice;
    LayerConfig target_config = c;
    if (!w.channels_last) {
      auto stored = stored_layer(*choice, c, w.cols());
      if (!stored) return Error::unsupported(l.name + ": " + stored.error().message);
      target = stored->format;
      target_config = stored->config;
      fl.reason = stored->note;
    }
    if (choice->keeps_precision()) fl.reason = "kept (" + c.format + ")";
    else if (w.channels_last) fl.reason = "channels-last (Keras) kernels are not quantized";
    else if (auto v = target.fits(w.cols()); !v) fl.reason = v.error().message;
    else {
      const LayerInputStats st = stats_for(options, l, w.cols());
      const bool wants_mean = method->needs & kNeedsInputMeanAbs;
      if (((method->needs & kNeedsHessian) && !st.h) || (wants_mean && !st.x_mean_abs))
        return Error::unsupported(l.name + ": method \"" + c.method + "\" needs the layer input's " +
                                  (wants_mean ? "Hessian and mean |x|" : "Hessian") +
                                  (options.capture ? ", which the calibration given lacks"
                                                   : ": give calibration (--calib or --calib-file)"));
      fl.quantized = true;
      choices[i] = target;
      applied[i] = target_config;
      layer_of_tensor[l.weight] = i;
    }
    report.layers.push_back(std::move(fl));
  }

  std::vector<SafetensorsLayoutEntry> layout;
  for (const TensorInfo& t : source.tensors) {
    if (!dtype_is_float_convertible(t.dtype) || t.channels_last)
      return Error::unsupported(t.where() + ": " + std::string(dtype_name(t.dtype)) + " tensors are not written by the fake-quant export");
    layout.push_back({t.name, options.dtype, t.shape});
  }
  std::uint64_t needed = 0;
  for (const auto& e : layout) {
    std::uint64_t n = 1;
    for (auto d : e.shape) n *= static_cast<std::uint64_t>(d);
    needed += n * dtype_bits(e.dtype) / 8;
  }
  if (auto r = ensure_free_space(out_dir, needed); !r) return r.error();
  auto staging = StagingDir::create(out_dir);
  if (!staging) return staging.error();
  std::vector<float> w, deq;
  std::vector<std::byte> bytes;
  std::vector<std::uint64_t> hashes(layout.size());
  std::size_t done = 0;
  auto produce = [&](std::size_t e) -> Result<std::span<const std::byte>> {
    if (ctx.cancelled()) return Error::cancelled();
    const double begin = static_cast<double>(done++) / static_cast<double>(layout.size());
    ctx.progress(begin);
    const TensorInfo& t = source.tensors[e];
    if (auto fits = check_f32_memory(t); !fits) return fits.error();
    w.resize(t.numel());
    if (auto r = convert_to_f32(t.dtype, t.bytes().data(), w.size(), w.data()); !r) return Error::unsupported(t.where() + ": " + r.error().message);
    if (t.file) t.file->release(t.offset, t.nbytes);  // stream: keep one tensor resident
    if (auto it = layer_of_tensor.find(e); it != layer_of_tensor.end()) {
      const std::size_t li = it->second;
      OpStep step(ctx, begin, static_cast<double>(done) / static_cast<double>(layout.size()));
      auto q = quantize_with_method(w.data(), t.rows(), t.cols(), *choices[li], applied[li],
                                    stats_for(options, source.layers[li], t.cols()), step.context(), options.backend,
                                    /*output_error=*/false);
      if (!q && ctx.cancelled()) return Error::cancelled();
      if (!q) return Error{q.error().code, t.where() + ": " + q.error().message};
      report.layers[li].sqnr_db = q->figures.error.sqnr_db;
      encode(options.dtype, q->dequantized, bytes);
    } else {
      encode(options.dtype, w, bytes);
    }
    hashes[e] = content_hash(bytes);  // while in cache, for the read-back check
    return std::span<const std::byte>(bytes);
  };
  const fs::path st = staging->path() / "model.safetensors";
  if (auto r = write_safetensors_streaming(st.string(), layout, produce, {{"format", "pt"}, {"quantscope_plan", plan_to_json(plan)}}); !r)
    return r.error();
  report.bytes = fs::file_size(st);
  if (options.after_write) options.after_write(st.string());

  // Read back before the rename: every tensor's dtype, shape and bytes, and
  // each quantized layer's error measured again on what the file holds.
  std::vector<WrittenTensor> expected;
  for (std::size_t k = 0; k < layout.size(); ++k) expected.push_back({layout[k].name, layout[k].dtype, layout[k].shape, hashes[k]});
  auto measure_back = [&](std::size_t e, std::span<const std::byte> b) -> Result<void> {
    const auto it = layer_of_tensor.find(e);
    if (it == layer_of_tensor.end()) return {};
    const TensorInfo& t = source.tensors[e];
    if (auto fits = check_f32_memory(t); !fits) return fits.error();
    w.resize(t.numel());
    deq.resize(w.size());
    if (auto r = convert_to_f32(t.dtype, t.bytes().data(), w.size(), w.data()); !r) return Error::unsupported(t.where() + ": " + r.error().message);
    if (t.file) t.file->release(t.offset, t.nbytes);
    if (auto r = convert_to_f32(options.dtype, b.data(), deq.size(), deq.data()); !r) return Error::unsupported(t.where() + ": " + r.error().message);
    report.layers[it->second].readback_sqnr_db = weight_error(w.data(), deq.data(), w.size()).sqnr_db;
    return {};
  };
  if (auto r = verify_safetensors_written(st.string(), (fs::path(out_dir) / "model.safetensors").string(), expected, measure_back); !r)
    return r.error();
  report.verified = true;

  auto config = read_source_config(source);
  if (!config) return config.error();
  if (!config->empty()) {
    (*config)["torch_dtype"] = torch_dtype(options.dtype);
    if (auto r = write_text_file(staging->path() / "config.json", config->dump(2) + "\n"); !r) return r.error();
  }
  if (auto r = copy_tokenizer_files(source, staging->path()); !r) return r.error();
  if (auto r = staging->commit(); !r) return r.error();
  return report;
}

}  // namespace qs
