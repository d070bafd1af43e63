#include "io/gguf.h"

#include <cstring>
#include <set>

#include "util/checked_math.h"

namespace qs {
namespace {

std::uint64_t scalar_size(GgufType t) {
  switch (t) {
    case GgufType::U8: case GgufType::I8: case GgufType::BOOL: return 1;
    case GgufType::U16: case GgufType::I16: return 2;
    case GgufType::U32: case GgufType::I32: case GgufType::F32: return 4;
    case GgufType::U64: case GgufType::I64: case GgufType::F64: return 8;
    default: return 0;  // STRING, ARRAY: variable
  }
}

// A bounds-checked cursor over the file. Every read says what it was reading
// so that a truncated file names the place.
class Reader {
 public:
  Reader(std::span<const std::byte> b, const std::string& label) : b_(b), label_(label) {}
  std::uint64_t pos() const { return pos_; }
  std::uint64_t remaining() const { return b_.size() - pos_; }
  std::string error;  // first failure

  template <class T>
  bool read(T& out, const std::string& what) {
    if (remaining() < sizeof(T)) return fail("truncated while reading " + what + " at byte " + std::to_string(pos_));
    std::memcpy(&out, b_.data() + pos_, sizeof(T));
    pos_ += sizeof(T);
    return true;
  }
  bool read_string(std::string_view& out, const std::string& what) {
    std::uint64_t n = 0;
    if (!read(n, what + " length")) return false;
    if (n > kGgufMaxStringLength) return fail(what + ": string length " + std::to_string(n) + " exceeds 1 GiB");
    if (n > remaining()) return fail(what + ": string of " + std::to_string(n) + " bytes runs past the end of the file");
    out = {reinterpret_cast<const char*>(b_.data() + pos_), static_cast<std::size_t>(n)};
    pos_ += n;
    return true;
  }
  bool skip(std::uint64_t n, std::span<const std::byte>& out) {
    if (n > remaining()) return false;
    out = b_.subspan(pos_, n);
    pos_ += n;
    return true;
  }
  bool fail(std::string m) {
    if (error.empty()) error = label_ + ": " + std::move(m);
    return false;
  }

 private:
  std::span<const std::byte> b_;
  const std::string& label_;
  std::uint64_t pos_ = 0;
};

bool read_value(Reader& r, GgufType type, GgufValue& out, const std::string& where) {
  out.type = type;
  switch (type) {
    case GgufType::U8: { std::uint8_t v; if (!r.read(v, where)) return false; out.v = std::uint64_t{v}; return true; }
    case GgufType::U16: { std::uint16_t v; if (!r.read(v, where)) return false; out.v = std::uint64_t{v}; return true; }
    case GgufType::U32: { std::uint32_t v; if (!r.read(v, where)) return false; out.v = std::uint64_t{v}; return true; }
    case GgufType::U64: { std::uint64_t v; if (!r.read(v, where)) return false; out.v = v; return true; }
    case GgufType::I8: { std::int8_t v; if (!r.read(v, where)) return false; out.v = std::int64_t{v}; return true; }
    case GgufType::I16: { std::int16_t v; if (!r.read(v, where)) return false; out.v = std::int64_t{v}; return true; }
    case GgufType::I32: { std::int32_t v; if (!r.read(v, where)) return false; out.v = std::int64_t{v}; return true; }
    case GgufType::I64: { std::int64_t v; if (!r.read(v, where)) return false; out.v = v; return true; }
    case GgufType::F32: { float v; if (!r.read(v, where)) return false; out.v = double{v}; return true; }
    case GgufType::F64: { double v; if (!r.read(v, where)) return false; out.v = v; return true; }
    case GgufType::BOOL: { std::uint8_t v; if (!r.read(v, where)) return false; out.v = v != 0; return true; }
    case GgufType::STRING: {
      std::string_view s;
      if (!r.read_string(s, where)) return false;
      out.v = std::string(s);
      return true;
    }
    case GgufType::ARRAY: {
      std::uint32_t et;
      std::uint64_t count;
      if (!r.read(et, where + " array type") || !r.read(count, where + " array length")) return false;
      if (et == static_cast<std::uint32_t>(GgufType::ARRAY)) return r.fail(where + ": nested arrays are not supported");
      if (et > static_cast<std::uint32_t>(GgufType::F64)) return r.fail(where + ": unknown array element type " + std::to_string(et));
      if (count > kGgufMaxArrayCount) return r.fail(where + ": array of " + std::to_string(count) + " elements exceeds 2^30");
      GgufArray a;
      a.elem = static_cast<GgufType>(et);
      a.count = count;
      if (a.elem == GgufType::STRING) {
        // Each string takes at least its 8-byte length: bound the count before reserving.
        if (count > r.remaining() / 8) return r.fail(where + ": array of " + std::to_string(count) + " strings runs past the end of the file");
        a.strings.reserve(static_cast<std::size_t>(count));
        for (std::uint64_t i = 0; i < count; ++i) {
          std::string_view s;
          if (!r.read_string(s, where + "[" + std::to_string(i) + "]")) return false;
          a.strings.push_back(s);
        }
      } else {
        const std::uint64_t bytes = count * scalar_size(a.elem);  // count <= 2^30: no overflow
        if (!r.skip(bytes, a.raw)) return r.fail(where + ": array of " + std::to_string(count) + " elements runs past the end of the file");
      }
      out.v = std::move(a);
      return true;
    }
  }
  return r.fail(where + ": unknown value type " + std::to_string(static_cast<std::uint32_t>(type)));
}

std::uint64_t align_up(std::uint64_t x, std::uint64_t a) { return (x + a - 1) / a * a; }

}  // namespace

std::string_view gguf_type_name(GgufType t) {
  static constexpr std::string_view names[] = {"UINT8", "INT8", "UINT16", "INT16", "UINT32", "INT32", "FLOAT32",
                                               "BOOL", "STRING", "ARRAY", "UINT64", "INT64", "FLOAT64"};
  const auto i = static_cast<std::uint32_t>(t);
  return i < 13 ? names[i] : "?";
}

std::optional<double> GgufArray::number(std::uint64_t i) const {
  if (i >= count || elem == GgufType::STRING) return std::nullopt;
  const std::byte* p = raw.data() + i * scalar_size(elem);
  auto get = [&](auto v) { std::memcpy(&v, p, sizeof v); return static_cast<double>(v); };
  switch (elem) {
    case GgufType::U8: case GgufType::BOOL: return get(std::uint8_t{});
    case GgufType::I8: return get(std::int8_t{});
    case GgufType::U16: return get(std::uint16_t{});
    case GgufType::I16: return get(std::int16_t{});
    case GgufType::U32: return get(std::uint32_t{});
    case GgufType::I32: return get(std::int32_t{});
    case GgufType::F32: return get(float{});
    case GgufType::U64: return get(std::uint64_t{});
    case GgufType::I64: return get(std::int64_t{});
    case GgufType::F64: return get(double{});
    default: return std::nullopt;
  }
}

std::optional<std::int64_t> GgufValue::as_int() const {
  if (auto u = std::get_if<std::uint64_t>(&v)) {
    if (*u > static_cast<std::uint64_t>(INT64_MAX)) return std::nullopt;
    return static_cast<std::int64_t>(*u);
  }
  if (auto i = std::get_if<std::int64_t>(&v)) return *i;
  return std::nullopt;
}

std::optional<double> GgufValue::as_number() const {
  if (auto i = as_int()) return static_cast<double>(*i);
  if (auto d = std::get_if<double>(&v)) return *d;
  return std::nullopt;
}

std::string GgufValue::to_display_string(std::size_t max_items) const {
  if (auto s = as_string()) {
    std::string out(1, '"');  // (appending, not "\"" + s: GCC 12 raises a false -Wrestrict there)
    out += s->size() > 80 ? s->substr(0, 77) + "..." : *s;
    return out += '"';
  }
  if (auto b = std::get_if<bool>(&v)) return *b ? "true" : "false";
  if (auto d = std::get_if<double>(&v)) return std::to_string(*d);
  if (auto i = as_int()) return std::to_string(*i);
  if (auto u = std::get_if<std::uint64_t>(&v)) return std::to_string(*u);
  if (auto a = as_array()) {
    std::string out = std::string(gguf_type_name(a->elem)) + "[" + std::to_string(a->count) + "] {";
    for (std::uint64_t i = 0; i < a->count && i < max_items; ++i) {
      if (i) out += ", ";
      if (a->elem == GgufType::STRING) {
        out += '"';
        out += a->strings[i].substr(0, 24);
        out += '"';
      } else {
        out += std::to_string(*a->number(i));
      }
    }
    return out + (a->count > max_items ? ", ...}" : "}");
  }
  return "?";
}

const GgufValue* GgufFile::find(std::string_view key) const {
  for (const auto& [k, val] : metadata)
    if (k == key) return &val;
  return nullptr;
}

Result<GgufFile> parse_gguf(std::span<const std::byte> bytes, const std::string& label) {
  Reader r(bytes, label);
  auto fail = [&]() -> Error { return Error::format(r.error); };
  if (bytes.empty()) return Error::format(label + ": file is empty");
  char magic[4];
  if (!r.read(magic, "the magic number")) return fail();
  if (std::memcmp(magic, "GGUF", 4) != 0) return Error::format(label + ": not a GGUF file (bad magic number)");
  GgufFile g;
  if (!r.read(g.version, "the version")) return fail();
  if ((g.version & 0xFFFF) == 0)
    return Error::format(label + ": GGUF version " + std::to_string(g.version) + " looks byte-swapped (big-endian file?)");
  if (g.version == 1) return Error::unsupported(label + ": GGUF version 1 is obsolete and not supported");
  if (g.version > 3) return Error::unsupported(label + ": GGUF version " + std::to_string(g.version) + " is newer than this reader (2, 3)");
  std::int64_t n_tensors, n_kv;
  if (!r.read(n_tensors, "the tensor count") || !r.read(n_kv, "the metadata count")) return fail();
  // Each tensor info takes at least 8+4+8+4+8 bytes, each key/value at least 8+4+1.
  if (n_tensors < 0 || static_cast<std::uint64_t>(n_tensors) > r.remaining() / 32)
    return Error::format(label + ": tensor count " + std::to_string(n_tensors) + " is impossible for a file of " + std::to_string(bytes.size()) + " bytes");
  if (n_kv < 0 || static_cast<std::uint64_t>(n_kv) > r.remaining() / 13)
    return Error::format(label + ": metadata count " + std::to_string(n_kv) + " is impossible for a file of " + std::to_string(bytes.size()) + " bytes");

  std::set<std::string_view> keys;
  g.metadata.reserve(static_cast<std::size_t>(n_kv));
  for (std::int64_t i = 0; i < n_kv; ++i) {
    std::string_view key;
    if (!r.read_string(key, "metadata key #" + std::to_string(i))) return fail();
    if (key.empty()) return Error::format(label + ": metadata key #" + std::to_string(i) + " is empty");
    if (!keys.insert(key).second) return Error::format(label + ": duplicate metadata key \"" + std::string(key) + "\"");
    std::uint32_t type;
    const std::string where = "metadata \"" + std::string(key) + "\"";
    if (!r.read(type, where + " type")) return fail();
    if (type > static_cast<std::uint32_t>(GgufType::F64)) return Error::format(label + ": " + where + " has unknown type " + std::to_string(type));
    GgufValue v;
    if (!read_value(r, static_cast<GgufType>(type), v, where)) return fail();
    g.metadata.emplace_back(std::string(key), std::move(v));
  }
  if (const GgufValue* a = g.find("general.alignment")) {
    const auto* u = std::get_if<std::uint64_t>(&a->v);
    if (a->type != GgufType::U32 || !u || *u == 0 || (*u & (*u - 1)) != 0)
      return Error::format(label + ": general.alignment must be a UINT32 power of two, got " + std::string(gguf_type_name(a->type)) + " " + a->to_display_string());
    g.alignment = *u;
  }

  struct Info { std::uint64_t offset, nbytes; };
  std::vector<Info> infos;
  std::set<std::string_view> names;
  g.tensors.reserve(static_cast<std::size_t>(n_tensors));
  for (std::int64_t i = 0; i < n_tensors; ++i) {
    std::string_view name;
    if (!r.read_string(name, "tensor #" + std::to_string(i) + " name")) return fail();
    const std::string t = "tensor \"" + std::string(name) + "\"";
    if (name.size() > kGgufMaxTensorName) return Error::format(label + ": " + t + ": name longer than 63 bytes");
    if (!names.insert(name).second) return Error::format(label + ": duplicate " + t);
    std::uint32_t n_dims;
    if (!r.read(n_dims, t + " dimension count")) return fail();
    if (n_dims > kGgufMaxDims) return Error::format(label + ": " + t + " has " + std::to_string(n_dims) + " dimensions (at most 4)");
    std::int64_t ne[kGgufMaxDims] = {1, 1, 1, 1};
    std::uint64_t numel = 1;
    for (std::uint32_t d = 0; d < n_dims; ++d) {
      if (!r.read(ne[d], t + " dimensions")) return fail();
      if (ne[d] < 0) return Error::format(label + ": " + t + " has a negative dimension " + std::to_string(ne[d]));
      if (!checked_mul(numel, static_cast<std::uint64_t>(ne[d]), numel) || numel > static_cast<std::uint64_t>(INT64_MAX))
        return Error::format(label + ": " + t + ": element count overflows");
    }
    std::uint32_t type_id;
    std::uint64_t offset;
    if (!r.read(type_id, t + " type") || !r.read(offset, t + " offset")) return fail();
    const auto dtype = dtype_from_ggml(type_id);
    if (!dtype) return Error::format(label + ": " + t + " has invalid ggml type id " + std::to_string(type_id));
    const unsigned blk = dtype_block_elems(*dtype);
    if (ne[0] % blk != 0)
      return Error::format(label + ": " + t + ": row length " + std::to_string(ne[0]) + " is not a multiple of the " +
                           std::string(dtype_name(*dtype)) + " block size " + std::to_string(blk));
    const auto nbytes = dtype_bytes(*dtype, numel);
    if (!nbytes) return Error::format(label + ": " + t + ": byte size overflows");
    TensorInfo ti;
    ti.name = std::string(name);
    ti.dtype = *dtype;
    // ggml's ne[0] is the fastest axis: our (PyTorch) shape is the reverse.
    for (std::uint32_t d = n_dims; d-- > 0;) ti.shape.push_back(ne[d]);
    ti.nbytes = *nbytes;
    g.tensors.push_back(std::move(ti));
    infos.push_back({offset, *nbytes});
  }

  g.data_start = align_up(r.pos(), g.alignment);
  std::uint64_t expect = 0;
  for (std::size_t i = 0; i < infos.size(); ++i) {
    const auto& t = g.tensors[i];
    if (infos[i].offset != expect)
      return Error::format(label + ": tensor \"" + t.name + "\" has data offset " + std::to_string(infos[i].offset) +
                           ", expected " + std::to_string(expect) + " (offsets must follow the tensor order, aligned to " +
                           std::to_string(g.alignment) + ")");
    std::uint64_t end;
    if (!checked_add(g.data_start + infos[i].offset, infos[i].nbytes, end) || end > bytes.size())
      return Error::format(label + ": tensor \"" + t.name + "\" data (" + std::to_string(infos[i].nbytes) +
                           " bytes at data offset " + std::to_string(infos[i].offset) + ") runs past the end of the file (" +
                           std::to_string(bytes.size()) + " bytes): truncated?");
    g.tensors[i].offset = g.data_start + infos[i].offset;
    if (!checked_add(expect, align_up(infos[i].nbytes, g.alignment), expect))
      return Error::format(label + ": tensor offsets overflow");
  }
  return g;
}

Result<GgufFile> read_gguf(const std::string& path) {
  auto mapped = MappedFile::open(path);
  if (!mapped) return mapped.error();
  auto g = parse_gguf((*mapped)->bytes(), path);
  if (!g) return g.error();
  g->file = *mapped;
  for (auto& t : g->tensors) t.file = *mapped;
  return g;
}

}  // namespace qs
