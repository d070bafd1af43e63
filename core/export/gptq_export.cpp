#include "export/gptq_export.h"

#include <cmath>
#include <cstring>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>

#include "export/gptq_pack.h"
#include "export/hf_side_files.h"
#include "io/safetensors.h"
#include "model/convert.h"
#include "quant/int_grid.h"
#include "util/atomic_file.h"
#include "util/half.h"
#include "util/disk_space.h"
#include "util/staging_dir.h"
#include "util/read_text_file.h"

namespace qs {
namespace {

namespace fs = std::filesystem;
using ojson = nlohmann::ordered_json;

bool quantizable_role(LayerRole r) {
  switch (r) {
    case LayerRole::Q: case LayerRole::K: case LayerRole::V: case LayerRole::O:
    case LayerRole::Gate: case LayerRole::Up: case LayerRole::Down:
      return true;
    default:
      return false;
  }
}

// One quantized module, everything the four tensors need.
struct PackedModule {
  std::vector<std::int32_t> qweight, qzeros, g_idx;
  std::vector<std::uint16_t> scales;  // F16 [groups, out]
  double sqnr_db = 0;
};

// RTN onto the GPTQ grid, then the codes recomputed against the F16 scales the
// checkpoint stores (as GPTQ packers do), so that the file dequantizes to the
// values the error is measured on.
Result<PackedModule> quantize_module(const TensorInfo& t, const GptqExportOptions& o, bool v2) {
  const std::int64_t out = t.rows(), in = t.cols();
  std::vector<float> w(static_cast<std::size_t>(out * in));
  if (auto r = convert_to_f32(t.dtype, t.bytes().data(), w.size(), w.data()); !r) return Error::unsupported(t.name + ": " + r.error().message);
  if (t.file) t.file->release(t.offset, t.nbytes);  // stream: keep one tensor resident
  IntGridSpec spec{o.bits, o.sym, o.group_size > 0 ? o.group_size : 0};
  auto q = rtn_int(w.data(), out, in, spec);
  if (!q) return Error::invalid(t.name + ": " + q.error().message);
  const std::int64_t gs = o.group_size > 0 ? o.group_size : in, groups = in / gs;
  const int maxq = (1 << o.bits) - 1;
  PackedModule m;
  m.scales.resize(static_cast<std::size_t>(groups * out));
  std::vector<std::uint8_t> zeros(static_cast<std::size_t>(groups * out));
  double err = 0, ref = 0;
  for (std::int64_t r = 0; r < out; ++r)
    for (std::int64_t g = 0; g < groups; ++g) {
      const std::uint16_t s16 = f32_to_f16(q->scale(r, g * gs));
      const float scale = f16_to_f32(s16), zero = q->zero(r, g * gs);
      m.scales[static_cast<std::size_t>(g * out + r)] = s16;
      zeros[static_cast<std::size_t>(g * out + r)] = static_cast<std::uint8_t>(static_cast<int>(zero) - (v2 ? 0 : 1));
      for (std::int64_t c = g * gs; c < (g + 1) * gs; ++c) {
        const std::size_t i = static_cast<std::size_t>(r * in + c);
        const std::uint8_t code = int_grid_code(w[i], scale, zero, maxq);
        q->codes[i] = code;
        const double d = static_cast<double>(w[i]) - static_cast<double>(scale * (static_cast<float>(code) - zero));
        err += d * d;
        ref += static_cast<double>(w[i]) * w[i];
      }
    }
  m.sqnr_db = err > 0 ? 10.0 * std::log10(ref / err) : INFINITY;
  auto qw = pack_gptq_qweight(q->codes.data(), out, in, o.bits);
  if (!qw) return Error::invalid(t.name + ": " + qw.error().message);
  auto qz = pack_gptq_qzeros(zeros.data(), groups, out, o.bits);
  if (!qz) return Error::invalid(t.name + ": " + qz.error().message);
  m.qweight = std::move(*qw);
  m.qzeros = std::move(*qz);
  m.g_idx.resize(static_cast<std::size_t>(in));
  for (std::int64_t c = 0; c < in; ++c) m.g_idx[static_cast<std::size_t>(c)] = static_cast<std::int32_t>(c / gs);
  return m;
}

template <typename T>
std::span<const std::byte> bytes_of(const std::vector<T>& v) {
  return std::as_bytes(std::span<const T>(v));
}


}  // namespace

Result<GptqExportReport> export_gptq(const Model& source, const std::string& out_dir, const GptqExportOptions& o,
                                     OpContext& ctx) {
  if (source.format != ModelFormat::HfDirectory && source.format != ModelFormat::Safetensors)
    return Error::unsupported(source.path + ": GPTQ export reads Hugging Face safetensors models");
  if (o.bits != 2 && o.bits != 3 && o.bits != 4 && o.bits != 8)
    return Error::invalid("GPTQ export: bits must be 2, 3, 4 or 8, not " + std::to_string(o.bits));
  if (o.group_size == 0 || o.group_size < -1) return Error::invalid("GPTQ export: group size must be > 0 or -1");
  const bool v2 = !o.sym;
  GptqExportReport report;
  report.checkpoint_format = v2 ? "gptq_v2" : "gptq";

  // Which tensors become which entries.
  std::map<std::size_t, std::string> module_of;  // weight tensor index -> module name, for quantized ones
  ojson dynamic = ojson::object();
  for (const Layer& l : source.layers) {
    if (!quantizable_role(l.role) || l.block < 0) continue;
    const TensorInfo& t = source.tensors[l.weight];
    std::string why;
    if (t.shape.size() != 2 || t.channels_last) why = "not a plain 2-D weight";
    else if (auto p = gptq_shape_problem(t.rows(), t.cols(), o.bits); !p.empty()) why = p;
    else if (o.group_size > 0 && t.cols() % o.group_size != 0)
      why = std::to_string(t.cols()) + " inputs are not a multiple of the group size " + std::to_string(o.group_size);
    if (why.empty()) module_of[l.weight] = l.name;
    else dynamic["-:^" + l.name + "$"] = ojson::object();
    report.modules.push_back({l.name, why.empty(), why, 0});
  }

  std::vector<SafetensorsLayoutEntry> layout;
  struct Source {
    std::size_t tensor;
    int part;  // -1: F16 copy; 0 qweight, 1 qzeros, 2 scales, 3 g_idx
  };
  std::vector<Source> sources;
  for (std::size_t i = 0; i < source.tensors.size(); ++i) {
    const TensorInfo& t = source.tensors[i];
    if (auto it = module_of.find(i); it != module_of.end()) {
      const std::int64_t out = t.rows(), in = t.cols(), groups = o.group_size > 0 ? in / o.group_size : 1;
      const std::string& m = it->second;
      layout.push_back({m + ".qweight", DType::I32, {in * o.bits / 32, out}});
      layout.push_back({m + ".qzeros", DType::I32, {groups, out * o.bits / 32}});
      layout.push_back({m + ".scales", DType::F16, {groups, out}});
      layout.push_back({m + ".g_idx", DType::I32, {in}});
      for (int part = 0; part < 4; ++part) sources.push_back({i, part});
    } else {
      if (!dtype_is_float_convertible(t.dtype) || t.channels_last)
        return Error::unsupported(t.name + ": " + std::string(dtype_name(t.dtype)) + " tensors cannot be copied to F16");
      layout.push_back({t.name, DType::F16, t.shape});
      sources.push_back({i, -1});
    }
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
  // The four entries of a module come in file order I32 (qweight, qzeros, g_idx
  // together) then F16 (scales, later): the last module is cached, so each
  // module is quantized at most twice and only one is held at a time.
  std::size_t cached_tensor = SIZE_MAX;
  PackedModule cached;
  std::vector<float> f32;
  std::vector<std::uint16_t> f16;
  std::size_t done = 0;
  auto produce = [&](std::size_t e) -> Result<std::span<const std::byte>> {
    if (ctx.cancelled()) return Error::cancelled();
    ctx.progress(static_cast<double>(done++) / static_cast<double>(layout.size()));
    const Source& s = sources[e];
    const TensorInfo& t = source.tensors[s.tensor];
    if (s.part < 0) {
      f32.resize(t.numel());
      f16.resize(t.numel());
      if (auto r = convert_to_f32(t.dtype, t.bytes().data(), f32.size(), f32.data()); !r) return Error::unsupported(t.name + ": " + r.error().message);
      if (t.file) t.file->release(t.offset, t.nbytes);  // stream: keep one tensor resident
      for (std::size_t k = 0; k < f32.size(); ++k) f16[k] = f32_to_f16(f32[k]);
      return bytes_of(f16);
    }
    if (cached_tensor != s.tensor) {
      auto m = quantize_module(t, o, v2);
      if (!m) return m.error();
      cached = std::move(*m);
      cached_tensor = s.tensor;
      for (auto& mod : report.modules)
        if (mod.name == module_of[s.tensor]) mod.sqnr_db = cached.sqnr_db;
    }
    switch (s.part) {
      case 0: return bytes_of(cached.qweight);
      case 1: return bytes_of(cached.qzeros);
      case 2: return bytes_of(cached.scales);
      default: return bytes_of(cached.g_idx);
    }
  };
  const fs::path st = staging->path() / "model.safetensors";
  if (auto r = write_safetensors_streaming(st.string(), layout, produce); !r) return r.error();
  report.bytes = fs::file_size(st);

  // Configuration: the source config plus quantization_config, and the same
  // object as quantize_config.json (docs/formats.md 4.5).
  auto source_config = read_source_config(source);
  if (!source_config) return source_config.error();
  ojson config = std::move(*source_config);
  ojson qc = ojson::object();
  qc["bits"] = o.bits;
  qc["group_size"] = o.group_size;
  qc["desc_act"] = false;
  qc["sym"] = o.sym;
  qc["static_groups"] = false;
  qc["true_sequential"] = true;
  qc["damp_percent"] = 0.01;
  qc["lm_head"] = false;
  qc["quant_method"] = "gptq";
  qc["checkpoint_format"] = report.checkpoint_format;
  qc["format"] = report.checkpoint_format;
  qc["pack_dtype"] = "int32";
  if (!dynamic.empty()) qc["dynamic"] = dynamic;
  qc["meta"] = {{"quantizer", {"quantscope:0.1.0"}}, {"method", "rtn"}};
  config["quantization_config"] = qc;
  config["torch_dtype"] = "float16";
  if (auto r = write_text_file(staging->path() / "config.json", config.dump(2) + "\n"); !r) return r.error();
  if (auto r = write_text_file(staging->path() / "quantize_config.json", qc.dump(2) + "\n"); !r) return r.error();
  if (auto r = copy_tokenizer_files(source, staging->path()); !r) return r.error();
  if (auto r = staging->commit(); !r) return r.error();
  return report;
}

}  // namespace qs
