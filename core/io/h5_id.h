#pragma once
// Owns an HDF5 identifier (file, group, dataset, dataspace, type, attribute)
// and closes it with the matching H5?close.
#include <hdf5.h>

namespace qs::h5 {

class Id {
 public:
  Id(hid_t id, herr_t (*close)(hid_t)) : id_(id), close_(close) {}
  ~Id() {
    if (id_ >= 0) close_(id_);
  }
  Id(const Id&) = delete;
  Id& operator=(const Id&) = delete;
  hid_t get() const { return id_; }
  bool ok() const { return id_ >= 0; }

 private:
  hid_t id_;
  herr_t (*close_)(hid_t);
};

}  // namespace qs::h5
