#include "export/safetensors_verify.h"

#include <map>

#include "export/content_hash.h"
#include "io/safetensors.h"
#include "util/checked_math.h"
#include "util/direct_read.h"

namespace qs {

Result<void> verify_safetensors_written(const std::string& path, const std::string& label,
                                        const std::vector<WrittenTensor>& expected, const ReadBackVisitor& visit) {
  const std::string where = label + ": verification: ";
  auto back = read_safetensors(path);  // the header; the data pages are not touched through its map
  if (!back) return Error::io(where + "the written file does not read back: " + back.error().message);
  std::map<std::string, std::size_t> index;
  for (std::size_t k = 0; k < expected.size(); ++k) index[expected[k].name] = k;
  std::vector<bool> seen(expected.size(), false);
  for (const TensorInfo& t : back->tensors) {
    const auto it = index.find(t.name);
    if (it == index.end()) return Error::io(where + "tensor " + t.name + " was not written but reads back");
    seen[it->second] = true;
    const WrittenTensor& w = expected[it->second];
    if (t.dtype != w.dtype || t.shape != w.shape)
      return Error::io(where + "tensor " + t.name + " reads back as " + std::string(dtype_name(t.dtype)) + " " +
                       shape_to_string(t.shape) + ", written as " + std::string(dtype_name(w.dtype)) + " " +
                       shape_to_string(w.shape));
  }
  for (std::size_t k = 0; k < expected.size(); ++k)
    if (!seen[k]) return Error::io(where + "tensor " + expected[k].name + " is missing");
  auto reader = DirectReader::open(path);
  if (!reader) return Error::io(where + reader.error().message);
  for (const TensorInfo& t : back->tensors) {  // in offset order: one pass over the file
    const std::size_t k = index.at(t.name);
    auto bytes = reader->read(t.offset, t.nbytes);
    if (!bytes) return Error::io(where + "tensor " + t.name + ": " + bytes.error().message);
    if (content_hash(*bytes) != expected[k].hash)
      return Error::io(where + "tensor " + t.name + " does not read back as written (its bytes differ)");
    if (visit)
      if (auto r = visit(k, *bytes); !r) return Error::io(where + r.error().message);
  }
  return {};
}

}  // namespace qs
