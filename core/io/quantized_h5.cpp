#include "io/quantized_h5.h"

#include <cstdio>
#include <filesystem>
#include <optional>
#include <mutex>

#include "io/h5_id.h"
#include "io/hdf5_errors.h"
#include "io/hdf5_guard.h"
#include "model/convert.h"
#include "quant/fp4_formats.h"
#include "quant/fp8_quant.h"
#include "quant/ggml_dequant.h"
#include "quant/nf4.h"
#include "util/half.h"

namespace qs {
namespace {

using h5::Id;

constexpr std::uint64_t kMaxDataset = std::uint64_t{16} << 30;

class Reader {
 public:
  explicit Reader(const std::string& path) : path_(path) {}
  Error fail(const std::string& what) const { return Error::format(path_ + ": " + what + " " + h5::take_error_stack()); }

  bool has_attr(hid_t loc, const char* name) const { return H5Aexists(loc, name) > 0; }
  // H5Aread fills the whole attribute: one that holds more than one element
  // would write past the single value read here.
  bool scalar(hid_t attr) const {
    Id space(H5Aget_space(attr), H5Sclose);
    return space.ok() && H5Sget_simple_extent_npoints(space.get()) == 1;
  }
  Result<std::string> string_attr(hid_t loc, const char* name) const {
    Id attr(H5Aopen(loc, name, H5P_DEFAULT), H5Aclose);
    if (!attr.ok()) return fail(std::string("missing attribute ") + name);
    if (!scalar(attr.get())) return fail(std::string("attribute ") + name + " is not a single string");
    Id type(H5Aget_type(attr.get()), H5Tclose);
    if (H5Tget_class(type.get()) != H5T_STRING || H5Tis_variable_str(type.get()) > 0) return fail(std::string("attribute ") + name + " is not a fixed string");
    const std::size_t n = H5Tget_size(type.get());
    if (n > (std::size_t{64} << 20)) return fail(std::string("attribute ") + name + " is too long");
    std::string s(n, '\0');
    if (H5Aread(attr.get(), type.get(), s.data()) < 0) return fail(std::string("attribute ") + name);
    s.resize(s.find('\0') == std::string::npos ? s.size() : s.find('\0'));
    return s;
  }
  template <typename T>
  Result<T> number_attr(hid_t loc, const char* name) const {
    Id attr(H5Aopen(loc, name, H5P_DEFAULT), H5Aclose);
    if (!attr.ok()) return fail(std::string("missing attribute ") + name);
    if (!scalar(attr.get())) return fail(std::string("attribute ") + name + " is not a single number");
    T v{};
    if (H5Aread(attr.get(), std::is_same_v<T, double> ? H5T_NATIVE_DOUBLE : H5T_NATIVE_INT64, &v) < 0)
      return fail(std::string("attribute ") + name);
    return v;
  }
  Result<std::vector<std::int64_t>> shape_attr(hid_t loc) const {
    Id attr(H5Aopen(loc, "shape", H5P_DEFAULT), H5Aclose);
    if (!attr.ok()) return fail("missing attribute shape");
    Id space(H5Aget_space(attr.get()), H5Sclose);
    const hssize_t n = H5Sget_simple_extent_npoints(space.get());
    if (n < 0 || n > 8) return fail("attribute shape has a bad length");
    std::vector<std::int64_t> v(static_cast<std::size_t>(n));
    if (H5Aread(attr.get(), H5T_NATIVE_INT64, v.data()) < 0) return fail("attribute shape");
    for (auto d : v)
      if (d < 0) return fail("negative dimension in shape");
    return v;
  }
  // A whole dataset of `expect` elements of `mem` type into `out`.
  template <typename T>
  Result<void> dataset(hid_t loc, const char* name, hid_t mem, std::uint64_t expect, std::vector<T>& out) const {
    Id ds(H5Dopen2(loc, name, H5P_DEFAULT), H5Dclose);
    if (!ds.ok()) return fail(std::string("missing dataset ") + name);
    Id space(H5Dget_space(ds.get()), H5Sclose);
    const hssize_t n = H5Sget_simple_extent_npoints(space.get());
    if (n < 0 || static_cast<std::uint64_t>(n) != expect || expect * sizeof(T) > kMaxDataset)
      return fail(std::string("dataset ") + name + " has " + std::to_string(n) + " elements, " + std::to_string(expect) + " expected");
    // Its bytes must be in the file: an unwritten dataset reads back as fill
    // values at any size, so a tiny crafted file could ask for gigabytes.
    if (expect > 0 && H5Dget_storage_size(ds.get()) < expect * sizeof(T))
      return fail(std::string("dataset ") + name + " does not hold its data in the file");
    out.resize(static_cast<std::size_t>(expect));
    if (H5Dread(ds.get(), mem, H5S_ALL, H5S_ALL, H5P_DEFAULT, out.data()) < 0) return fail(std::string("dataset ") + name);
    return {};
  }

 private:
  const std::string& path_;
};

// Elements of a shape; nullopt when the product overflows.
std::optional<std::uint64_t> numel(const std::vector<std::int64_t>& shape) {
  std::uint64_t n = 1;
  for (auto d : shape)
    if (__builtin_mul_overflow(n, static_cast<std::uint64_t>(d), &n)) return std::nullopt;
  return n;
}

DType dtype_named(const std::string& s) {
  for (int i = 0; i < static_cast<int>(DType::Unknown); ++i)
    if (dtype_name(static_cast<DType>(i)) == s) return static_cast<DType>(i);
  return DType::Unknown;
}

Result<QuantizedH5> read_quantized_h5_here(const std::string& path);

}  // namespace

Result<QuantizedH5> read_quantized_h5(const std::string& path, bool vet) {
  if (!vet) return read_quantized_h5_here(path);
  // Every read this checkpoint will see (its header here, each tensor's codes
  // later, lazily) first in a child: libhdf5 is not safe on damaged files.
  auto vetted = h5::vet_in_child(path, h5::VetKind::QuantizedCheckpoint);
  if (!vetted) return vetted.error();
  return read_quantized_h5_here(path);
}

namespace {

Result<QuantizedH5> read_quantized_h5_here(const std::string& path) {
  // libhdf5 would open a FIFO and wait for a writer: refused first.
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) return Error::io(path + ": not a regular file");
  h5::silence_errors();
  std::lock_guard lock(h5::library_mutex());
  Reader rd(path);
  if (H5Fis_hdf5(path.c_str()) <= 0) {
    h5::take_error_stack();
    return Error::format(path + ": not an HDF5 file");
  }
  Id f(H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT), H5Fclose);
  if (!f.ok()) return rd.fail("cannot open");
  auto format = rd.string_attr(f.get(), "format");
  if (!format || *format != "quantscope-quantized") return Error::format(path + ": not a QuantScope quantized checkpoint");
  auto version = rd.number_attr<std::int64_t>(f.get(), "version");
  if (!version) return version.error();
  if (*version != 1) return Error::format(path + ": version " + std::to_string(*version) + " is not supported (this build reads 1)");
  QuantizedH5 out;
  out.path = path;
  auto count = rd.number_attr<std::int64_t>(f.get(), "tensor_count");
  if (!count) return count.error();
  if (*count < 0 || *count > 1000000) return Error::format(path + ": tensor_count out of range");
  for (auto [key, dst] : {std::pair{"source_path", &out.source_path}, std::pair{"source_format", &out.source_format}}) {
    auto s = rd.string_attr(f.get(), key);
    if (!s) return s.error();
    *dst = *s;
  }
  {
    Id ds(H5Dopen2(f.get(), "plan.json", H5P_DEFAULT), H5Dclose);
    if (!ds.ok()) return rd.fail("missing dataset plan.json");
    Id space(H5Dget_space(ds.get()), H5Sclose);
    const hssize_t n = H5Sget_simple_extent_npoints(space.get());
    if (n < 0 || n > (hssize_t{64} << 20)) return rd.fail("plan.json too large");
    out.plan_json.resize(static_cast<std::size_t>(n));
    if (n > 0 && H5Dread(ds.get(), H5T_NATIVE_UINT8, H5S_ALL, H5S_ALL, H5P_DEFAULT, out.plan_json.data()) < 0) return rd.fail("plan.json");
  }
  for (std::int64_t i = 0; i < *count; ++i) {
    char gname[48];
    std::snprintf(gname, sizeof gname, "tensors/%06lld", static_cast<long long>(i));
    Id g(H5Gopen2(f.get(), gname, H5P_DEFAULT), H5Gclose);
    if (!g.ok()) return rd.fail(std::string("missing group ") + gname);
    QuantizedH5Tensor t;
    t.group = static_cast<int>(i);
    auto name = rd.string_attr(g.get(), "name");
    auto kind = rd.string_attr(g.get(), "kind");
    auto shape = rd.shape_attr(g.get());
    auto sd = rd.string_attr(g.get(), "source_dtype");
    if (!name || !kind || !shape || !sd) return !name ? name.error() : !kind ? kind.error() : !shape ? shape.error() : sd.error();
    t.name = *name;
    t.kind = *kind;
    t.shape = *shape;
    t.source_dtype = dtype_named(*sd);
    if (t.kind != "copy" && t.kind != "int_grid" && t.kind != "ggml" && t.kind != "nf4" && t.kind != "fp8" &&
        t.kind != "mxfp4" && t.kind != "nvfp4")
      return Error::format(path + ": " + t.name + ": unknown kind \"" + t.kind + "\"");
    const auto bad = [&](const char* what) { return Error::format(path + ": " + t.name + ": " + what); };
    if (t.kind != "copy") {
      auto fmt = rd.string_attr(g.get(), "format");
      auto method = rd.string_attr(g.get(), "method");
      auto bpw = rd.number_attr<double>(g.get(), "bits_per_weight");
      auto sqnr = rd.number_attr<double>(g.get(), "sqnr_db");
      auto mx = rd.number_attr<double>(g.get(), "max_abs_error");
      if (!fmt || !method || !bpw || !sqnr || !mx) return Error::format(path + ": " + t.name + ": missing quantization attributes");
      t.format = *fmt;
      t.method = *method;
      t.bits_per_weight = *bpw;
      t.sqnr_db = *sqnr;
      t.max_abs_error = *mx;
    }
    if (t.kind == "int_grid") {
      auto bits = rd.number_attr<std::int64_t>(g.get(), "bits");
      auto gsz = rd.number_attr<std::int64_t>(g.get(), "group_size");
      auto sym = rd.number_attr<std::int64_t>(g.get(), "symmetric");
      if (!bits || !gsz || !sym || *bits < 2 || *bits > 8 || *gsz < -1) return Error::format(path + ": " + t.name + ": bad integer-grid attributes");
      t.bits = static_cast<int>(*bits);
      t.group_size = static_cast<int>(*gsz);
      t.symmetric = *sym != 0;
    } else if (t.kind == "ggml") {
      auto gt = rd.string_attr(g.get(), "ggml_type");
      if (!gt) return gt.error();
      t.ggml_type = dtype_named(*gt);
      if (!dtype_is_block_quantized(t.ggml_type)) return Error::format(path + ": " + t.name + ": unknown ggml type \"" + *gt + "\"");
    } else if (t.kind == "nf4") {
      auto dq = rd.number_attr<std::int64_t>(g.get(), "double_quant");
      if (!dq) return bad("missing attribute double_quant");
      t.double_quant = *dq != 0;
      if (t.double_quant) {
        auto off = rd.number_attr<double>(g.get(), "offset");
        if (!off) return bad("missing attribute offset");
        t.nf4_offset = static_cast<float>(*off);
      }
    } else if (t.kind == "fp8") {
      auto type = rd.string_attr(g.get(), "fp8_type");
      auto pc = rd.number_attr<std::int64_t>(g.get(), "per_channel");
      if (!type || !pc || (*type != "E4M3" && *type != "E5M2")) return bad("bad FP8 attributes (fp8_type E4M3 or E5M2, per_channel)");
      t.fp8_e5m2 = *type == "E5M2";
      t.per_channel = *pc != 0;
    } else if (t.kind == "nvfp4") {
      auto ts = rd.number_attr<double>(g.get(), "tensor_scale");
      if (!ts) return bad("missing attribute tensor_scale");
      t.tensor_scale = static_cast<float>(*ts);
    }
    if (t.kind != "copy" && rd.has_attr(g.get(), "outliers")) {
      auto mode = rd.string_attr(g.get(), "outliers");
      auto kept = rd.number_attr<std::int64_t>(g.get(), "outlier_count");
      if (!mode) return mode.error();
      if (!kept) return kept.error();
      if ((*mode != "weights" && *mode != "channels") || *kept < 0)
        return bad("bad outlier attributes (outliers: weights or channels, outlier_count)");
      t.outliers = *mode;
      t.outlier_count = *kept;
    }
    out.tensors.push_back(std::move(t));
  }
  return out;
}

// The tensor's element count, rows and columns (rows x cols as TensorInfo views it).
struct Extent {
  std::uint64_t n = 0;
  std::int64_t rows = 0, cols = 0, groups = 0, gs = 0;
};
Result<Extent> extent_of(const QuantizedH5& file, const QuantizedH5Tensor& t) {
  Extent e;
  const auto n = numel(t.shape);
  if (!n || *n > (std::uint64_t{1} << 40)) return Error::format(file.path + ": " + t.name + ": absurd shape");
  e.n = *n;
  e.rows = t.shape.size() >= 2 ? t.shape[0] : 1;
  e.cols = e.rows > 0 ? static_cast<std::int64_t>(e.n) / e.rows : 0;
  if (t.kind == "int_grid") {
    if (t.group_size > 0 && e.cols % t.group_size != 0)
      return Error::format(file.path + ": " + t.name + ": group size does not divide the rows");
    e.groups = t.group_size > 0 ? e.cols / t.group_size : 1;
    e.gs = t.group_size > 0 ? t.group_size : e.cols;
  }
  const std::int64_t block = t.kind == "nf4" ? kNf4Block : t.kind == "mxfp4" ? kMxfp4Block : t.kind == "nvfp4" ? kNvfp4Block : 1;
  if (block > 1 && e.cols % block != 0)
    return Error::format(file.path + ": " + t.name + ": rows are not whole " + t.kind + " blocks of " + std::to_string(block));
  if (t.outliers == "weights" && t.outlier_count > static_cast<std::int64_t>(e.n))
    return Error::format(file.path + ": " + t.name + ": more outliers than weights");
  if (t.outliers == "channels" && t.outlier_count > e.cols)
    return Error::format(file.path + ": " + t.name + ": more outlier channels than columns");
  return e;
}

// NF4, FP8, MXFP4, NVFP4 through the quantization core's own decoders.
Result<void> decode_element_format(const QuantizedH5& file, const QuantizedH5Tensor& t, const Extent& e,
                                   const QuantizedH5Stored& s, float* out) {
  const auto wrong = [&] { return Error::format(file.path + ": " + t.name + ": " + t.kind + " datasets of the wrong size"); };
  if (t.kind == "fp8") {
    if (s.bytes.size() != e.n || s.scales.size() != static_cast<std::size_t>(t.per_channel ? e.rows : 1)) return wrong();
    Fp8Quantized q;
    q.rows = e.rows;
    q.cols = e.cols;
    q.spec = {t.fp8_e5m2 ? Fp8Type::E5M2 : Fp8Type::E4M3, t.per_channel};
    q.codes = s.bytes;
    q.scales = s.scales;
    dequantize_fp8_into(q, out);
    return {};
  }
  if (s.bytes.size() != e.n / 2) return wrong();
  if (t.kind == "nf4") {
    const std::size_t blocks = e.n / kNf4Block;
    Nf4Quantized q;
    q.rows = e.rows;
    q.cols = e.cols;
    q.double_quant = t.double_quant;
    q.packed = s.bytes;
    if (t.double_quant) {  // absmax = map[code] * absmax2 + offset, as quantize_nf4 gives it back
      if (s.scale_codes.size() != blocks || s.scales.size() != (blocks + kNf4ScaleBlock - 1) / kNf4ScaleBlock) return wrong();
      const auto& map = bnb_dynamic_map();
      q.absmax.resize(blocks);
      for (std::size_t k = 0; k < blocks; ++k) q.absmax[k] = map[s.scale_codes[k]] * s.scales[k / kNf4ScaleBlock] + t.nf4_offset;
    } else {
      if (s.scales.size() != blocks) return wrong();
      q.absmax = s.scales;
    }
    dequantize_nf4_into(q, out);
    return {};
  }
  if (t.kind == "mxfp4") {
    if (s.scale_codes.size() != e.n / kMxfp4Block) return wrong();
    Mxfp4Quantized q;
    q.rows = e.rows;
    q.cols = e.cols;
    q.packed = s.bytes;
    q.scales = s.scale_codes;
    dequantize_mxfp4_into(q, out);
    return {};
  }
  if (s.scale_codes.size() != e.n / kNvfp4Block) return wrong();
  Nvfp4Quantized q;
  q.rows = e.rows;
  q.cols = e.cols;
  q.packed = s.bytes;
  q.scales = s.scale_codes;
  q.tensor_scale = t.tensor_scale;
  dequantize_nvfp4_into(q, out);
  return {};
}

// The F16 side table of outlier keeping, added where it was kept.
Result<void> add_outliers(const QuantizedH5& file, const QuantizedH5Tensor& t, const Extent& e, const QuantizedH5Stored& s,
                          float* out) {
  if (t.outliers.empty()) return {};
  const auto bad = [&](const char* what) { return Error::format(file.path + ": " + t.name + ": outlier table: " + what); };
  const auto k = static_cast<std::size_t>(t.outlier_count);
  if (t.outliers == "weights") {
    if (s.outlier_rows.size() != k || s.outlier_cols.size() != k || s.outlier_values.size() != k) return bad("sizes differ");
    for (std::size_t i = 0; i < k; ++i) {
      const std::int32_t r = s.outlier_rows[i], c = s.outlier_cols[i];
      if (r < 0 || r >= e.rows || c < 0 || c >= e.cols) return bad("a position is outside the tensor");
      out[static_cast<std::size_t>(r) * static_cast<std::size_t>(e.cols) + static_cast<std::size_t>(c)] += f16_to_f32(s.outlier_values[i]);
    }
    return {};
  }
  const auto rows = static_cast<std::size_t>(e.rows);
  if (s.outlier_cols.size() != k || s.outlier_values.size() != k * rows) return bad("sizes differ");
  for (std::size_t j = 0; j < k; ++j) {
    const std::int32_t c = s.outlier_cols[j];
    if (c < 0 || c >= e.cols) return bad("a channel is outside the tensor");
    for (std::size_t r = 0; r < rows; ++r)
      out[r * static_cast<std::size_t>(e.cols) + static_cast<std::size_t>(c)] += f16_to_f32(s.outlier_values[j * rows + r]);
  }
  return {};
}

}  // namespace

Result<QuantizedH5Stored> read_quantized_h5_stored(const QuantizedH5& file, const QuantizedH5Tensor& t) {
  auto e = extent_of(file, t);
  if (!e) return e.error();
  h5::silence_errors();
  std::lock_guard lock(h5::library_mutex());
  Reader rd(file.path);
  Id f(H5Fopen(file.path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT), H5Fclose);
  if (!f.ok()) return rd.fail("cannot open");
  char gname[48];
  std::snprintf(gname, sizeof gname, "tensors/%06d", t.group);
  Id g(H5Gopen2(f.get(), gname, H5P_DEFAULT), H5Gclose);
  if (!g.ok()) return rd.fail(std::string("missing group ") + gname);
  QuantizedH5Stored out;
  if (t.kind == "copy" || t.kind == "ggml") {
    const DType type = t.kind == "copy" ? t.source_dtype : t.ggml_type;
    const auto bytes = dtype_bytes(type, e->n);
    if (!bytes)
      return Error::format(file.path + ": " + t.name + (t.kind == "copy" ? ": bad size for " : ": not whole blocks of ") +
                           std::string(dtype_name(type)));
    if (auto r = rd.dataset(g.get(), t.kind == "copy" ? "data" : "blocks", H5T_NATIVE_UINT8, *bytes, out.bytes); !r)
      return r.error();
  } else if (t.kind == "int_grid") {
    const auto per_row = static_cast<std::uint64_t>(e->rows * e->groups);
    if (auto r = rd.dataset(g.get(), "codes", H5T_NATIVE_UINT8, e->n, out.bytes); !r) return r.error();
    if (auto r = rd.dataset(g.get(), "scales", H5T_NATIVE_FLOAT, per_row, out.scales); !r) return r.error();
    if (auto r = rd.dataset(g.get(), "zeros", H5T_NATIVE_FLOAT, per_row, out.zeros); !r) return r.error();
  } else if (t.kind == "fp8") {
    if (auto r = rd.dataset(g.get(), "codes", H5T_NATIVE_UINT8, e->n, out.bytes); !r) return r.error();
    const auto scales = static_cast<std::uint64_t>(t.per_channel ? e->rows : 1);
    if (auto r = rd.dataset(g.get(), "scales", H5T_NATIVE_FLOAT, scales, out.scales); !r) return r.error();
  } else {  // nf4, mxfp4, nvfp4: codes two to a byte, then the block scales
    if (auto r = rd.dataset(g.get(), "packed", H5T_NATIVE_UINT8, e->n / 2, out.bytes); !r) return r.error();
    if (t.kind == "nf4") {
      const std::uint64_t blocks = e->n / kNf4Block;
      if (t.double_quant) {
        if (auto r = rd.dataset(g.get(), "absmax_codes", H5T_NATIVE_UINT8, blocks, out.scale_codes); !r) return r.error();
        const std::uint64_t blocks2 = (blocks + kNf4ScaleBlock - 1) / kNf4ScaleBlock;
        if (auto r = rd.dataset(g.get(), "absmax2", H5T_NATIVE_FLOAT, blocks2, out.scales); !r) return r.error();
      } else if (auto r = rd.dataset(g.get(), "absmax", H5T_NATIVE_FLOAT, blocks, out.scales); !r) {
        return r.error();
      }
    } else {
      const std::uint64_t blocks = e->n / static_cast<std::uint64_t>(t.kind == "mxfp4" ? kMxfp4Block : kNvfp4Block);
      if (auto r = rd.dataset(g.get(), "scales", H5T_NATIVE_UINT8, blocks, out.scale_codes); !r) return r.error();
    }
  }
  if (t.outliers == "weights") {
    const auto k = static_cast<std::uint64_t>(t.outlier_count);
    if (auto r = rd.dataset(g.get(), "outlier_rows", H5T_NATIVE_INT32, k, out.outlier_rows); !r) return r.error();
    if (auto r = rd.dataset(g.get(), "outlier_cols", H5T_NATIVE_INT32, k, out.outlier_cols); !r) return r.error();
    if (auto r = rd.dataset(g.get(), "outlier_values", H5T_NATIVE_UINT16, k, out.outlier_values); !r) return r.error();
  } else if (t.outliers == "channels") {
    const auto k = static_cast<std::uint64_t>(t.outlier_count);
    if (auto r = rd.dataset(g.get(), "outlier_channels", H5T_NATIVE_INT32, k, out.outlier_cols); !r) return r.error();
    if (auto r = rd.dataset(g.get(), "outlier_values", H5T_NATIVE_UINT16, k * static_cast<std::uint64_t>(e->rows), out.outlier_values); !r)
      return r.error();
  }
  return out;
}

Result<std::vector<float>> decode_quantized_h5(const QuantizedH5& file, const QuantizedH5Tensor& t,
                                               const QuantizedH5Stored& s) {
  auto e = extent_of(file, t);
  if (!e) return e.error();
  std::vector<float> out(static_cast<std::size_t>(e->n));
  const auto* raw = reinterpret_cast<const std::byte*>(s.bytes.data());
  if (t.kind == "copy") {
    if (s.bytes.size() != dtype_bytes(t.source_dtype, e->n).value_or(0))
      return Error::format(file.path + ": " + t.name + ": bad size for " + std::string(dtype_name(t.source_dtype)));
    if (auto r = convert_to_f32(t.source_dtype, raw, e->n, out.data()); !r) return r.error();
  } else if (t.kind == "ggml") {
    if (s.bytes.size() != dtype_bytes(t.ggml_type, e->n).value_or(0))
      return Error::format(file.path + ": " + t.name + ": not whole " + std::string(dtype_name(t.ggml_type)) + " blocks");
    dequantize_ggml_blocks(t.ggml_type, raw, e->n / dtype_block_elems(t.ggml_type), out.data());
  } else if (t.kind == "int_grid") {
    const auto per_row = static_cast<std::size_t>(e->rows * e->groups);
    if (s.bytes.size() != e->n || s.scales.size() != per_row || s.zeros.size() != per_row)
      return Error::format(file.path + ": " + t.name + ": codes, scales or zeros of the wrong size");
    for (std::int64_t r = 0; r < e->rows; ++r)
      for (std::int64_t c = 0; c < e->cols; ++c) {
        const std::size_t gi = static_cast<std::size_t>(r * e->groups + c / e->gs);
        const std::size_t i = static_cast<std::size_t>(r * e->cols + c);
        out[i] = s.scales[gi] * (static_cast<float>(s.bytes[i]) - s.zeros[gi]);
      }
  } else if (auto r = decode_element_format(file, t, *e, s, out.data()); !r) {
    return r.error();
  }
  if (auto r = add_outliers(file, t, *e, s, out.data()); !r) return r.error();
  return out;
}

Result<std::vector<float>> read_quantized_h5_values(const QuantizedH5& file, const QuantizedH5Tensor& t) {
  auto stored = read_quantized_h5_stored(file, t);
  if (!stored) return stored.error();
  return decode_quantized_h5(file, t, *stored);
}

}  // namespace qs
