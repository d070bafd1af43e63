#pragma once
// Writing HDF5 attributes and datasets with errors that name the file and the
// object, for QuantScope's own HDF5 files (the quantized checkpoint and the
// calibration file). Scalars are stored as F64 or I64 (little endian), strings
// as UTF-8, fixed length, null padded (what h5py reads back as str).
#include <hdf5.h>

#include <cstdint>
#include <string>
#include <type_traits>
#include <vector>

#include "util/result.h"

namespace qs::h5 {

class Writer {
 public:
  explicit Writer(std::string path) : path_(std::move(path)) {}

  // The failed operation with the HDF5 error stack, naming the file.
  Error fail(const std::string& what) const;

  Result<void> string_attr(hid_t loc, const char* name, const std::string& value) const;
  Result<void> double_attr(hid_t loc, const char* name, double value) const;
  Result<void> int_attr(hid_t loc, const char* name, std::int64_t value) const;
  // Any arithmetic value: floating point as F64, integers as I64.
  template <typename T>
  Result<void> number_attr(hid_t loc, const char* name, T value) const {
    static_assert(std::is_arithmetic_v<T>);
    if constexpr (std::is_floating_point_v<T>) return double_attr(loc, name, static_cast<double>(value));
    else return int_attr(loc, name, static_cast<std::int64_t>(value));
  }
  // A 1-D I64 attribute "shape".
  Result<void> shape_attr(hid_t loc, const std::vector<std::int64_t>& shape) const;
  Result<void> dataset(hid_t loc, const char* name, hid_t file_type, hid_t mem_type, std::vector<hsize_t> dims,
                       const void* data) const;

 private:
  std::string path_;
};

}  // namespace qs::h5
