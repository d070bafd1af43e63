#include "io/hdf5_errors.h"

#include <hdf5.h>

#include <vector>

namespace qs::h5 {

std::mutex& library_mutex() {
  static std::mutex m;
  return m;
}

void silence_errors() {
  static std::once_flag once;
  std::call_once(once, [] { H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr); });
}

std::string take_error_stack() {
  std::vector<std::string> parts;
  H5Ewalk2(
      H5E_DEFAULT, H5E_WALK_DOWNWARD,
      [](unsigned, const H5E_error2_t* e, void* data) -> herr_t {
        auto* out = static_cast<std::vector<std::string>*>(data);
        std::string s = e->func_name ? e->func_name : "?";
        s += ": ";
        s += e->desc ? e->desc : "error";
        out->push_back(std::move(s));
        return 0;
      },
      &parts);
  H5Eclear2(H5E_DEFAULT);
  std::string msg;
  for (std::size_t i = 0; i < parts.size(); ++i) msg += (i ? "; " : "") + parts[i];
  return msg.empty() ? "unknown HDF5 error" : msg;
}

}  // namespace qs::h5
