#pragma once
// Builds GGUF bytes for tests, including deliberately broken ones.
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

namespace qs::test {

class GgufBuilder {
 public:
  explicit GgufBuilder(std::uint32_t version = 3) { raw("GGUF"); u32(version); }
  GgufBuilder& counts(std::int64_t tensors, std::int64_t kvs) { i64(tensors); i64(kvs); return *this; }
  GgufBuilder& str(const std::string& s) { u64(s.size()); raw(s); return *this; }
  GgufBuilder& kv_u32(const std::string& k, std::uint32_t v) { str(k); u32(4); u32(v); return *this; }
  GgufBuilder& kv_str(const std::string& k, const std::string& v) { str(k); u32(8); str(v); return *this; }
  GgufBuilder& kv_f32(const std::string& k, float v) { str(k); u32(6); pod(v); return *this; }
  GgufBuilder& tensor(const std::string& name, std::vector<std::int64_t> ne, std::uint32_t type, std::uint64_t offset) {
    str(name);
    u32(static_cast<std::uint32_t>(ne.size()));
    for (auto d : ne) i64(d);
    u32(type);
    u64(offset);
    return *this;
  }
  GgufBuilder& align(std::size_t a = 32) { while (bytes_.size() % a) bytes_.push_back('\0'); return *this; }
  GgufBuilder& zeros(std::size_t n) { bytes_.append(n, '\0'); return *this; }
  GgufBuilder& raw(const std::string& s) { bytes_ += s; return *this; }
  GgufBuilder& u32(std::uint32_t v) { return pod(v); }
  GgufBuilder& u64(std::uint64_t v) { return pod(v); }
  GgufBuilder& i64(std::int64_t v) { return pod(v); }
  template <class T>
  GgufBuilder& pod(T v) {
    char b[sizeof(T)];
    std::memcpy(b, &v, sizeof(T));
    bytes_.append(b, sizeof(T));
    return *this;
  }
  const std::string& bytes() const { return bytes_; }

 private:
  std::string bytes_;
};

}  // namespace qs::test
