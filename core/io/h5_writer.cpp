#include "io/h5_writer.h"

#include <algorithm>

#include "io/h5_id.h"
#include "io/hdf5_errors.h"

namespace qs::h5 {

Error Writer::fail(const std::string& what) const { return Error::io(path_ + ": " + what + ": " + take_error_stack()); }

Result<void> Writer::string_attr(hid_t loc, const char* name, const std::string& value) const {
  Id type(H5Tcopy(H5T_C_S1), H5Tclose);
  H5Tset_size(type.get(), std::max<std::size_t>(1, value.size()));
  H5Tset_strpad(type.get(), H5T_STR_NULLPAD);
  H5Tset_cset(type.get(), H5T_CSET_UTF8);
  Id space(H5Screate(H5S_SCALAR), H5Sclose);
  Id attr(H5Acreate2(loc, name, type.get(), space.get(), H5P_DEFAULT, H5P_DEFAULT), H5Aclose);
  const std::string padded = value.empty() ? std::string(1, '\0') : value;  // HDF5 has no zero-size string type
  if (!attr.ok() || H5Awrite(attr.get(), type.get(), padded.data()) < 0) return fail(std::string("attribute ") + name);
  return {};
}

namespace {
Result<void> scalar_attr(const Writer& w, hid_t loc, const char* name, hid_t file_type, hid_t mem_type, const void* v) {
  Id space(H5Screate(H5S_SCALAR), H5Sclose);
  Id attr(H5Acreate2(loc, name, file_type, space.get(), H5P_DEFAULT, H5P_DEFAULT), H5Aclose);
  if (!attr.ok() || H5Awrite(attr.get(), mem_type, v) < 0) return w.fail(std::string("attribute ") + name);
  return {};
}
}  // namespace

Result<void> Writer::double_attr(hid_t loc, const char* name, double value) const {
  return scalar_attr(*this, loc, name, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, &value);
}

Result<void> Writer::int_attr(hid_t loc, const char* name, std::int64_t value) const {
  return scalar_attr(*this, loc, name, H5T_STD_I64LE, H5T_NATIVE_INT64, &value);
}

Result<void> Writer::shape_attr(hid_t loc, const std::vector<std::int64_t>& shape) const {
  const hsize_t n = shape.size();
  Id space(H5Screate_simple(1, &n, nullptr), H5Sclose);
  Id attr(H5Acreate2(loc, "shape", H5T_STD_I64LE, space.get(), H5P_DEFAULT, H5P_DEFAULT), H5Aclose);
  if (!attr.ok() || H5Awrite(attr.get(), H5T_NATIVE_INT64, shape.data()) < 0) return fail("attribute shape");
  return {};
}

Result<void> Writer::dataset(hid_t loc, const char* name, hid_t file_type, hid_t mem_type, std::vector<hsize_t> dims,
                             const void* data) const {
  Id space(H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr), H5Sclose);
  Id ds(H5Dcreate2(loc, name, file_type, space.get(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), H5Dclose);
  if (!ds.ok() || H5Dwrite(ds.get(), mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) < 0)
    return fail(std::string("dataset ") + name);
  return {};
}

}  // namespace qs::h5
