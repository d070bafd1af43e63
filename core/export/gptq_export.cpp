#include "export/gptq_export.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <map>
#include <optional>
#include <nlohmann/json.hpp>

#include "backend/backend.h"
#include "export/content_hash.h"
#include "export/gptq_pack.h"
#include "export/safetensors_verify.h"
#include "export/hf_side_files.h"
#include "io/safetensors.h"
#include "model/convert.h"
#include "calib/activation_capture.h"
#include "quant/capability.h"
#include "quant/fake_quant.h"
#include "quant/method_table.h"
#include "quant/plan.h"
#include "quant/gptq.h"
#include "quant/int_grid.h"
#include "quant/metrics.h"
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

// The four tensors from codes [out, in] (original column order), per-(row,
// group) F16 scales and zero-points ([out, groups], as the quantizers hold
// them) and each input's group; the SQNR of the weight the file decodes to.
Result<PackedModule> pack_module(const std::string& name, const std::vector<float>& w, const std::uint8_t* codes,
                                 const float* scales, const float* zeros, const int* g_idx, std::int64_t out,
                                 std::int64_t in, std::int64_t groups, int bits, bool v2) {
  PackedModule m;
  m.scales.resize(static_cast<std::size_t>(groups * out));
  std::vector<std::uint8_t> stored_zeros(static_cast<std::size_t>(groups * out));
  for (std::int64_t r = 0; r < out; ++r)
    for (std::int64_t g = 0; g < groups; ++g) {
      const auto at = static_cast<std::size_t>(r * groups + g), to = static_cast<std::size_t>(g * out + r);
      m.scales[to] = f32_to_f16(scales[at]);
      stored_zeros[to] = static_cast<std::uint8_t>(static_cast<int>(zeros[at]) - (v2 ? 0 : 1));
    }
  double err = 0, ref = 0;
  for (std::int64_t r = 0; r < out; ++r)
    for (std::int64_t c = 0; c < in; ++c) {
      const auto i = static_cast<std::size_t>(r * in + c);
      const auto g = static_cast<std::size_t>(g_idx[c]);
      const float scale = f16_to_f32(m.scales[g * static_cast<std::size_t>(out) + static_cast<std::size_t>(r)]);
      const float zero = zeros[static_cast<std::size_t>(r * groups) + g];
      const double d = static_cast<double>(w[i]) - static_cast<double>(scale * (static_cast<float>(codes[i]) - zero));
      err += d * d;
      ref += static_cast<double>(w[i]) * w[i];
    }
  m.sqnr_db = err > 0 ? 10.0 * std::log10(ref / err) : INFINITY;
  auto qw = pack_gptq_qweight(codes, out, in, bits);
  if (!qw) return Error::invalid(name + ": " + qw.error().message);
  auto qz = pack_gptq_qzeros(stored_zeros.data(), groups, out, bits);
  if (!qz) return Error::invalid(name + ": " + qz.error().message);
  m.qweight = std::move(*qw);
  m.qzeros = std::move(*qz);
  m.g_idx.assign(g_idx, g_idx + in);
  return m;
}

// Quantizes one layer: GPTQ with `hessian` ([in, in]) when given, with the F16
// scales in the walk, so the file holds exactly GPTQ's result; otherwise RTN,
// its codes recomputed against the F16 scales the checkpoint stores (as GPTQ
// packers do), so that the file dequantizes to the values the error is measured on.
Result<PackedModule> quantize_module(const TensorInfo& t, const GptqExportOptions& o, const std::vector<float>* hessian,
                                     bool v2, OpContext& ctx) {
  const std::int64_t out = t.rows(), in = t.cols();
  std::vector<float> w(static_cast<std::size_t>(out * in));
  if (auto r = convert_to_f32(t.dtype, t.bytes().data(), w.size(), w.data()); !r) return Error::unsupported(t.where() + ": " + r.error().message);
  if (t.file) t.file->release(t.offset, t.nbytes);  // stream: keep one tensor resident
  IntGridSpec spec{o.bits, o.sym, o.group_size > 0 ? o.group_size : 0};
  const std::int64_t gs = o.group_size > 0 ? o.group_size : in, groups = in / gs;
  if (hessian) {
    if (hessian->size() != static_cast<std::size_t>(in * in))
      return Error::invalid(t.name + ": the calibration Hessian does not match its " + std::to_string(in) + " inputs");
    GptqSpec g;
    g.grid = spec;
    g.percdamp = o.percdamp;
    g.block_size = o.block_size;
    g.act_order = o.act_order;
    g.static_groups = o.static_groups;
    g.f16_scales = true;
    auto q = o.backend->gptq(w.data(), out, in, hessian->data(), g, ctx);
    if (!q) return Error{q.error().code, t.where() + ": " + q.error().message};
    return pack_module(t.name, w, q->codes.data(), q->scales.data(), q->zeros.data(), q->g_idx.data(), out, in, groups,
                       o.bits, v2);
  }
  auto q = rtn_int(w.data(), out, in, spec);
  if (!q) return Error{q.error().code, t.where() + ": " + q.error().message};
  const int maxq = (1 << o.bits) - 1;
  for (std::int64_t r = 0; r < out; ++r)
    for (std::int64_t g = 0; g < groups; ++g) {
      float& scale = q->scales[static_cast<std::size_t>(r * groups + g)];
      scale = f16_to_f32(f32_to_f16(scale));
      const float zero = q->zeros[static_cast<std::size_t>(r * groups + g)];
      for (std::int64_t c = g * gs; c < (g + 1) * gs; ++c) {
        const std::size_t i = static_cast<std::size_t>(r * in + c);
        q->codes[i] = int_grid_code(w[i], scale, zero, maxq);
      }
    }
  std::vector<int> g_idx(static_cast<std::size_t>(in));
  for (std::int64_t c = 0; c < in; ++c) g_idx[static_cast<std::size_t>(c)] = static_cast<int>(c / gs);
  return pack_module(t.name, w, q->codes.data(), q->scales.data(), q->zeros.data(), g_idx.data(), out, in, groups,
                     o.bits, v2);
}

template <typename T>
std::span<const std::byte> bytes_of(const std::vector<T>& v) {
  return std::as_bytes(std::span<const T>(v));
}

// A tensor's bytes as read back, as T (copied: the read buffer has no alignment promise).
template <typename T>
std::vector<T> values_of(std::span<const std::byte> b) {
  std::vector<T> v(b.size() / sizeof(T));
  std::memcpy(v.data(), b.data(), v.size() * sizeof(T));
  return v;
}

// Whether the error measured on the read-back weight is the one measured when
// quantizing: the same values, summed in another order.
bool same_error(double a, double b) { return a == b || std::fabs(a - b) <= 1e-6 * std::max(1.0, std::fabs(a)); }

// Which source tensor an entry of the file comes from.
struct EntrySource {
  std::size_t tensor;
  int part;  // -1: F16 copy; 0 qweight, 1 qzeros, 2 scales, 3 g_idx
};

// The written file read back (export/safetensors_verify.h: every entry's
// dtype, shape and bytes), then each module's four entries decoded as a
// loader would (dequantize_gptq) and measured against the source weight
// again: the error the report gives must be the error of what the file holds.
// `path`: the staged file; `label`: its destination, for messages.
Result<void> verify_written(const Model& source, const std::vector<SafetensorsLayoutEntry>& layout,
                            const std::vector<EntrySource>& sources, const std::vector<std::uint64_t>& hashes,
                            const GptqExportOptions& o, bool v2, GptqExportReport& report, const std::string& path,
                            const std::string& label) {
  std::vector<WrittenTensor> expected;
  for (std::size_t k = 0; k < layout.size(); ++k) expected.push_back({layout[k].name, layout[k].dtype, layout[k].shape, hashes[k]});
  std::map<std::string, GptqExportedModule*> module_named;
  for (GptqExportedModule& m : report.modules) module_named[m.name] = &m;
  struct Parts {
    std::vector<std::byte> bytes[4];
    int have = 0;
  };
  std::map<std::size_t, Parts> pending;  // by source tensor, until its four entries have been read
  std::vector<float> w;
  auto visit = [&](std::size_t k, std::span<const std::byte> b) -> Result<void> {
    const EntrySource& s = sources[k];
    if (s.part < 0) return {};  // an F16 copy: its bytes are checked
    Parts& p = pending[s.tensor];
    p.bytes[s.part].assign(b.begin(), b.end());
    if (++p.have < 4) return {};
    const TensorInfo& t = source.tensors[s.tensor];
    const std::string module = layout[k].name.substr(0, layout[k].name.rfind('.'));
    const std::int64_t out = t.rows(), in = t.cols(), groups = o.group_size > 0 ? in / o.group_size : 1;
    auto deq = dequantize_gptq(values_of<std::int32_t>(p.bytes[0]), values_of<std::int32_t>(p.bytes[1]),
                               values_of<std::uint16_t>(p.bytes[2]), values_of<std::int32_t>(p.bytes[3]), out, in, groups,
                               o.bits, v2);
    pending.erase(s.tensor);
    if (!deq) return Error::io("module " + module + " does not decode: " + deq.error().message);
    if (auto fits = check_f32_memory(t); !fits) return fits.error();
    w.resize(t.numel());
    if (auto r = convert_to_f32(t.dtype, t.bytes().data(), w.size(), w.data()); !r)
      return Error::unsupported(t.where() + ": " + r.error().message);
    if (t.file) t.file->release(t.offset, t.nbytes);
    const auto it = module_named.find(module);
    if (it == module_named.end()) return Error::io("module " + module + " is not in the report");
    GptqExportedModule& m = *it->second;
    m.readback_sqnr_db = weight_error(w.data(), deq->data(), w.size()).sqnr_db;
    if (!same_error(m.readback_sqnr_db, m.sqnr_db))
      return Error::io("module " + m.name + " decodes to an SQNR of " + std::to_string(m.readback_sqnr_db) +
                            " dB, not the " + std::to_string(m.sqnr_db) + " dB measured when it was quantized");
    return {};
  };
  if (auto r = verify_safetensors_written(path, label, expected, visit); !r) return r;
  if (!pending.empty()) return Error::io(label + ": verification: a module's four tensors did not all read back");
  return {};
}


}  // namespace

Result<GptqPlanOptions> gptq_options_from_plan(const Model& source, const Plan& plan, GptqExportOptions base) {
  auto configs = resolve_plan(plan, source);
  if (!configs) return configs.error();
  std::optional<LayerConfig> common;
  std::string common_layer;
  base.kept_layers.clear();
  for (std::size_t i = 0; i < source.layers.size(); ++i) {
    const Layer& l = source.layers[i];
    if (!quantizable_role(l.role) || l.block < 0) continue;  // embeddings and the head are copied in F16 anyway
    const LayerConfig& c = (*configs)[i];
    auto format = parse_quant_choice(c.format);
    if (!format) return Error::invalid(l.name + ": " + format.error().message);
    const MethodRow* method = find_method(c.method);
    if (!method) return Error::invalid(l.name + ": unknown method \"" + c.method + "\"");
    if (format->keeps_precision()) {
      base.kept_layers.push_back(l.name);
      continue;
    }
    if (auto r = supports(Consumer::GptqExport, *format, *method); !r) return Error::unsupported(l.name + ": " + r.error().message);
    if (auto r = check_method_params(*method, c.params); !r) return Error::invalid(l.name + ": " + r.error().message);
    if (!common) {
      common = c;
      common_layer = l.name;
    } else if (format->name != parse_quant_choice(common->format)->name || method != find_method(common->method) ||
               c.params != common->params) {
      return Error::unsupported(l.name + ": " + c.format + "+" + c.method + " differs from " + common_layer + "'s " +
                                common->format + "+" + common->method +
                                ": a GPTQ checkpoint holds one grid and method (export mixed plans as GGUF, HDF5 or fake-quant)");
    }
  }
  if (!common) return Error::unsupported("the plan quantizes none of the blocks' linear layers");
  const QuantChoice grid = *parse_quant_choice(common->format);
  base.bits = grid.grid.bits;
  base.group_size = grid.grid.group_size > 0 ? grid.grid.group_size : -1;
  base.sym = grid.grid.symmetric;
  const MethodRow& m = *find_method(common->method);
  base.act_order = m.id == MethodId::Gptq && m.param(common->params, "act_order") != 0;
  base.static_groups = m.id == MethodId::Gptq && m.param(common->params, "static_groups") != 0;
  if (m.id == MethodId::Gptq) {
    base.percdamp = m.param(common->params, "percdamp");
    base.block_size = static_cast<int>(m.param(common->params, "block_size"));
  }
  if (base.static_groups && !base.act_order)
    return Error::unsupported(common_layer + ": static_groups goes with act_order in a GPTQ checkpoint (without it "
                              "groups are static anyway): drop it or set act_order = 1");
  return GptqPlanOptions{std::move(base), m.id == MethodId::Gptq};
}

namespace {

// Everything the export decides before it reads a weight: which modules are
// quantized (and why the others are not), their Hessians, and the file's
// entries in order. `predict`: no calibration is needed (a GPTQ module is the
// same size as an RTN one).
struct GptqLayout {
  GptqExportReport report;
  std::map<std::size_t, std::string> module_of;                 // weight tensor index -> module name, quantized ones
  std::map<std::size_t, const std::vector<float>*> hessian_of;  // weight tensor index -> H of its input (GPTQ)
  ojson dynamic = ojson::object();
  std::vector<SafetensorsLayoutEntry> layout;
  std::vector<EntrySource> sources;
  bool v2 = false, calibrated = false;
};

Result<GptqLayout> gptq_layout(const Model& source, const GptqExportOptions& o, bool predict) {
  if (source.format != ModelFormat::HfDirectory && source.format != ModelFormat::Safetensors)
    return Error::unsupported(source.path + ": GPTQ export reads Hugging Face safetensors models");
  if (o.bits != 2 && o.bits != 3 && o.bits != 4 && o.bits != 8)
    return Error::invalid("GPTQ export: bits must be 2, 3, 4 or 8, not " + std::to_string(o.bits));
  if (o.group_size == 0 || o.group_size < -1) return Error::invalid("GPTQ export: group size must be > 0 or -1");
  GptqLayout lay;
  const bool calibrated = o.capture != nullptr;
  lay.calibrated = calibrated;
  auto hessian_for = [&](const Layer& l) { return o.capture ? o.capture->hessian_for(l.role, l.block) : nullptr; };
  if ((o.act_order || o.static_groups) && !calibrated && !predict)
    return Error::invalid("GPTQ export: act-order and static groups are GPTQ options; they need calibration (Hessians)");
  if (o.static_groups && !o.act_order)
    return Error::invalid("GPTQ export: static groups go with act-order (without it groups are static anyway)");
  if (calibrated && !(o.percdamp >= 0)) return Error::invalid("GPTQ export: the damping must be >= 0");
  const bool v2 = !o.sym;
  lay.v2 = v2;
  GptqExportReport& report = lay.report;
  report.checkpoint_format = v2 ? "gptq_v2" : "gptq";

  // Which tensors become which entries.
  std::map<std::size_t, std::string>& module_of = lay.module_of;
  std::map<std::size_t, const std::vector<float>*>& hessian_of = lay.hessian_of;
  const std::string format = int_grid_name({o.bits, o.sym, o.group_size > 0 ? o.group_size : 0});
  ojson& dynamic = lay.dynamic;
  for (const Layer& l : source.layers) {
    if (!quantizable_role(l.role) || l.block < 0) continue;
    const TensorInfo& t = source.tensors[l.weight];
    std::string why;
    if (std::find(o.kept_layers.begin(), o.kept_layers.end(), l.name) != o.kept_layers.end()) why = "kept by the plan";
    else if (t.shape.size() != 2 || t.channels_last) why = "not a plain 2-D weight";
    else if (auto p = gptq_shape_problem(t.rows(), t.cols(), o.bits); !p.empty()) why = p;
    else if (o.group_size > 0 && t.cols() % o.group_size != 0)
      why = std::to_string(t.cols()) + " inputs are not a multiple of the group size " + std::to_string(o.group_size);
    if (why.empty() && calibrated && !predict) {
      hessian_of[l.weight] = hessian_for(l);
      const std::vector<float>* h = hessian_of[l.weight];
      if (!h) return Error::invalid(l.name + ": the calibration has no Hessian for this layer (block " + std::to_string(l.block) + ")");
      if (h->size() != static_cast<std::size_t>(t.cols() * t.cols()))
        return Error::invalid(l.name + ": the calibration Hessian does not match its " + std::to_string(t.cols()) + " inputs");
    }
    if (why.empty()) module_of[l.weight] = l.name;
    else dynamic["-:^" + l.name + "$"] = ojson::object();
    report.modules.push_back({l.name, format, why.empty(), why, 0});
  }

  if (module_of.empty()) {
    std::string first;
    for (const GptqExportedModule& m : report.modules)
      if (!m.reason.empty()) {
        first = m.name + ": " + m.reason;
        break;
      }
    return Error::unsupported("GPTQ export: no layer can take " + format + (first.empty() ? "" : " (" + first + ")") +
                              "; nothing would be quantized");
  }

  std::vector<SafetensorsLayoutEntry>& layout = lay.layout;
  std::vector<EntrySource>& sources = lay.sources;
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
        return Error::unsupported(t.where() + ": " + std::string(dtype_name(t.dtype)) + " tensors cannot be copied to F16");
      layout.push_back({t.name, DType::F16, t.shape});
      sources.push_back({i, -1});
    }
  }

  return lay;
}

}  // namespace

Result<GptqPrediction> predict_gptq(const Model& source, const GptqExportOptions& options) {
  auto lay = gptq_layout(source, options, true);
  if (!lay) return lay.error();
  auto bytes = safetensors_file_bytes(lay->layout);
  if (!bytes) return bytes.error();
  GptqPrediction p;
  p.bytes = *bytes;
  for (const auto& e : lay->layout) {
    std::uint64_t n = 1;
    for (auto d : e.shape) n *= static_cast<std::uint64_t>(d);
    p.tensor_bytes += n * dtype_bits(e.dtype) / 8;
  }
  for (const TensorInfo& t : source.tensors) p.weights += static_cast<std::uint64_t>(t.numel());
  for (const auto& m : lay->report.modules) p.quantized_modules += m.quantized;
  p.modules = lay->report.modules.size();
  return p;
}

Result<GptqExportReport> export_gptq(const Model& source, const std::string& out_dir, const GptqExportOptions& o,
                                     OpContext& ctx) {
  auto planned = gptq_layout(source, o, false);
  if (!planned) return planned.error();
  GptqLayout& lay = *planned;
  const bool v2 = lay.v2, calibrated = lay.calibrated;
  GptqExportReport& report = lay.report;
  const std::map<std::size_t, std::string>& module_of = lay.module_of;
  const std::map<std::size_t, const std::vector<float>*>& hessian_of = lay.hessian_of;
  const ojson& dynamic = lay.dynamic;
  const std::vector<SafetensorsLayoutEntry>& layout = lay.layout;
  const std::vector<EntrySource>& sources = lay.sources;
  std::uint64_t needed = 0;
  for (const auto& e : layout) {
    std::uint64_t n = 1;
    for (auto d : e.shape) n *= static_cast<std::uint64_t>(d);
    needed += n * dtype_bits(e.dtype) / 8;
  }
  if (auto r = ensure_free_space(out_dir, needed); !r) return r.error();
  auto staging = StagingDir::create(out_dir);
  if (!staging) return staging.error();
  // The four entries of a module come in file order I32 (g_idx, qweight,
  // qzeros together) then F16 (scales, with the other F16 tensors, later):
  // each module is quantized once, its I32 entries are served from `cached`
  // and its scales (1/gs of its F16 size) wait in `scales_of` until their turn.
  std::size_t cached_tensor = SIZE_MAX;
  PackedModule cached;
  std::map<std::size_t, std::vector<std::uint16_t>> scales_of;
  std::vector<std::uint16_t> scales_out;
  std::vector<float> f32;
  std::vector<std::uint16_t> f16;
  std::size_t done = 0;
  std::vector<std::uint64_t> hashes(layout.size());
  auto produce_entry = [&](std::size_t e) -> Result<std::span<const std::byte>> {
    if (ctx.cancelled()) return Error::cancelled();
    ctx.progress(static_cast<double>(done++) / static_cast<double>(layout.size()));
    const EntrySource& s = sources[e];
    const TensorInfo& t = source.tensors[s.tensor];
    if (s.part < 0) {
      if (auto fits = check_f32_memory(t); !fits) return fits.error();
      f32.resize(t.numel());
      f16.resize(t.numel());
      if (auto r = convert_to_f32(t.dtype, t.bytes().data(), f32.size(), f32.data()); !r) return Error::unsupported(t.where() + ": " + r.error().message);
      if (t.file) t.file->release(t.offset, t.nbytes);  // stream: keep one tensor resident
      for (std::size_t k = 0; k < f32.size(); ++k) f16[k] = f32_to_f16(f32[k]);
      return bytes_of(f16);
    }
    if (s.part == 2) {
      if (auto it = scales_of.find(s.tensor); it != scales_of.end()) {
        scales_out = std::move(it->second);
        scales_of.erase(it);
        return bytes_of(scales_out);
      }
    }
    if (cached_tensor != s.tensor) {  // (only the first entry of a module gets here, unless the order changes)
      const auto h = hessian_of.find(s.tensor);
      auto m = quantize_module(t, o, h != hessian_of.end() ? h->second : nullptr, v2, ctx);
      if (!m) return m.error();
      cached = std::move(*m);
      cached_tensor = s.tensor;
      for (auto& mod : report.modules)
        if (mod.name == module_of.at(s.tensor)) mod.sqnr_db = cached.sqnr_db;
      if (s.part != 2) scales_of[s.tensor] = std::move(cached.scales);
      else scales_out = std::move(cached.scales);
    }
    switch (s.part) {
      case 0: return bytes_of(cached.qweight);
      case 1: return bytes_of(cached.qzeros);
      case 2: return bytes_of(scales_out);
      default: return bytes_of(cached.g_idx);
    }
  };
  auto produce = [&](std::size_t e) -> Result<std::span<const std::byte>> {
    auto bytes = produce_entry(e);
    if (bytes) hashes[e] = content_hash(*bytes);  // while in cache, for the read-back check
    return bytes;
  };
  const fs::path st = staging->path() / "model.safetensors";
  if (auto r = write_safetensors_streaming(st.string(), layout, produce); !r) return r.error();
  report.bytes = fs::file_size(st);
  if (o.after_write) o.after_write(st.string());
  if (auto r = verify_written(source, layout, sources, hashes, o, v2, report, st.string(), (fs::path(out_dir) / "model.safetensors").string()); !r) return r.error();
  report.verified = true;

  // Configuration: the source config plus quantization_config, and the same
  // object as quantize_config.json (docs/formats.md 4.5).
  auto source_config = read_source_config(source);
  if (!source_config) return source_config.error();
  ojson config = std::move(*source_config);
  ojson qc = ojson::object();
  qc["bits"] = o.bits;
  qc["group_size"] = o.group_size;
  qc["desc_act"] = o.act_order;
  qc["sym"] = o.sym;
  qc["static_groups"] = o.static_groups;
  // Every layer's H comes from the unquantized model (one calibration pass),
  // not from inputs that earlier quantized layers produced.
  qc["true_sequential"] = !calibrated;
  qc["damp_percent"] = o.percdamp;
  qc["lm_head"] = false;
  qc["quant_method"] = "gptq";
  qc["checkpoint_format"] = report.checkpoint_format;
  qc["format"] = report.checkpoint_format;
  qc["pack_dtype"] = "int32";
  if (!dynamic.empty()) qc["dynamic"] = dynamic;
  qc["meta"] = {{"quantizer", {"quantscope:0.1.0"}}, {"method", calibrated ? "gptq" : "rtn"}};
  config["quantization_config"] = qc;
  config["torch_dtype"] = "float16";
  if (auto r = write_text_file(staging->path() / "config.json", config.dump(2) + "\n"); !r) return r.error();
  if (auto r = write_text_file(staging->path() / "quantize_config.json", qc.dump(2) + "\n"); !r) return r.error();
  if (auto r = copy_tokenizer_files(source, staging->path()); !r) return r.error();
  if (auto r = staging->commit(); !r) return r.error();
  return report;
}

}  // namespace qs
