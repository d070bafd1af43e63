#include "io/imatrix_file.h"

#include <algorithm>
#include <climits>
#include <cmath>
#include <cstring>
#include <string_view>

#include "io/gguf.h"
#include "util/atomic_file.h"
#include "util/mapped_file.h"

namespace qs {
namespace {

// Bounds-checked little-endian reads over the mapped file.
class Cursor {
 public:
  Cursor(std::span<const std::byte> b, const std::string& path) : b_(b), path_(path) {}
  std::size_t left() const { return b_.size() - at_; }
  Result<std::int32_t> i32(const char* what) {
    if (left() < 4) return truncated(what);
    std::int32_t v;
    std::memcpy(&v, b_.data() + at_, 4);
    at_ += 4;
    return v;
  }
  Result<std::span<const std::byte>> bytes(std::size_t n, const char* what) {
    if (left() < n) return truncated(what);
    auto s = b_.subspan(at_, n);
    at_ += n;
    return s;
  }
  Error truncated(const char* what) const {
    return Error::invalid(path_ + ": importance matrix truncated at byte " + std::to_string(at_) + " (" + what + ")");
  }

 private:
  std::span<const std::byte> b_;
  const std::string& path_;
  std::size_t at_ = 0;
};

Result<ImportanceMatrix> read_legacy(std::span<const std::byte> bytes, const std::string& path) {
  Cursor c(bytes, path);
  ImportanceMatrix m;
  auto count = c.i32("entry count");
  if (!count) return count.error();
  // Each entry takes at least 16 bytes: a count beyond that is a lie, not a reason to loop.
  if (*count < 1 || static_cast<std::size_t>(*count) > c.left() / 16)
    return Error::invalid(path + ": importance matrix claims " + std::to_string(*count) + " entries in " +
                          std::to_string(bytes.size()) + " bytes");
  for (std::int32_t e = 0; e < *count; ++e) {
    const std::string where = path + ": importance matrix entry " + std::to_string(e);
    auto len = c.i32("name length");
    if (!len) return len.error();
    if (*len < 1 || *len > 4096) return Error::invalid(where + ": name length " + std::to_string(*len));
    auto name = c.bytes(static_cast<std::size_t>(*len), "name");
    if (!name) return name.error();
    std::string n(reinterpret_cast<const char*>(name->data()), name->size());
    auto ncall = c.i32("call count");
    if (!ncall) return ncall.error();
    auto nval = c.i32("value count");
    if (!nval) return nval.error();
    if (*nval < 1 || static_cast<std::size_t>(*nval) > c.left() / 4)
      return Error::invalid(where + " (" + n + "): " + std::to_string(*nval) + " values do not fit the " +
                            std::to_string(c.left()) + " bytes left");
    auto raw = c.bytes(static_cast<std::size_t>(*nval) * 4, "values");
    if (!raw) return raw.error();
    std::vector<float> v(static_cast<std::size_t>(*nval));
    std::memcpy(v.data(), raw->data(), raw->size());
    // The file holds ncall x the mean (llama-imatrix's sums scaled to calls); llama-quantize divides.
    if (*ncall > 0)
      for (float& x : v) x /= static_cast<float>(*ncall);
    for (std::size_t i = 0; i < v.size(); ++i)
      if (!std::isfinite(v[i]) || v[i] < 0)
        return Error::invalid(where + " (" + n + "): value " + std::to_string(i) + " is " + std::to_string(v[i]) +
                              " (importances are means of squares)");
    if (!m.columns.emplace(n, std::move(v)).second) return Error::invalid(where + ": " + n + " appears twice");
    m.chunks = std::max(m.chunks, *ncall);
  }
  // Newer legacy files end with the chunk count and the dataset's name; older ones stop here.
  if (c.left() >= 8) {
    auto last = c.i32("chunk count");
    auto len = c.i32("dataset name length");
    if (!last || !len) return Error::invalid(path + ": importance matrix trailer is truncated");
    if (*len < 0 || static_cast<std::size_t>(*len) > c.left())
      return Error::invalid(path + ": importance matrix dataset name of " + std::to_string(*len) + " bytes does not fit");
    auto name = c.bytes(static_cast<std::size_t>(*len), "dataset name");
    if (!name) return name.error();
    m.dataset.assign(reinterpret_cast<const char*>(name->data()), name->size());
    m.chunks = std::max(m.chunks, *last);
  }
  if (c.left() != 0) return Error::invalid(path + ": " + std::to_string(c.left()) + " bytes after the importance matrix");
  return m;
}

Result<ImportanceMatrix> gguf_layout(std::span<const std::byte> bytes, const std::string& path) {
  auto g = parse_gguf(bytes, path);
  if (!g) return g.error();
  // Offsets are into `bytes` (parse_gguf checked that every tensor lies inside them).
  const auto data = [&](const TensorInfo& t) { return bytes.subspan(static_cast<std::size_t>(t.offset), t.nbytes); };
  ImportanceMatrix m;
  constexpr std::string_view kSums = ".in_sum2", kCounts = ".counts";
  std::map<std::string, const TensorInfo*> counts;
  for (const TensorInfo& t : g->tensors)
    if (t.name.size() > kCounts.size() && t.name.ends_with(kCounts)) counts[t.name.substr(0, t.name.size() - kCounts.size())] = &t;
  for (const TensorInfo& t : g->tensors) {
    if (!(t.name.size() > kSums.size() && t.name.ends_with(kSums))) continue;
    const std::string name = t.name.substr(0, t.name.size() - kSums.size());
    auto it = counts.find(name);
    if (it == counts.end()) return Error::invalid(path + ": " + t.name + " has no " + name + std::string(kCounts));
    const TensorInfo& n = *it->second;
    if (t.dtype != DType::F32 || n.dtype != DType::F32)
      return Error::invalid(path + ": " + name + ": importance sums and counts must be F32");
    const std::int64_t cols = t.shape.empty() ? 0 : t.shape.back();
    const std::int64_t mats = cols > 0 ? static_cast<std::int64_t>(t.numel()) / cols : 0;
    if (cols < 1 || static_cast<std::int64_t>(n.numel()) != mats)
      return Error::invalid(path + ": " + name + ": " + std::to_string(n.numel()) + " counts for " + std::to_string(mats) +
                            " matrices");
    std::vector<float> sums(static_cast<std::size_t>(t.numel())), cnt(static_cast<std::size_t>(n.numel()));
    std::memcpy(sums.data(), data(t).data(), sums.size() * 4);
    std::memcpy(cnt.data(), data(n).data(), cnt.size() * 4);
    for (std::size_t j = 0; j < cnt.size(); ++j)
      for (std::size_t i = 0; i < static_cast<std::size_t>(cols); ++i) {
        float& v = sums[j * static_cast<std::size_t>(cols) + i];
        if (cnt[j] > 0) v /= cnt[j];
        if (!std::isfinite(v) || v < 0)
          return Error::invalid(path + ": " + name + ": value " + std::to_string(i) + " is " + std::to_string(v));
      }
    m.columns.emplace(name, std::move(sums));
  }
  if (m.columns.empty()) return Error::invalid(path + ": a GGUF file without importance sums (<name>.in_sum2)");
  if (const auto* c = g->find("imatrix.chunk_count"))
    if (auto v = c->as_int()) m.chunks = static_cast<std::int32_t>(std::clamp<std::int64_t>(*v, 0, INT32_MAX));
  return m;
}

void put_i32(std::string& out, std::int32_t v) {
  char b[4];
  std::memcpy(b, &v, 4);
  out.append(b, 4);
}

}  // namespace

Result<ImportanceMatrix> parse_imatrix(std::span<const std::byte> bytes, const std::string& label) {
  return bytes.size() >= 4 && std::memcmp(bytes.data(), "GGUF", 4) == 0 ? gguf_layout(bytes, label) : read_legacy(bytes, label);
}

Result<ImportanceMatrix> read_imatrix(const std::string& path) {
  auto file = MappedFile::open(path);
  if (!file) return file.error();
  auto m = parse_imatrix((*file)->bytes(), path);
  if (m) m->file = path;
  return m;
}

Result<void> write_imatrix(const std::string& path, const ImportanceMatrix& m) {
  if (m.columns.empty()) return Error::invalid(path + ": an importance matrix with no entries");
  const std::int32_t ncall = std::max<std::int32_t>(1, m.chunks);
  std::string out;
  put_i32(out, static_cast<std::int32_t>(m.columns.size()));
  for (const auto& [name, v] : m.columns) {
    if (v.empty()) return Error::invalid(path + ": importance entry " + name + " has no values");
    put_i32(out, static_cast<std::int32_t>(name.size()));
    out += name;
    put_i32(out, ncall);
    put_i32(out, static_cast<std::int32_t>(v.size()));
    for (std::size_t i = 0; i < v.size(); ++i) {
      if (!std::isfinite(v[i]) || v[i] < 0)
        return Error::invalid(path + ": importance entry " + name + " value " + std::to_string(i) + " is " + std::to_string(v[i]));
      const float stored = v[i] * static_cast<float>(ncall);  // llama-quantize divides by ncall
      char b[4];
      std::memcpy(b, &stored, 4);
      out.append(b, 4);
    }
  }
  put_i32(out, ncall);
  put_i32(out, static_cast<std::int32_t>(m.dataset.size()));
  out += m.dataset;
  auto file = AtomicFile::create(path);
  if (!file) return file.error();
  if (auto r = file->write(out.data(), out.size()); !r) return r.error();
  return file->commit();
}

}  // namespace qs
