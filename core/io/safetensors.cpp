#include <algorithm>
#include <cstring>
#include <nlohmann/json.hpp>

#include "io/safetensors.h"
#include "util/atomic_file.h"
#include "util/checked_math.h"

namespace qs {

Result<SafetensorsFile> read_safetensors(const std::string& path) {
  auto mapped = MappedFile::open(path);
  if (!mapped) return mapped.error();
  auto header = parse_safetensors_header((*mapped)->bytes(), path);
  if (!header) return header.error();
  SafetensorsFile out;
  out.metadata = std::move(header->metadata);
  out.tensors.reserve(header->entries.size());
  for (auto& e : header->entries) {
    TensorInfo t;
    t.name = std::move(e.name);
    t.shape = std::move(e.shape);
    t.dtype = e.dtype;
    t.file = *mapped;
    t.offset = header->data_start + e.begin;
    t.nbytes = e.end - e.begin;
    out.tensors.push_back(std::move(t));
  }
  return out;
}

Result<void> write_safetensors(const std::string& path, std::vector<SafetensorsWriteEntry> entries,
                               const std::map<std::string, std::string>& metadata) {
  std::vector<SafetensorsLayoutEntry> layout;
  layout.reserve(entries.size());
  for (const auto& e : entries) layout.push_back({e.name, e.dtype, e.shape});
  return write_safetensors_streaming(
      path, layout, [&](std::size_t i) -> Result<std::span<const std::byte>> { return entries[i].data; }, metadata);
}

namespace {

// The file's layout from names, dtypes and shapes: the reference order
// (larger element types first, so every tensor is aligned to its element
// size, then by name), each entry's byte size, and the padded header text.
struct SafetensorsPlan {
  std::vector<std::size_t> order;
  std::vector<std::uint64_t> sizes;
  std::string header;
  std::uint64_t data_bytes = 0;
};

Result<SafetensorsPlan> plan_safetensors(const std::string& path, const std::vector<SafetensorsLayoutEntry>& entries,
                                         const std::map<std::string, std::string>& metadata) {
  SafetensorsPlan p;
  p.order.resize(entries.size());
  for (std::size_t i = 0; i < p.order.size(); ++i) p.order[i] = i;
  std::stable_sort(p.order.begin(), p.order.end(), [&](std::size_t ia, std::size_t ib) {
    const auto& a = entries[ia];
    const auto& b = entries[ib];
    const unsigned ba = dtype_bits(a.dtype), bb = dtype_bits(b.dtype);
    return ba != bb ? ba > bb : a.name < b.name;
  });
  // ordered_json keeps keys in insertion order: metadata first, then tensors.
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  std::uint64_t offset = 0;
  p.sizes.resize(entries.size());
  for (std::size_t k = 0; k < p.order.size(); ++k) {
    const auto& e = entries[p.order[k]];
    if (k > 0 && entries[p.order[k - 1]].name == e.name) return Error::invalid(path + ": duplicate tensor name \"" + e.name + "\"");
    std::uint64_t numel = 1;
    for (auto d : e.shape) {
      if (d < 0 || !checked_mul(numel, static_cast<std::uint64_t>(d), numel))
        return Error::invalid(path + ": tensor \"" + e.name + "\": bad shape " + shape_to_string(e.shape));
    }
    const std::uint64_t bytes = numel * dtype_bits(e.dtype) / 8;
    p.sizes[p.order[k]] = bytes;
    nlohmann::ordered_json entry;
    entry["dtype"] = std::string(dtype_name(e.dtype));
    entry["shape"] = e.shape;
    entry["data_offsets"] = {offset, offset + bytes};
    header[e.name] = std::move(entry);
    offset += bytes;
  }
  p.header = header.dump();
  p.header.append((8 - p.header.size() % 8) % 8, ' ');
  p.data_bytes = offset;
  return p;
}

}  // namespace

Result<std::uint64_t> safetensors_file_bytes(const std::vector<SafetensorsLayoutEntry>& entries,
                                             const std::map<std::string, std::string>& metadata) {
  auto p = plan_safetensors("safetensors layout", entries, metadata);
  if (!p) return p.error();
  return 8 + p->header.size() + p->data_bytes;
}

Result<void> write_safetensors_streaming(const std::string& path, const std::vector<SafetensorsLayoutEntry>& entries,
                                         const SafetensorsProducer& produce,
                                         const std::map<std::string, std::string>& metadata) {
  auto plan = plan_safetensors(path, entries, metadata);
  if (!plan) return plan.error();
  const std::vector<std::size_t>& order = plan->order;
  const std::vector<std::uint64_t>& sizes = plan->sizes;
  const std::string& text = plan->header;
  const std::uint64_t n = text.size();

  auto file = AtomicFile::create(path);
  if (!file) return file.error();
  unsigned char len[8];
  for (int i = 0; i < 8; ++i) len[i] = static_cast<unsigned char>(n >> (8 * i));
  if (auto r = file->write(len, 8); !r) return r;
  if (auto r = file->write(text.data(), text.size()); !r) return r;
  for (std::size_t i : order) {
    auto data = produce(i);
    if (!data) return data.error();
    if (data->size() != sizes[i])
      return Error::invalid(path + ": tensor \"" + entries[i].name + "\": " + std::to_string(data->size()) +
                            " data bytes given, shape needs " + std::to_string(sizes[i]));
    if (auto r = file->write(data->data(), data->size()); !r) return r;
  }
  return file->commit();
}

}  // namespace qs
