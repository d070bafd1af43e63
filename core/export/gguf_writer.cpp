#include "export/gguf_writer.h"

#include <algorithm>
#include <array>
#include <cstring>

#include "util/atomic_file.h"

namespace qs {
namespace {

// Little-endian serialisation into a growing buffer (GGUF is little-endian;
// so is every machine this builds for, which a static_assert in gguf.cpp checks).
class Out {
 public:
  template <typename T>
  void put(T v) {
    char b[sizeof(T)];
    std::memcpy(b, &v, sizeof(T));
    s_.append(b, sizeof(T));
  }
  void put_string(std::string_view v) {
    put<std::uint64_t>(v.size());
    s_.append(v.data(), v.size());
  }
  void put_bytes(std::span<const std::byte> b) { s_.append(reinterpret_cast<const char*>(b.data()), b.size()); }
  std::string& str() { return s_; }

 private:
  std::string s_;
};

std::uint64_t pad_to(std::uint64_t n, std::uint64_t alignment) { return (n + alignment - 1) / alignment * alignment; }

Result<void> put_scalar(Out& o, GgufType t, const GgufValue& v, const std::string& key) {
  auto bad = [&] { return Error::invalid("GGUF metadata " + key + ": value does not match its type " + std::string(gguf_type_name(t))); };
  const auto* u = std::get_if<std::uint64_t>(&v.v);
  const auto* i = std::get_if<std::int64_t>(&v.v);
  const auto* d = std::get_if<double>(&v.v);
  switch (t) {
    case GgufType::U8: if (!u) return bad(); o.put(static_cast<std::uint8_t>(*u)); return {};
    case GgufType::U16: if (!u) return bad(); o.put(static_cast<std::uint16_t>(*u)); return {};
    case GgufType::U32: if (!u) return bad(); o.put(static_cast<std::uint32_t>(*u)); return {};
    case GgufType::U64: if (!u) return bad(); o.put(*u); return {};
    case GgufType::I8: if (!i) return bad(); o.put(static_cast<std::int8_t>(*i)); return {};
    case GgufType::I16: if (!i) return bad(); o.put(static_cast<std::int16_t>(*i)); return {};
    case GgufType::I32: if (!i) return bad(); o.put(static_cast<std::int32_t>(*i)); return {};
    case GgufType::I64: if (!i) return bad(); o.put(*i); return {};
    case GgufType::F32: if (!d) return bad(); o.put(static_cast<float>(*d)); return {};
    case GgufType::F64: if (!d) return bad(); o.put(*d); return {};
    case GgufType::BOOL: {
      const auto* b = std::get_if<bool>(&v.v);
      if (!b) return bad();
      o.put(static_cast<std::uint8_t>(*b ? 1 : 0));
      return {};
    }
    case GgufType::STRING: {
      const auto* s = v.as_string();
      if (!s) return bad();
      o.put_string(*s);
      return {};
    }
    case GgufType::ARRAY: break;
  }
  return bad();
}

Result<void> put_value(Out& o, const std::string& key, const GgufValue& v) {
  o.put(static_cast<std::uint32_t>(v.type));
  if (v.type != GgufType::ARRAY) return put_scalar(o, v.type, v, key);
  const GgufArray* a = v.as_array();
  if (!a) return Error::invalid("GGUF metadata " + key + ": array type without an array");
  o.put(static_cast<std::uint32_t>(a->elem));
  o.put(a->count);
  if (a->elem == GgufType::STRING) {
    if (a->strings.size() != a->count) return Error::invalid("GGUF metadata " + key + ": string array count mismatch");
    for (std::string_view s : a->strings) o.put_string(s);
  } else {
    o.put_bytes(a->raw);  // numeric elements, little-endian as read
  }
  return {};
}

}  // namespace

void GgufWriter::set(std::string key, GgufValue value) {
  remove(key);
  metadata_.emplace_back(std::move(key), std::move(value));
}

void GgufWriter::set_u32(std::string key, std::uint32_t v) {
  GgufValue value;
  value.type = GgufType::U32;
  value.v = std::uint64_t{v};
  set(std::move(key), std::move(value));
}

void GgufWriter::set_i32(std::string key, std::int32_t v) {
  GgufValue value;
  value.type = GgufType::I32;
  value.v = std::int64_t{v};
  set(std::move(key), std::move(value));
}

void GgufWriter::set_string(std::string key, std::string v) {
  GgufValue value;
  value.type = GgufType::STRING;
  value.v = std::move(v);
  set(std::move(key), std::move(value));
}

void GgufWriter::remove(std::string_view key) {
  std::erase_if(metadata_, [&](const auto& kv) { return kv.first == key; });
}

const GgufValue* GgufWriter::find(std::string_view key) const {
  for (const auto& [k, v] : metadata_)
    if (k == key) return &v;
  return nullptr;
}

Result<void> GgufWriter::add_tensor(std::string name, std::vector<std::int64_t> shape, DType dtype) {
  const std::string what = "GGUF tensor " + name;
  if (name.empty() || name.size() > kGgufMaxTensorName)
    return Error::invalid(what + ": names must be 1.." + std::to_string(kGgufMaxTensorName) + " bytes");
  if (shape.empty() || shape.size() > kGgufMaxDims) return Error::invalid(what + ": 1 to 4 dimensions");
  if (!dtype_ggml_id(dtype)) return Error::invalid(what + ": " + std::string(dtype_name(dtype)) + " has no ggml type");
  std::uint64_t count = 1;
  for (auto d : shape) {
    if (d <= 0) return Error::invalid(what + ": dimensions must be positive");
    if (__builtin_mul_overflow(count, static_cast<std::uint64_t>(d), &count)) return Error::invalid(what + ": too many elements");
  }
  if (shape.back() % dtype_block_elems(dtype) != 0)
    return Error::invalid(what + ": rows of " + std::to_string(shape.back()) + " are not whole " +
                          std::string(dtype_name(dtype)) + " blocks of " + std::to_string(dtype_block_elems(dtype)));
  const auto nbytes = dtype_bytes(dtype, count);
  if (!nbytes) return Error::invalid(what + ": size overflows");
  if (std::any_of(tensors_.begin(), tensors_.end(), [&](const auto& t) { return t.name == name; }))
    return Error::invalid(what + ": duplicate name");
  GgufTensorLayout t{std::move(name), std::move(shape), dtype, data_bytes_, *nbytes};
  data_bytes_ += pad_to(*nbytes, alignment_);
  tensors_.push_back(std::move(t));
  return {};
}

Result<std::string> GgufWriter::header() const {
  Out o;
  o.put<std::uint32_t>(0x46554747u);  // "GGUF"
  o.put<std::uint32_t>(3);
  o.put<std::uint64_t>(tensors_.size());
  o.put<std::uint64_t>(metadata_.size());
  for (const auto& [key, value] : metadata_) {
    o.put_string(key);
    if (auto r = put_value(o, key, value); !r) return r.error();
  }
  for (const auto& t : tensors_) {
    o.put_string(t.name);
    o.put<std::uint32_t>(static_cast<std::uint32_t>(t.shape.size()));
    for (auto it = t.shape.rbegin(); it != t.shape.rend(); ++it) o.put<std::uint64_t>(static_cast<std::uint64_t>(*it));
    o.put<std::uint32_t>(*dtype_ggml_id(t.dtype));
    o.put<std::uint64_t>(t.offset);
  }
  o.str().resize(pad_to(o.str().size(), alignment_), '\0');
  return std::move(o.str());
}

Result<void> GgufWriter::write_tensor(AtomicFile& out, const GgufTensorLayout& t, std::span<const std::byte> bytes,
                                      std::uint64_t alignment) {
  if (bytes.size() != t.nbytes)
    return Error::invalid("GGUF tensor " + t.name + ": " + std::to_string(bytes.size()) + " bytes given, " +
                          std::to_string(t.nbytes) + " expected");
  if (auto r = out.write(bytes.data(), bytes.size()); !r) return r;
  static constexpr std::array<char, 256> kZeros{};
  std::uint64_t pad = pad_to(t.nbytes, alignment) - t.nbytes;
  while (pad > 0) {
    const std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(pad, kZeros.size()));
    if (auto r = out.write(kZeros.data(), n); !r) return r;
    pad -= n;
  }
  return {};
}

}  // namespace qs
