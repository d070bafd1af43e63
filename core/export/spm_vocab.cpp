#include "export/spm_vocab.h"

#include <cstring>

#include "util/read_text_file.h"

namespace qs {
namespace {

// Protobuf wire format: a key varint (field << 3 | wire type) before every
// value; wire type 0 varint, 1 fixed64, 2 length-delimited, 5 fixed32.
class Wire {
 public:
  Wire(std::span<const std::byte> b, const std::string& label) : b_(b), label_(label) {}
  bool done() const { return pos_ >= b_.size(); }

  Result<std::uint64_t> varint() {
    std::uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (pos_ >= b_.size()) return fail("a number runs past the end");
      const auto byte = static_cast<std::uint8_t>(b_[pos_++]);
      v |= static_cast<std::uint64_t>(byte & 0x7F) << shift;
      if (!(byte & 0x80)) return v;
    }
    return fail("a number is longer than 10 bytes");
  }
  Result<std::span<const std::byte>> bytes() {
    auto n = varint();
    if (!n) return n.error();
    if (*n > b_.size() - pos_) return fail("a field of " + std::to_string(*n) + " bytes runs past the end");
    auto out = b_.subspan(pos_, static_cast<std::size_t>(*n));
    pos_ += static_cast<std::size_t>(*n);
    return out;
  }
  Result<std::uint32_t> fixed32() {
    if (b_.size() - pos_ < 4) return fail("a 4-byte field runs past the end");
    std::uint32_t v;
    std::memcpy(&v, b_.data() + pos_, 4);
    pos_ += 4;
    return v;
  }
  // Skips one value of the given wire type.
  Result<void> skip(std::uint32_t wire_type) {
    switch (wire_type) {
      case 0: { auto v = varint(); if (!v) return v.error(); return {}; }
      case 1: if (b_.size() - pos_ < 8) return fail("an 8-byte field runs past the end"); pos_ += 8; return {};
      case 2: { auto v = bytes(); if (!v) return v.error(); return {}; }
      case 5: { auto v = fixed32(); if (!v) return v.error(); return {}; }
      default: return fail("unsupported protobuf wire type " + std::to_string(wire_type));
    }
  }
  Error fail(const std::string& what) const {
    return Error::format(label_ + ": not a SentencePiece model: " + what + " (byte " + std::to_string(pos_) + ")");
  }

 private:
  std::span<const std::byte> b_;
  const std::string& label_;
  std::size_t pos_ = 0;
};

Result<SpmPiece> parse_piece(std::span<const std::byte> bytes, const std::string& label) {
  Wire w(bytes, label);
  SpmPiece p;
  while (!w.done()) {
    auto key = w.varint();
    if (!key) return key.error();
    const auto field = *key >> 3;
    const auto type = static_cast<std::uint32_t>(*key & 7);
    if (field == 1 && type == 2) {
      auto s = w.bytes();
      if (!s) return s.error();
      p.piece.assign(reinterpret_cast<const char*>(s->data()), s->size());
    } else if (field == 2 && type == 5) {
      auto v = w.fixed32();
      if (!v) return v.error();
      std::memcpy(&p.score, &*v, 4);
    } else if (field == 3 && type == 0) {
      auto v = w.varint();
      if (!v) return v.error();
      if (*v < 1 || *v > 6) return w.fail("piece type " + std::to_string(*v) + " is not 1..6");
      p.type = static_cast<SpmPieceType>(*v);
    } else if (auto r = w.skip(type); !r) {
      return r.error();
    }
  }
  return p;
}

}  // namespace

Result<std::vector<SpmPiece>> parse_spm_vocab(std::span<const std::byte> bytes, const std::string& label) {
  Wire w(bytes, label);
  std::vector<SpmPiece> pieces;
  while (!w.done()) {
    auto key = w.varint();
    if (!key) return key.error();
    const auto field = *key >> 3;
    const auto type = static_cast<std::uint32_t>(*key & 7);
    if (field == 1 && type == 2) {  // repeated SentencePiece pieces = 1
      auto sub = w.bytes();
      if (!sub) return sub.error();
      auto p = parse_piece(*sub, label);
      if (!p) return p.error();
      pieces.push_back(std::move(*p));
    } else if (auto r = w.skip(type); !r) {
      return r.error();
    }
  }
  if (pieces.empty()) return Error::format(label + ": not a SentencePiece model: no pieces");
  return pieces;
}

Result<SpmNormalizerSpec> parse_spm_normalizer_spec(std::span<const std::byte> bytes, const std::string& label) {
  Wire w(bytes, label);
  SpmNormalizerSpec spec;
  while (!w.done()) {
    auto key = w.varint();
    if (!key) return key.error();
    const auto type = static_cast<std::uint32_t>(*key & 7);
    if ((*key >> 3) != 3 || type != 2) {  // normalizer_spec = 3
      if (auto r = w.skip(type); !r) return r.error();
      continue;
    }
    auto sub = w.bytes();
    if (!sub) return sub.error();
    Wire n(*sub, label);
    while (!n.done()) {
      auto k = n.varint();
      if (!k) return k.error();
      const auto field = *k >> 3;
      const auto t = static_cast<std::uint32_t>(*k & 7);
      if ((field == 1 || field == 2) && t == 2) {  // name, precompiled_charsmap
        auto v = n.bytes();
        if (!v) return v.error();
        if (field == 1) spec.name.assign(reinterpret_cast<const char*>(v->data()), v->size());
        else spec.has_charsmap = !v->empty();
      } else if ((field == 3 || field == 4) && t == 0) {  // add_dummy_prefix, remove_extra_whitespaces
        auto v = n.varint();
        if (!v) return v.error();
        (field == 3 ? spec.add_dummy_prefix : spec.remove_extra_whitespaces) = *v != 0;
      } else if (auto r = n.skip(t); !r) {
        return r.error();
      }
    }
  }
  return spec;
}

Result<std::vector<SpmPiece>> read_spm_vocab(const std::string& path) {
  auto text = read_text_file(path, std::size_t{64} << 20);  // real models: < 5 MiB
  if (!text) return text.error();
  return parse_spm_vocab(std::as_bytes(std::span(text->data(), text->size())), path);
}

}  // namespace qs
