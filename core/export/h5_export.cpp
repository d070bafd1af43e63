#include "export/h5_export.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <optional>
#include <map>
#include <mutex>
#include <span>

#include "calib/layer_input_stats.h"
#include "export/content_hash.h"
#include "export/h5_encode.h"
#include "io/h5_id.h"
#include "io/h5_writer.h"
#include "io/hdf5_errors.h"
#include "io/quantized_h5.h"
#include "model/convert.h"
#include "model/model_files.h"
#include "quant/ggml_dequant.h"
#include "quant/ggml_quantize.h"
#include "quant/int_grid.h"
#include "quant/capability.h"
#include "quant/layer_method.h"
#include "quant/measure.h"
#include "quant/method_table.h"
#include "quant/metrics.h"
#include "util/atomic_file.h"
#include "util/disk_space.h"

namespace qs {
namespace {

using h5::Id;
using h5::Writer;

// What a tensor was written as, for the read-back check.
struct WrittenH5Tensor {
  QuantizedH5Tensor desc;  // kind "copy" until quantized
  std::uint64_t hash = 0;  // stored_hash of its datasets
  int layer = -1;          // its row of the report, when quantized
};

template <typename T>
std::span<const std::byte> bytes_of(const std::vector<T>& v) {
  return std::as_bytes(std::span<const T>(v));
}

// Every dataset of a tensor, in one fixed order (empty ones included), by content hash.
std::uint64_t stored_hash(const QuantizedH5Stored& s) {
  return fold_hashes({content_hash(bytes_of(s.bytes)), content_hash(bytes_of(s.scales)), content_hash(bytes_of(s.zeros)),
                      content_hash(bytes_of(s.scale_codes)), content_hash(bytes_of(s.outlier_rows)),
                      content_hash(bytes_of(s.outlier_cols)), content_hash(bytes_of(s.outlier_values))});
}

// A copy's hash: its bytes in the place of the codes, nothing else.
std::uint64_t stored_hash_of_copy(std::span<const std::byte> bytes) {
  QuantizedH5Stored none;
  return fold_hashes({content_hash(bytes), content_hash(bytes_of(none.scales)), content_hash(bytes_of(none.zeros)),
                      content_hash(bytes_of(none.scale_codes)), content_hash(bytes_of(none.outlier_rows)),
                      content_hash(bytes_of(none.outlier_cols)), content_hash(bytes_of(none.outlier_values))});
}

// Whether a tensor read back with the description it was written with.
bool same_description(const QuantizedH5Tensor& a, const QuantizedH5Tensor& b) {
  return a.kind == b.kind && a.format == b.format && a.method == b.method && a.ggml_type == b.ggml_type && a.bits == b.bits &&
         a.group_size == b.group_size && a.symmetric == b.symmetric && a.double_quant == b.double_quant &&
         a.nf4_offset == b.nf4_offset && a.fp8_e5m2 == b.fp8_e5m2 && a.per_channel == b.per_channel &&
         a.tensor_scale == b.tensor_scale && a.outliers == b.outliers && a.outlier_count == b.outlier_count;
}

// The written file read back with our reader (io/quantized_h5.h): the same
// tensors with the same descriptions, each dataset's bytes as written (by
// hash), and each quantized tensor decoded and measured against the source
// again, which must give the error the report and the file's attributes say.
// `path`: the temporary file; messages name `out_path`.
Result<void> verify_written(const Model& source, const std::vector<WrittenH5Tensor>& written, const std::string& path,
                            const std::string& out_path, H5ExportReport& report, OpContext& ctx) {
  const std::string where = out_path + ": verification: ";
  auto back = read_quantized_h5(path, /*vet=*/false);  // our own temporary, just written
  if (!back) return Error::io(where + "the written file does not read back: " + back.error().message);
  if (back->tensors.size() != source.tensors.size())
    return Error::io(where + std::to_string(back->tensors.size()) + " tensors read back, " +
                     std::to_string(source.tensors.size()) + " written");
  std::vector<float> x;
  for (std::size_t i = 0; i < written.size(); ++i) {
    if (ctx.cancelled()) return Error::cancelled();
    const TensorInfo& src = source.tensors[i];
    const QuantizedH5Tensor& t = back->tensors[i];
    const WrittenH5Tensor& w = written[i];
    const bool quantized = w.desc.kind != "copy";
    if (t.name != src.name || t.shape != src.shape || t.source_dtype != src.dtype || !same_description(t, w.desc))
      return Error::io(where + "tensor " + src.name + " does not read back with the description written");
    auto stored = read_quantized_h5_stored(*back, t);
    if (!stored) return Error::io(where + "tensor " + src.name + ": " + stored.error().message);
    const std::uint64_t hash = stored_hash(*stored);
    if (hash != w.hash) return Error::io(where + "tensor " + src.name + " does not read back as written (its data differ)");
    if (!quantized) continue;
    auto values = decode_quantized_h5(*back, t, *stored);
    if (!values) return Error::io(where + "tensor " + src.name + ": " + values.error().message);
    if (auto fits = check_f32_memory(src); !fits) return fits.error();
    x.resize(src.numel());
    if (auto r = convert_to_f32(src.dtype, src.bytes().data(), x.size(), x.data()); !r)
      return Error::unsupported(src.name + ": " + r.error().message);
    if (src.file) src.file->release(src.offset, src.nbytes);
    H5ExportedLayer& layer = report.layers[static_cast<std::size_t>(w.layer)];
    layer.readback_sqnr_db = weight_error(x.data(), values->data(), x.size()).sqnr_db;
    const auto same = [](double a, double b) { return a == b || std::fabs(a - b) <= 1e-6 * std::max(1.0, std::fabs(a)); };
    if (!same(layer.readback_sqnr_db, layer.sqnr_db) || !same(t.sqnr_db, layer.sqnr_db))
      return Error::io(where + "tensor " + src.name + " decodes to an SQNR of " + std::to_string(layer.readback_sqnr_db) +
                       " dB (its attribute says " + std::to_string(t.sqnr_db) + "), not the " +
                       std::to_string(layer.sqnr_db) + " dB measured when it was quantized");
  }
  return {};
}

// A tensor's kind, its format's attributes and its datasets, as the reader wants them.
Result<void> write_encoded(h5::Writer& w, hid_t g, const QuantizedH5Tensor& d, const QuantizedH5Stored& s, std::int64_t rows,
                           std::int64_t cols) {
  const auto nr = static_cast<hsize_t>(rows), nc = static_cast<hsize_t>(cols);
  const auto u8 = [&](const char* name, const std::vector<std::uint8_t>& v, std::vector<hsize_t> dims) {
    return w.dataset(g, name, H5T_STD_U8LE, H5T_NATIVE_UINT8, dims, v.data());
  };
  const auto f32 = [&](const char* name, const std::vector<float>& v, std::vector<hsize_t> dims) {
    return w.dataset(g, name, H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, dims, v.data());
  };
  std::vector<Result<void>> rs;
  rs.push_back(w.string_attr(g, "kind", d.kind));
  if (d.kind == "int_grid") {
    const hsize_t groups = s.scales.size() / nr;
    rs.push_back(w.number_attr<std::int64_t>(g, "bits", d.bits));
    rs.push_back(w.number_attr<std::int64_t>(g, "group_size", d.group_size));
    rs.push_back(w.number_attr<std::int64_t>(g, "symmetric", d.symmetric ? 1 : 0));
    rs.push_back(u8("codes", s.bytes, {nr, nc}));
    rs.push_back(f32("scales", s.scales, {nr, groups}));
    rs.push_back(f32("zeros", s.zeros, {nr, groups}));
  } else if (d.kind == "ggml") {
    rs.push_back(w.string_attr(g, "ggml_type", std::string(dtype_name(d.ggml_type))));
    rs.push_back(u8("blocks", s.bytes, {s.bytes.size()}));
  } else if (d.kind == "fp8") {
    rs.push_back(w.string_attr(g, "fp8_type", d.fp8_e5m2 ? "E5M2" : "E4M3"));
    rs.push_back(w.number_attr<std::int64_t>(g, "per_channel", d.per_channel ? 1 : 0));
    rs.push_back(u8("codes", s.bytes, {nr, nc}));
    rs.push_back(f32("scales", s.scales, {s.scales.size()}));
  } else {  // nf4, mxfp4, nvfp4: two codes a byte
    rs.push_back(u8("packed", s.bytes, {nr, nc / 2}));
    if (d.kind == "nf4") {
      rs.push_back(w.number_attr<std::int64_t>(g, "double_quant", d.double_quant ? 1 : 0));
      if (d.double_quant) {
        rs.push_back(w.number_attr<double>(g, "offset", d.nf4_offset));
        rs.push_back(u8("absmax_codes", s.scale_codes, {s.scale_codes.size()}));
        rs.push_back(f32("absmax2", s.scales, {s.scales.size()}));
      } else {
        rs.push_back(f32("absmax", s.scales, {s.scales.size()}));
      }
    } else {
      rs.push_back(u8("scales", s.scale_codes, {nr, s.scale_codes.size() / nr}));
      if (d.kind == "nvfp4") rs.push_back(w.number_attr<double>(g, "tensor_scale", d.tensor_scale));
    }
  }
  if (!d.outliers.empty()) {
    const auto k = static_cast<hsize_t>(d.outlier_count);
    const auto i32 = [&](const char* name, const std::vector<std::int32_t>& v) {
      return w.dataset(g, name, H5T_STD_I32LE, H5T_NATIVE_INT32, {v.size()}, v.data());
    };
    rs.push_back(w.string_attr(g, "outliers", d.outliers));
    rs.push_back(w.number_attr<std::int64_t>(g, "outlier_count", d.outlier_count));
    if (d.outliers == "weights") {
      rs.push_back(i32("outlier_rows", s.outlier_rows));
      rs.push_back(i32("outlier_cols", s.outlier_cols));
    } else {
      rs.push_back(i32("outlier_channels", s.outlier_cols));
    }
    const std::vector<hsize_t> dims = d.outliers == "weights" ? std::vector<hsize_t>{k} : std::vector<hsize_t>{k, nr};
    rs.push_back(w.dataset(g, "outlier_values", H5T_STD_U16LE, H5T_NATIVE_UINT16, dims, s.outlier_values.data()));
  }
  for (auto& r : rs)
    if (!r) return r.error();
  return {};
}

}  // namespace

Result<H5ExportReport> export_quantized_h5(const Model& source, const Plan& plan, const std::string& out_path,
                                           const H5ExportOptions& options, OpContext& ctx) {
  // The rename at the end would replace a source file the export is still reading.
  if (auto r = refuse_model_file(source, out_path); !r) return r.error();
  auto configs = resolve_plan(plan, source);
  if (!configs) return configs.error();
  std::map<std::size_t, std::size_t> layer_of;  // weight tensor -> layer
  std::vector<const MethodRow*> methods(source.layers.size());
  for (std::size_t i = 0; i < source.layers.size(); ++i) {
    const LayerConfig& c = (*configs)[i];
    auto format = parse_quant_choice(c.format);
    if (!format) return Error::invalid(source.layers[i].name + ": " + format.error().message);
    methods[i] = find_method(c.method);
    if (!methods[i]) return Error::invalid(source.layers[i].name + ": unknown method \"" + c.method + "\"");
    if (!format->keeps_precision())
      if (auto r = supports(Consumer::Hdf5Export, *format, *methods[i]); !r)
        return Error::unsupported(source.layers[i].name + ": " + r.error().message);
    if (auto r = check_method_params(*methods[i], c.params); !r)
      return Error::invalid(source.layers[i].name + ": " + r.error().message);
    layer_of[source.layers[i].weight] = i;
  }
  // Copies take their bytes; a quantized weight at most a byte of code, its
  // scales and an outlier table (fraction <= 1: 6 bytes a kept weight).
  std::uint64_t needed = 0;
  for (std::size_t i = 0; i < source.tensors.size(); ++i) {
    const TensorInfo& t = source.tensors[i];
    const auto it = layer_of.find(i);
    if (it == layer_of.end()) {
      needed += t.nbytes;
      continue;
    }
    const MethodRow& m = *methods[it->second];
    const double fraction = m.id == MethodId::Outliers ? m.param((*configs)[it->second].params, "fraction") : 0.0;
    needed += std::max<std::uint64_t>(t.nbytes, static_cast<std::uint64_t>(static_cast<double>(t.numel()) * (1.25 + 6.0 * fraction)));
  }
  if (auto r = ensure_free_space(out_path, needed); !r) return r.error();
  auto file = AtomicFile::create(out_path);
  if (!file) return file.error();

  H5ExportReport report;
  std::vector<WrittenH5Tensor> written(source.tensors.size());
  h5::silence_errors();
  {
    std::lock_guard lock(h5::library_mutex());
    Writer w(out_path);
    Id f(H5Fcreate(file->temp_path().c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT), H5Fclose);
    if (!f.ok()) return w.fail("cannot create");
    for (auto r : {w.string_attr(f.get(), "format", "quantscope-quantized"), w.number_attr<std::int64_t>(f.get(), "version", 1),
                   w.number_attr<std::int64_t>(f.get(), "tensor_count", static_cast<std::int64_t>(source.tensors.size())),
                   w.string_attr(f.get(), "source_path", source.path),
                   w.string_attr(f.get(), "source_format", std::string(model_format_name(source.format))),
                   w.string_attr(f.get(), "created_by", "quantscope 0.1.0")})
      if (!r) return r.error();
    const std::string plan_json = plan_to_json(plan);
    if (auto r = w.dataset(f.get(), "plan.json", H5T_STD_U8LE, H5T_NATIVE_UINT8, {plan_json.size()}, plan_json.data()); !r)
      return r.error();
    Id tensors(H5Gcreate2(f.get(), "tensors", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), H5Gclose);
    if (!tensors.ok()) return w.fail("group tensors");

    std::vector<float> x, deq;
    for (std::size_t i = 0; i < source.tensors.size(); ++i) {
      if (ctx.cancelled()) return Error::cancelled();
      const TensorInfo& t = source.tensors[i];
      char gname[32];
      std::snprintf(gname, sizeof gname, "%06zu", i);
      Id g(H5Gcreate2(tensors.get(), gname, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), H5Gclose);
      if (!g.ok()) return w.fail(std::string("group tensors/") + gname);
      for (auto r : {w.string_attr(g.get(), "name", t.name), w.shape_attr(g.get(), t.shape),
                     w.string_attr(g.get(), "source_dtype", std::string(dtype_name(t.dtype)))})
        if (!r) return r.error();

      // Which format, if the plan quantizes this tensor and its shape allows it.
      std::optional<QuantChoice> choice;
      H5ExportedLayer layer;
      const auto it = layer_of.find(i);
      if (it != layer_of.end()) {
        const LayerConfig& cfg = (*configs)[it->second];
        layer.name = source.layers[it->second].name;
        layer.format = cfg.format;
        auto c = parse_quant_choice(cfg.format);  // known: checked above
        if (c->keeps_precision()) layer.reason = "kept";
        else if (t.channels_last) layer.reason = "channels-last (Keras) kernels are not quantized";
        else if (auto fits = c->fits(t.cols()); !fits) layer.reason = fits.error().message;
        else choice = *c;
      }
      if (!choice) {
        written[i].desc.kind = "copy";
        written[i].hash = stored_hash_of_copy(t.bytes());
        if (auto r = w.string_attr(g.get(), "kind", "copy"); !r) return r.error();
        if (auto r = w.dataset(g.get(), "data", H5T_STD_U8LE, H5T_NATIVE_UINT8, {t.nbytes}, t.bytes().data()); !r) return r.error();
        if (t.file) t.file->release(t.offset, t.nbytes);
        if (it != layer_of.end()) report.layers.push_back(std::move(layer));
        continue;
      }
      if (auto fits = check_f32_memory(t); !fits) return fits.error();
      x.resize(t.numel());
      if (auto r = convert_to_f32(t.dtype, t.bytes().data(), x.size(), x.data()); !r) return Error::unsupported(t.where() + ": " + r.error().message);
      if (t.file) t.file->release(t.offset, t.nbytes);
      const std::int64_t rows = t.rows(), cols = t.cols();
      const LayerConfig& cfg = (*configs)[it->second];
      QuantizedH5Tensor& desc = written[i].desc;
      desc.name = t.name;
      desc.shape = t.shape;
      desc.source_dtype = t.dtype;
      desc.format = layer.format;
      desc.method = cfg.method;
      QuantizedH5Stored stored;
      layer.bits_per_weight = choice->bits_per_weight(rows, cols);
      if (methods[it->second]->id == MethodId::Outliers) {
        const LayerInputStats stats = layer_input_stats(source.layers[it->second], cols, options.capture);
        auto kept = keep_outliers(*choice, cfg, x.data(), rows, cols, stats);
        if (!kept) return Error{kept.error().code, t.where() + ": " + kept.error().message};
        if (auto r = encode_h5_tensor_with_outliers(*choice, *kept, x.data(), rows, cols, desc, stored); !r)
          return Error{r.error().code, t.where() + ": " + r.error().message};
        layer.bits_per_weight = kept->bits_per_weight;
      } else if (auto r = encode_h5_tensor(*choice, x.data(), rows, cols, desc, stored); !r) {
        return Error{r.error().code, t.where() + ": " + r.error().message};
      }
      // The reader's own decoder gives the values the report measures.
      QuantizedH5 self;
      self.path = out_path;
      auto decoded = decode_quantized_h5(self, desc, stored);
      if (!decoded) return decoded.error();
      deq = std::move(*decoded);
      if (auto r = write_encoded(w, g.get(), desc, stored, rows, cols); !r) return r.error();
      written[i].hash = stored_hash(stored);
      const WeightError e = weight_error(x.data(), deq.data(), x.size());
      layer.quantized = true;
      layer.sqnr_db = e.sqnr_db;
      for (auto r : {w.string_attr(g.get(), "format", layer.format), w.string_attr(g.get(), "method", cfg.method),
                     w.number_attr<double>(g.get(), "bits_per_weight", layer.bits_per_weight),
                     w.number_attr<double>(g.get(), "sqnr_db", e.sqnr_db), w.number_attr<double>(g.get(), "max_abs_error", e.max_abs)})
        if (!r) return r.error();
      written[i].layer = static_cast<int>(report.layers.size());
      report.layers.push_back(std::move(layer));
      ctx.progress(static_cast<double>(i + 1) / static_cast<double>(source.tensors.size()));
    }
    if (H5Fflush(f.get(), H5F_SCOPE_GLOBAL) < 0) return w.fail("flush");
  }  // the HDF5 file is closed here, before it is read back and renamed
  if (options.after_write) options.after_write(file->temp_path());
  if (auto r = verify_written(source, written, file->temp_path(), out_path, report, ctx); !r) return r.error();
  report.verified = true;
  if (auto r = file->commit(); !r) return r.error();
  std::error_code ec;
  report.bytes = std::filesystem::file_size(out_path, ec);
  return report;
}

}  // namespace qs
