#include "export/h5_export.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <optional>
#include <map>
#include <mutex>
#include <span>

#include "export/content_hash.h"
#include "io/h5_id.h"
#include "io/h5_writer.h"
#include "io/hdf5_errors.h"
#include "io/quantized_h5.h"
#include "model/convert.h"
#include "model/model_files.h"
#include "quant/ggml_dequant.h"
#include "quant/ggml_quantize.h"
#include "quant/int_grid.h"
#include "quant/measure.h"
#include "quant/metrics.h"
#include "util/atomic_file.h"
#include "util/disk_space.h"

namespace qs {
namespace {

using h5::Id;
using h5::Writer;

// What a tensor was written as, for the read-back check.
struct WrittenH5Tensor {
  std::string kind = "copy", format;
  DType ggml_type = DType::Unknown;
  int bits = 0, group_size = 0;
  bool symmetric = false;
  std::uint64_t hash = 0;  // fold_hashes of its datasets' content hashes, in stored order
  int layer = -1;          // its row of the report, when quantized
};

std::uint64_t stored_hash(std::initializer_list<std::span<const std::byte>> datasets) {
  std::vector<std::uint64_t> parts;
  for (auto d : datasets) parts.push_back(content_hash(d));
  return fold_hashes(parts);
}

template <typename T>
std::span<const std::byte> bytes_of(const std::vector<T>& v) {
  return std::as_bytes(std::span<const T>(v));
}

// The written file read back with our reader (io/quantized_h5.h): the same
// tensors with the same descriptions, each dataset's bytes as written (by
// hash), and each quantized tensor decoded and measured against the source
// again, which must give the error the report and the file's attributes say.
// `path`: the temporary file; messages name `out_path`.
Result<void> verify_written(const Model& source, const std::vector<WrittenH5Tensor>& written, const std::string& path,
                            const std::string& out_path, H5ExportReport& report, OpContext& ctx) {
  const std::string where = out_path + ": verification: ";
  auto back = read_quantized_h5(path);
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
    const bool quantized = w.kind != "copy";
    if (t.name != src.name || t.shape != src.shape || t.source_dtype != src.dtype || t.kind != w.kind ||
        (quantized && (t.format != w.format || t.ggml_type != w.ggml_type || t.bits != w.bits ||
                       t.group_size != w.group_size || t.symmetric != w.symmetric)))
      return Error::io(where + "tensor " + src.name + " does not read back with the description written");
    auto stored = read_quantized_h5_stored(*back, t);
    if (!stored) return Error::io(where + "tensor " + src.name + ": " + stored.error().message);
    const std::uint64_t hash = w.kind == "int_grid"
                                   ? stored_hash({bytes_of(stored->bytes), bytes_of(stored->scales), bytes_of(stored->zeros)})
                                   : stored_hash({bytes_of(stored->bytes)});
    if (hash != w.hash) return Error::io(where + "tensor " + src.name + " does not read back as written (its data differ)");
    if (!quantized) continue;
    auto values = decode_quantized_h5(*back, t, *stored);
    if (!values) return Error::io(where + "tensor " + src.name + ": " + values.error().message);
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


}  // namespace

Result<H5ExportReport> export_quantized_h5(const Model& source, const Plan& plan, const std::string& out_path,
                                           const H5ExportOptions& options, OpContext& ctx) {
  // The rename at the end would replace a source file the export is still reading.
  if (auto r = refuse_model_file(source, out_path); !r) return r.error();
  auto configs = resolve_plan(plan, source);
  if (!configs) return configs.error();
  std::map<std::size_t, std::size_t> layer_of;  // weight tensor -> layer
  for (std::size_t i = 0; i < source.layers.size(); ++i) {
    if ((*configs)[i].method != "rtn")
      return Error::unsupported(source.layers[i].name + ": method \"" + (*configs)[i].method +
                                "\" needs calibration data, which the HDF5 export does not take yet (use rtn)");
    layer_of[source.layers[i].weight] = i;
  }
  if (auto r = ensure_free_space(out_path, source.weight_bytes()); !r) return r.error();  // at most the source's size
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
    std::vector<std::byte> blocks;
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
        auto c = cfg.format == "f16" || cfg.format == "bf16" || cfg.format == "f32" ? Result<QuantChoice>(Error::unsupported("kept"))
                                                                                   : parse_quant_choice(cfg.format);
        const std::int64_t cols = t.cols();
        if (!c) layer.reason = c.error().message;
        else if (t.channels_last) layer.reason = "channels-last (Keras) kernels are not quantized";
        else if (c->kind == QuantChoice::Kind::Ggml && cols % dtype_block_elems(c->ggml_type) != 0)
          layer.reason = std::to_string(cols) + " columns are not whole " + std::string(dtype_name(c->ggml_type)) + " blocks";
        else if (c->kind == QuantChoice::Kind::IntGrid && !validate_int_grid(c->grid, cols))
          layer.reason = validate_int_grid(c->grid, cols).error().message;
        else if (c->kind != QuantChoice::Kind::Ggml && c->kind != QuantChoice::Kind::IntGrid)
          layer.reason = "format not written to HDF5 yet";
        else choice = *c;
      }
      if (!choice) {
        written[i].hash = stored_hash({t.bytes()});
        if (auto r = w.string_attr(g.get(), "kind", "copy"); !r) return r.error();
        if (auto r = w.dataset(g.get(), "data", H5T_STD_U8LE, H5T_NATIVE_UINT8, {t.nbytes}, t.bytes().data()); !r) return r.error();
        if (t.file) t.file->release(t.offset, t.nbytes);
        if (it != layer_of.end()) report.layers.push_back(std::move(layer));
        continue;
      }
      x.resize(t.numel());
      if (auto r = convert_to_f32(t.dtype, t.bytes().data(), x.size(), x.data()); !r) return Error::unsupported(t.name + ": " + r.error().message);
      if (t.file) t.file->release(t.offset, t.nbytes);
      deq.resize(x.size());
      const std::int64_t rows = t.rows(), cols = t.cols();
      if (choice->kind == QuantChoice::Kind::IntGrid) {
        auto q = rtn_int(x.data(), rows, cols, choice->grid);
        if (!q) return Error::invalid(t.name + ": " + q.error().message);
        dequantize_int_into(*q, deq.data());
        written[i].kind = "int_grid";
        written[i].bits = choice->grid.bits;
        written[i].group_size = choice->grid.group_size;
        written[i].symmetric = choice->grid.symmetric;
        written[i].hash = stored_hash({bytes_of(q->codes), bytes_of(q->scales), bytes_of(q->zeros)});
        const hsize_t groups = static_cast<hsize_t>(q->groups_per_row);
        for (auto r : {w.string_attr(g.get(), "kind", "int_grid"), w.number_attr<std::int64_t>(g.get(), "bits", choice->grid.bits),
                       w.number_attr<std::int64_t>(g.get(), "group_size", choice->grid.group_size),
                       w.number_attr<std::int64_t>(g.get(), "symmetric", choice->grid.symmetric ? 1 : 0),
                       w.dataset(g.get(), "codes", H5T_STD_U8LE, H5T_NATIVE_UINT8, {static_cast<hsize_t>(rows), static_cast<hsize_t>(cols)}, q->codes.data()),
                       w.dataset(g.get(), "scales", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, {static_cast<hsize_t>(rows), groups}, q->scales.data()),
                       w.dataset(g.get(), "zeros", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, {static_cast<hsize_t>(rows), groups}, q->zeros.data())})
          if (!r) return r.error();
      } else {
        const std::size_t n = x.size() / dtype_block_elems(choice->ggml_type);
        blocks.resize(n * dtype_block_bytes(choice->ggml_type));
        if (auto r = quantize_ggml_blocks(choice->ggml_type, x.data(), n, blocks.data()); !r) return Error::invalid(t.name + ": " + r.error().message);
        dequantize_ggml_blocks(choice->ggml_type, blocks.data(), n, deq.data());
        written[i].kind = "ggml";
        written[i].ggml_type = choice->ggml_type;
        written[i].hash = stored_hash({bytes_of(blocks)});
        for (auto r : {w.string_attr(g.get(), "kind", "ggml"), w.string_attr(g.get(), "ggml_type", std::string(dtype_name(choice->ggml_type))),
                       w.dataset(g.get(), "blocks", H5T_STD_U8LE, H5T_NATIVE_UINT8, {blocks.size()}, blocks.data())})
          if (!r) return r.error();
      }
      const WeightError e = weight_error(x.data(), deq.data(), x.size());
      layer.quantized = true;
      layer.bits_per_weight = choice->bits_per_weight(rows, cols);
      layer.sqnr_db = e.sqnr_db;
      for (auto r : {w.string_attr(g.get(), "format", layer.format), w.string_attr(g.get(), "method", "rtn"),
                     w.number_attr<double>(g.get(), "bits_per_weight", layer.bits_per_weight),
                     w.number_attr<double>(g.get(), "sqnr_db", e.sqnr_db), w.number_attr<double>(g.get(), "max_abs_error", e.max_abs)})
        if (!r) return r.error();
      written[i].format = layer.format;
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
