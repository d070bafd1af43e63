#include "io/keras_h5.h"

#include <hdf5.h>

#include <algorithm>
#include <nlohmann/json.hpp>

#include "io/h5_id.h"
#include "io/hdf5_errors.h"
#include "io/hdf5_guard.h"
#include "util/memory_budget.h"
#include "util/checked_math.h"
#include "util/json_depth.h"

namespace qs {
namespace {

using h5::Id;

constexpr std::size_t kMaxAttributeBytes = 64u << 20;
constexpr std::uint64_t kMaxReadDataset = std::uint64_t{4} << 30;  // chunked/compressed datasets are read

class KerasReader {
 public:
  KerasReader(const std::string& path) : path_(path) {}

  Result<Model> read() {
    h5::silence_errors();
    std::lock_guard lock(h5::library_mutex());
    if (H5Fis_hdf5(path_.c_str()) <= 0) {
      h5::take_error_stack();
      return Error::format(path_ + ": not an HDF5 file");
    }
    auto mapped = MappedFile::open(path_);
    if (!mapped) return mapped.error();
    map_ = *mapped;
    Id file(H5Fopen(path_.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT), H5Fclose);
    if (!file.ok()) return h5_error("cannot open");

    Model m;
    m.path = path_;
    m.format = ModelFormat::KerasH5;
    m.weight_files.push_back(path_);
    m.arch.model_type = "keras";
    if (auto cfg = string_attribute(file.get(), "model_config"); cfg && !cfg->empty() && check_json_depth(*cfg, path_)) {
      const auto j = nlohmann::json::parse(*cfg, nullptr, false);
      if (j.is_discarded() || !j.is_object()) return Error::format(path_ + ": model_config attribute is not valid JSON");
      if (auto cn = j.find("class_name"); cn != j.end() && cn->is_string()) m.arch.architectures.push_back(cn->get<std::string>());
    }

    // Weights live in /model_weights (full model) or at the root (weights-only file).
    hid_t root = file.get();
    Id mw(H5Lexists(root, "model_weights", H5P_DEFAULT) > 0 ? H5Gopen2(root, "model_weights", H5P_DEFAULT) : -1, H5Gclose);
    const hid_t weights_root = mw.ok() ? mw.get() : root;
    auto layers = string_list_attribute(weights_root, "layer_names");
    if (!layers) return layers.error();
    if (layers->empty())
      return Error::unsupported(path_ + ": no Keras layer_names attribute (not a Keras .h5 model, or the Keras 3 .weights.h5 layout, not read yet)");

    for (const std::string& layer : *layers) {
      if (H5Lexists(weights_root, layer.c_str(), H5P_DEFAULT) <= 0)
        return Error::format(path_ + ": layer \"" + layer + "\" is listed in layer_names but has no group");
      Id group(H5Gopen2(weights_root, layer.c_str(), H5P_DEFAULT), H5Gclose);
      if (!group.ok()) return h5_error("layer \"" + layer + "\"");
      auto weights = string_list_attribute(group.get(), "weight_names");
      if (!weights) return weights.error();
      Layer l;
      l.name = layer;
      bool has_kernel = false;
      for (const std::string& w : *weights) {
        auto t = read_dataset(group.get(), w);
        if (!t) return t.error();
        const std::string base = w.substr(w.rfind('/') + 1);
        const std::size_t index = m.tensors.size();
        if (base.rfind("kernel", 0) == 0 && t->shape.size() >= 2 && !has_kernel) {
          present_out_first(*t);
          l.weight = index;
          has_kernel = true;
        } else if (base.rfind("bias", 0) == 0) {
          l.bias = index;
        }
        m.tensors.push_back(std::move(*t));
      }
      if (has_kernel) m.layers.push_back(std::move(l));  // weightless or kernel-less layers: tensors only
    }
    return m;
  }

 private:
  Error h5_error(const std::string& what) { return Error::format(path_ + ": " + what + ": " + h5::take_error_stack()); }

  // A scalar string attribute (fixed or variable length); nullopt when absent.
  std::optional<std::string> string_attribute(hid_t obj, const char* name) {
    auto list = read_strings(obj, name);
    if (!list || list->empty()) return std::nullopt;
    return list->front();
  }

  // A string-array attribute, concatenating Keras's chunked name0, name1, ... when the plain one is absent.
  Result<std::vector<std::string>> string_list_attribute(hid_t obj, const std::string& name) {
    if (H5Aexists(obj, name.c_str()) > 0) return read_strings(obj, name.c_str());
    std::vector<std::string> all;
    for (int i = 0;; ++i) {
      const std::string part = name + std::to_string(i);
      if (H5Aexists(obj, part.c_str()) <= 0) break;
      auto r = read_strings(obj, part.c_str());
      if (!r) return r.error();
      all.insert(all.end(), r->begin(), r->end());
    }
    return all;
  }

  Result<std::vector<std::string>> read_strings(hid_t obj, const char* name) {
    Id attr(H5Aopen(obj, name, H5P_DEFAULT), H5Aclose);
    if (!attr.ok()) return h5_error(std::string("attribute \"") + name + "\"");
    Id type(H5Aget_type(attr.get()), H5Tclose);
    Id space(H5Aget_space(attr.get()), H5Sclose);
    const hssize_t n = H5Sget_simple_extent_npoints(space.get());
    if (n < 0) return h5_error(std::string("attribute \"") + name + "\"");
    if (n == 0) return std::vector<std::string>{};  // h5py writes empty lists as a 0-length float array
    if (H5Tget_class(type.get()) != H5T_STRING)
      return Error::format(path_ + ": attribute \"" + name + "\" should hold strings");
    std::vector<std::string> out;
    if (H5Tis_variable_str(type.get()) > 0) {
      Id mem(H5Tcopy(H5T_C_S1), H5Tclose);
      H5Tset_size(mem.get(), H5T_VARIABLE);
      H5Tset_cset(mem.get(), H5Tget_cset(type.get()));
      std::vector<char*> buf(static_cast<std::size_t>(n), nullptr);
      if (H5Aread(attr.get(), mem.get(), buf.data()) < 0) return h5_error(std::string("attribute \"") + name + "\"");
      for (char* s : buf) {
        out.emplace_back(s ? s : "");
        H5free_memory(s);
      }
      return out;
    }
    const std::size_t size = H5Tget_size(type.get());
    if (size == 0 || static_cast<std::uint64_t>(n) > kMaxAttributeBytes / size)
      return Error::format(path_ + ": attribute \"" + name + "\" is implausibly large");
    // Read the raw fixed-size strings (a NUL-terminated memory type would cut the last character of a full one).
    Id mem(H5Tcopy(type.get()), H5Tclose);
    H5Tset_strpad(mem.get(), H5T_STR_NULLPAD);
    std::vector<char> buf(static_cast<std::size_t>(n) * size);
    if (H5Aread(attr.get(), mem.get(), buf.data()) < 0) return h5_error(std::string("attribute \"") + name + "\"");
    for (hssize_t i = 0; i < n; ++i) {
      const char* s = buf.data() + static_cast<std::size_t>(i) * size;
      out.emplace_back(s, strnlen(s, size));  // fixed-length strings are NUL-padded
    }
    return out;
  }

  Result<TensorInfo> read_dataset(hid_t group, const std::string& name) {
    const std::string where = "dataset \"" + name + "\"";
    if (H5Lexists(group, name.substr(0, name.find('/')).c_str(), H5P_DEFAULT) <= 0 ||
        H5Oexists_by_name(group, name.c_str(), H5P_DEFAULT) <= 0) {
      h5::take_error_stack();
      return Error::format(path_ + ": " + where + " is listed in weight_names but missing");
    }
    Id ds(H5Dopen2(group, name.c_str(), H5P_DEFAULT), H5Dclose);
    if (!ds.ok()) return h5_error(where);
    Id type(H5Dget_type(ds.get()), H5Tclose);
    Id space(H5Dget_space(ds.get()), H5Sclose);
    TensorInfo t;
    t.name = name;
    const H5T_class_t cls = H5Tget_class(type.get());
    const std::size_t size = H5Tget_size(type.get());
    const bool is_signed = cls == H5T_INTEGER && H5Tget_sign(type.get()) == H5T_SGN_2;
    hid_t native = -1;
    if (cls == H5T_FLOAT && size == 4) { t.dtype = DType::F32; native = H5T_NATIVE_FLOAT; }
    else if (cls == H5T_FLOAT && size == 8) { t.dtype = DType::F64; native = H5T_NATIVE_DOUBLE; }
    else if (cls == H5T_FLOAT && size == 2) { t.dtype = DType::F16; }
    else if (cls == H5T_INTEGER && size == 1) { t.dtype = is_signed ? DType::I8 : DType::U8; native = is_signed ? H5T_NATIVE_INT8 : H5T_NATIVE_UINT8; }
    else if (cls == H5T_INTEGER && size == 4 && is_signed) { t.dtype = DType::I32; native = H5T_NATIVE_INT32; }
    else if (cls == H5T_INTEGER && size == 8 && is_signed) { t.dtype = DType::I64; native = H5T_NATIVE_INT64; }
    else return Error::unsupported(path_ + ": " + where + " has an element type QuantScope does not read");

    const int ndims = H5Sget_simple_extent_ndims(space.get());
    if (ndims < 0 || ndims > 8) return Error::format(path_ + ": " + where + " has " + std::to_string(ndims) + " dimensions");
    hsize_t dims[8] = {};
    H5Sget_simple_extent_dims(space.get(), dims, nullptr);
    std::uint64_t numel = 1;
    for (int i = 0; i < ndims; ++i) {
      t.shape.push_back(static_cast<std::int64_t>(dims[i]));
      if (!checked_mul(numel, dims[i], numel)) return Error::format(path_ + ": " + where + ": shape overflows");
    }
    const auto nbytes = dtype_bytes(t.dtype, numel);
    if (!nbytes) return Error::format(path_ + ": " + where + ": byte size overflows");
    t.nbytes = *nbytes;

    // Contiguous little-endian data is viewed in place in our memory map; anything else is read.
    Id plist(H5Dget_create_plist(ds.get()), H5Pclose);
    const bool little = H5Tget_order(type.get()) == H5T_ORDER_LE;
    const haddr_t offset = H5Dget_offset(ds.get());
    if (H5Pget_layout(plist.get()) == H5D_CONTIGUOUS && little && offset != HADDR_UNDEF) {
      std::uint64_t end;
      if (!checked_add(offset, t.nbytes, end) || end > map_->size())
        return Error::format(path_ + ": " + where + " data lies past the end of the file (truncated?)");
      t.file = map_;
      t.offset = offset;
      return t;
    }
    h5::take_error_stack();  // H5Dget_offset fails on non-contiguous data: not an error
    if (t.nbytes > kMaxReadDataset) return Error::unsupported(path_ + ": " + where + " is chunked/compressed and larger than 4 GiB");
    if (native < 0 && !little) return Error::unsupported(path_ + ": " + where + ": big-endian half floats are not supported");
    // Compressed chunks expand to what the file declares: all of it is held, so the sum must fit.
    buffered_ += t.nbytes;
    if (auto fits = check_memory(static_cast<double>(buffered_), path_ + ": " + where + " (chunked datasets read so far)"); !fits)
      return fits.error();
    std::vector<std::byte> buf(static_cast<std::size_t>(t.nbytes));
    const hid_t mem_type = native >= 0 ? native : type.get();
    if (H5Dread(ds.get(), mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf.data()) < 0) return h5_error(where);
    t.file = MappedFile::from_buffer(std::move(buf), path_ + ":" + name);
    t.offset = 0;
    return t;
  }

  // Keras stores kernels [..., in, out]; we show [out, in, ...] and flag the
  // bytes as channels-last instead of copying them.
  static void present_out_first(TensorInfo& t) {
    std::vector<std::int64_t> s = t.shape;  // Dense [in, out]; ConvND [k..., in, out]
    std::vector<std::int64_t> out{s.back()};
    if (s.size() == 2) {
      out.push_back(s[0]);
    } else {
      out.push_back(s[s.size() - 2]);  // in
      for (std::size_t i = 0; i + 2 < s.size(); ++i) out.push_back(s[i]);  // kernel dims
    }
    t.shape = std::move(out);
    t.channels_last = true;
  }

  std::string path_;
  std::shared_ptr<const MappedFile> map_;
  std::uint64_t buffered_ = 0;  // bytes of chunked datasets read into memory
};

}  // namespace

Result<Model> open_keras_h5(const std::string& path) {
  // The whole read (every dataset comes in at open) first in a child: libhdf5 is not safe on damaged files.
  auto vetted = h5::vet_in_child(path, h5::VetKind::KerasModel);
  if (!vetted) return vetted.error();
  return KerasReader(path).read();
}

}  // namespace qs
