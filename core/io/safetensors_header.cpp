// Header parsing with nlohmann's SAX interface: we build our own structures as
// tokens arrive and stop at the first unexpected one, so memory stays O(header)
// and a hostile header (deep nesting, huge arrays) costs nothing extra.
#include <algorithm>
#include <cstring>
#include <nlohmann/json.hpp>
#include <set>

#include "io/safetensors.h"
#include "util/checked_math.h"

namespace qs {
namespace {

using json = nlohmann::json;

class HeaderSax : public nlohmann::json_sax<json> {
 public:
  std::vector<SafetensorsEntry> entries;
  std::map<std::string, std::string> metadata;
  std::string error;  // set when we reject the header's structure
  // Which fields each entry had, to report missing ones.
  std::vector<unsigned> seen_fields;

  bool null() override { return scalar("null"); }
  bool boolean(bool) override { return scalar("a boolean"); }
  bool number_integer(number_integer_t v) override {
    if (v < 0) return fail(where() + ": negative number " + std::to_string(v));
    return number(static_cast<std::uint64_t>(v));
  }
  bool number_unsigned(number_unsigned_t v) override { return number(v); }
  bool number_float(number_float_t, const string_t& s) override {
    return fail(where() + ": expected an integer, got " + s);
  }
  bool binary(binary_t&) override { return scalar("binary"); }

  bool string(string_t& s) override {
    if (state_ == State::Metadata) {
      if (!metadata.emplace(key_, s).second) return fail("__metadata__: duplicate key \"" + key_ + "\"");
      return true;
    }
    if (state_ == State::Entry && field_ == Field::DType) {
      auto t = dtype_from_safetensors(s);
      if (!t) return fail("tensor \"" + entries.back().name + "\": unknown dtype \"" + s + "\"");
      entries.back().dtype = *t;
      mark(Field::DType);
      return true;
    }
    return scalar("a string");
  }

  bool start_object(std::size_t) override {
    switch (state_) {
      case State::Start: state_ = State::Top; return true;
      case State::TopValue:
        if (key_ == "__metadata__") { state_ = State::Metadata; return true; }
        state_ = State::Entry;
        entries.push_back({});
        entries.back().name = key_;
        seen_fields.push_back(0);
        return true;
      case State::Metadata:
        return fail("__metadata__: value of \"" + key_ + "\" must be a string, got an object");
      default:
        return fail(where() + ": unexpected object");
    }
  }

  bool key(string_t& k) override {
    if (state_ == State::Top) {
      if (k != "__metadata__" && !names_.insert(k).second) return fail("duplicate tensor name \"" + k + "\"");
      key_ = k;
      state_ = State::TopValue;
      return true;
    }
    if (state_ == State::Metadata) { key_ = k; return true; }
    if (state_ == State::Entry) {
      if (k == "dtype") field_ = Field::DType;
      else if (k == "shape") field_ = Field::Shape;
      else if (k == "data_offsets") field_ = Field::Offsets;
      else return fail("tensor \"" + entries.back().name + "\": unexpected field \"" + k + "\"");
      if (seen_fields.back() & bit(field_)) return fail("tensor \"" + entries.back().name + "\": field \"" + k + "\" given twice");
      return true;
    }
    return fail(where() + ": unexpected key");
  }

  bool end_object() override {
    if (state_ == State::Entry || state_ == State::Metadata) { state_ = State::Top; return true; }
    if (state_ == State::Top) { state_ = State::Done; return true; }
    return fail(where() + ": unexpected end of object");
  }

  bool start_array(std::size_t) override {
    if (state_ == State::Entry && (field_ == Field::Shape || field_ == Field::Offsets)) {
      state_ = State::Array;
      count_ = 0;
      return true;
    }
    if (state_ == State::Start) return fail("header must be a JSON object, got an array");
    if (state_ == State::TopValue) return fail("tensor \"" + key_ + "\": expected an object, got an array");
    return fail(where() + ": unexpected array");
  }

  bool end_array() override {
    if (state_ != State::Array) return fail(where() + ": unexpected end of array");
    state_ = State::Entry;
    if (field_ == Field::Offsets && count_ != 2)
      return fail("tensor \"" + entries.back().name + "\": data_offsets must have 2 numbers, has " + std::to_string(count_));
    mark(field_);
    return true;
  }

  bool parse_error(std::size_t pos, const std::string&, const nlohmann::detail::exception& ex) override {
    if (error.empty()) {
      std::string what = ex.what();
      // nlohmann prefixes "[json.exception.parse_error.101] parse error at line 1, column N: "
      if (auto p = what.find("parse error"); p != std::string::npos) what = what.substr(p);
      error = "header is not valid JSON (byte " + std::to_string(pos) + "): " + what;
    }
    return false;
  }

  bool finished() const { return state_ == State::Done; }
  static constexpr unsigned bit(int f) { return 1u << f; }

 private:
  enum class State { Start, Top, TopValue, Entry, Array, Metadata, Done };
  enum Field { DType = 0, Shape = 1, Offsets = 2 };
  State state_ = State::Start;
  Field field_ = Field::DType;
  std::string key_;
  std::size_t count_ = 0;
  std::set<std::string> names_;

  bool fail(std::string msg) {
    if (error.empty()) error = std::move(msg);
    return false;
  }
  void mark(Field f) { seen_fields.back() |= bit(f); }
  std::string where() const {
    if (state_ == State::Start) return "header";
    if (!entries.empty() && (state_ == State::Entry || state_ == State::Array))
      return "tensor \"" + entries.back().name + "\"";
    if (state_ == State::TopValue) return "tensor \"" + key_ + "\"";
    if (state_ == State::Metadata) return "__metadata__";
    return "header";
  }
  bool scalar(const char* what) {
    if (state_ == State::Start) return fail(std::string("header must be a JSON object, got ") + what);
    if (state_ == State::TopValue && key_ == "__metadata__") return fail(std::string("__metadata__ must be an object, got ") + what);
    if (state_ == State::TopValue) return fail("tensor \"" + key_ + "\": expected an object, got " + what);
    if (state_ == State::Metadata) return fail("__metadata__: value of \"" + key_ + "\" must be a string, got " + what);
    if (state_ == State::Entry) {
      static const char* names[] = {"dtype", "shape", "data_offsets"};
      return fail("tensor \"" + entries.back().name + "\": field \"" + names[field_] + "\" has the wrong type (" + what + ")");
    }
    return fail(where() + ": unexpected " + what);
  }
  bool number(std::uint64_t v) {
    if (state_ != State::Array) return scalar("a number");
    auto& e = entries.back();
    if (field_ == Field::Shape) {
      if (count_ >= kSafetensorsMaxDims)
        return fail("tensor \"" + e.name + "\": more than " + std::to_string(kSafetensorsMaxDims) + " dimensions");
      if (v > static_cast<std::uint64_t>(INT64_MAX)) return fail("tensor \"" + e.name + "\": dimension too large");
      e.shape.push_back(static_cast<std::int64_t>(v));
    } else {
      if (count_ >= 2) return fail("tensor \"" + e.name + "\": data_offsets must have 2 numbers");
      (count_ == 0 ? e.begin : e.end) = v;
    }
    ++count_;
    return true;
  }
};

}  // namespace

Result<SafetensorsHeader> parse_safetensors_header(std::span<const std::byte> file, const std::string& label) {
  const std::uint64_t size = file.size();
  auto err = [&](const std::string& m) { return Error::format(label + ": " + m); };
  if (size == 0) return err("file is empty");
  if (size < 8) return err("file is " + std::to_string(size) + " bytes, too short for a safetensors header (8-byte length + JSON)");
  std::uint64_t n = 0;
  std::memcpy(&n, file.data(), 8);  // little-endian on every platform we build for
  if (n > kSafetensorsMaxHeader)
    return err("header length " + std::to_string(n) + " exceeds the 100,000,000-byte limit (not a safetensors file?)");
  if (n > size - 8)
    return err("header length " + std::to_string(n) + " runs past the end of the file (" + std::to_string(size) + " bytes): truncated or not safetensors");

  const char* begin = reinterpret_cast<const char*>(file.data() + 8);
  // nlohmann's lexer takes a NUL byte for the end of input; the reference reader rejects it.
  if (const void* nul = std::memchr(begin, 0, n))
    return err("header is not valid JSON: NUL byte at header offset " +
               std::to_string(static_cast<const char*>(nul) - begin));
  HeaderSax sax;
  const bool ok = json::sax_parse(begin, begin + n, &sax, json::input_format_t::json, /*strict=*/true);
  if (!ok || !sax.finished()) return err(sax.error.empty() ? "header is not a complete JSON object" : sax.error);

  SafetensorsHeader h;
  h.data_start = 8 + n;
  h.metadata = std::move(sax.metadata);
  h.entries = std::move(sax.entries);
  const std::uint64_t data_size = size - h.data_start;

  static const char* kFieldNames[] = {"dtype", "shape", "data_offsets"};
  for (std::size_t i = 0; i < h.entries.size(); ++i) {
    const auto& e = h.entries[i];
    const std::string t = "tensor \"" + e.name + "\": ";
    for (int f = 0; f < 3; ++f)
      if (!(sax.seen_fields[i] & HeaderSax::bit(f))) return err(t + "missing field \"" + kFieldNames[f] + "\"");
    std::uint64_t numel = 1;
    for (auto d : e.shape)
      if (!checked_mul(numel, static_cast<std::uint64_t>(d), numel))
        return err(t + "shape " + shape_to_string(e.shape) + " overflows 64 bits");
    std::uint64_t bits = 0;
    if (!checked_mul(numel, dtype_bits(e.dtype), bits))
      return err(t + "shape " + shape_to_string(e.shape) + " overflows 64 bits in bytes");
    if (bits % 8 != 0) return err(t + "element count is not a whole number of bytes for " + std::string(dtype_name(e.dtype)));
    if (e.end < e.begin)
      return err(t + "data_offsets [" + std::to_string(e.begin) + ", " + std::to_string(e.end) + "] end before they begin");
    if (e.end - e.begin != bits / 8)
      return err(t + "shape " + shape_to_string(e.shape) + " x " + std::string(dtype_name(e.dtype)) + " needs " +
                 std::to_string(bits / 8) + " bytes but data_offsets span " + std::to_string(e.end - e.begin));
    if (e.end > data_size)
      return err(t + "data ends at byte " + std::to_string(e.end) + " of the data area, but the file holds only " +
                 std::to_string(data_size) + " data bytes (truncated?)");
  }

  std::sort(h.entries.begin(), h.entries.end(), [](const auto& a, const auto& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  std::uint64_t expect = 0;
  for (std::size_t i = 0; i < h.entries.size(); ++i) {
    const auto& e = h.entries[i];
    if (e.begin < expect)
      return err("tensors \"" + h.entries[i - 1].name + "\" and \"" + e.name + "\" overlap (bytes " +
                 std::to_string(e.begin) + ".." + std::to_string(expect) + ")");
    if (e.begin > expect)
      return err(std::string("unused gap of ") + std::to_string(e.begin - expect) + " bytes before tensor \"" + e.name +
                 "\" (data_offsets must be contiguous from 0)");
    expect = e.end;
  }
  if (expect != data_size)
    return err(std::to_string(data_size - expect) + " trailing bytes after the last tensor (file size " +
               std::to_string(size) + " does not match the header)");
  return h;
}

}  // namespace qs
