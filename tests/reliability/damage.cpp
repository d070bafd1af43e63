#include "damage.h"

#include <algorithm>
#include <cstring>
#include <functional>
#include <nlohmann/json.hpp>
#include <random>
#include <stdexcept>

namespace qs::reliability {
namespace {

using Groups = std::vector<std::vector<Variant>>;

// Round-robin over the groups (each in a fixed shuffled order) until `budget`:
// every kind of damage gets its share whatever the budget.
std::vector<Variant> pick(Groups groups, std::size_t budget) {
  std::mt19937_64 rng(0x5eed);
  for (auto& g : groups) std::shuffle(g.begin(), g.end(), rng);
  std::vector<Variant> out;
  for (std::size_t i = 0; out.size() < budget; ++i) {
    bool any = false;
    for (auto& g : groups) {
      if (i >= g.size() || out.size() >= budget) continue;
      out.push_back(std::move(g[i]));
      any = true;
    }
    if (!any) break;
  }
  return out;
}

// `good` with the little-endian value `v` written at `at` (unchanged past the end).
template <class T>
std::string with_value(std::string s, std::size_t at, T v) {
  if (at + sizeof v <= s.size()) std::memcpy(s.data() + at, &v, sizeof v);
  return s;
}
std::string with_u64(std::string s, std::size_t at, std::uint64_t v) { return with_value(std::move(s), at, v); }
std::string with_u32(std::string s, std::size_t at, std::uint32_t v) { return with_value(std::move(s), at, v); }

// Truncations at `points` (deduplicated, inside the file).
std::vector<Variant> truncations(const std::string& good, std::vector<std::size_t> points, const std::string& tag) {
  std::sort(points.begin(), points.end());
  points.erase(std::unique(points.begin(), points.end()), points.end());
  std::vector<Variant> out;
  for (std::size_t p : points)
    if (p < good.size()) out.push_back({tag + ": truncated at byte " + std::to_string(p), good.substr(0, p)});
  return out;
}

// Bit flips, zeroed ranges and all-ones words; `hot` bytes at the start get most of them.
Groups noise(const std::string& good, std::size_t hot, std::uint64_t seed, const std::string& tag) {
  std::mt19937_64 rng(seed);
  hot = std::max<std::size_t>(1, std::min(hot, good.size()));
  auto where = [&](int i) {
    return (i % 4 != 3) ? rng() % hot : rng() % std::max<std::size_t>(1, good.size());
  };
  Groups g(3);
  for (int i = 0; i < 48 && !good.empty(); ++i) {
    const std::size_t at = where(i);
    const int bit = static_cast<int>(rng() % 8);
    std::string s = good;
    s[at] = static_cast<char>(s[at] ^ (1 << bit));
    g[0].push_back({tag + ": bit " + std::to_string(bit) + " of byte " + std::to_string(at) + " flipped", std::move(s)});
  }
  for (int i = 0; i < 24 && !good.empty(); ++i) {
    const std::size_t at = where(i);
    const std::size_t len = std::min<std::size_t>(good.size() - at, 8u << (rng() % 7));
    std::string s = good;
    std::memset(s.data() + at, 0, len);
    g[1].push_back({tag + ": " + std::to_string(len) + " bytes zeroed at " + std::to_string(at), std::move(s)});
  }
  for (int i = 0; i < 24 && good.size() >= 8; ++i) {
    const std::size_t at = std::min(where(i) & ~std::size_t{3}, good.size() - 8);
    std::string s = with_u64(good, at, ~std::uint64_t{0});
    g[2].push_back({tag + ": 8 bytes of ones at " + std::to_string(at), std::move(s)});
  }
  return g;
}

// ---- GGUF ----------------------------------------------------------------

enum class Field { Count, KeyLen, ValueType, StrLen, ArrType, ArrCount, NameLen, NDims, Dim, TensorType, Offset };

struct GgufField {
  Field kind;
  std::size_t at;
  std::string name;
};

// A reader of the good file (it is llama.cpp's, so well formed); a throw means
// the input is not a GGUF this generator understands.
struct GgufWalk {
  explicit GgufWalk(const std::string& bytes) : b(bytes) {}
  const std::string& b;
  std::size_t p = 0;
  std::vector<GgufField> fields;
  std::size_t data_start = 0;

  template <class T>
  T next() {
    if (p + sizeof(T) > b.size()) throw std::runtime_error("short");
    T v;
    std::memcpy(&v, b.data() + p, sizeof v);
    p += sizeof v;
    return v;
  }
  std::uint64_t u64() { return next<std::uint64_t>(); }
  std::uint32_t u32() { return next<std::uint32_t>(); }
  std::string str(Field kind, const std::string& name) {
    fields.push_back({kind, p, name});
    const std::uint64_t n = u64();
    if (n > b.size() - p) throw std::runtime_error("short");
    std::string s = b.substr(p, n);
    p += n;
    return s;
  }
  static std::size_t scalar_size(std::uint32_t t) {
    static const std::size_t sizes[] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};
    if (t > 12 || t == 8 || t == 9) throw std::runtime_error("type");
    return sizes[t];
  }
  void value(std::uint32_t t, const std::string& key) {
    if (t == 8) {
      str(Field::StrLen, key);
    } else if (t == 9) {
      fields.push_back({Field::ArrType, p, key});
      const std::uint32_t et = u32();
      fields.push_back({Field::ArrCount, p, key});
      const std::uint64_t n = u64();
      for (std::uint64_t i = 0; i < n; ++i) {
        if (et == 8) {
          // Only the first few string lengths of an array are recorded: a vocabulary has thousands.
          if (i < 3) str(Field::StrLen, key + "[" + std::to_string(i) + "]");
          else {
            const std::uint64_t len = u64();
            p += len;
          }
        } else {
          p += scalar_size(et);
        }
      }
    } else {
      p += scalar_size(t);
    }
  }
  void walk() {
    if (b.size() < 24 || b.compare(0, 4, "GGUF") != 0) throw std::runtime_error("not gguf");
    p = 8;
    fields.push_back({Field::Count, p, "n_tensors"});
    const std::uint64_t n_tensors = u64();
    fields.push_back({Field::Count, p, "n_kv"});
    const std::uint64_t n_kv = u64();
    std::uint64_t alignment = 32;
    for (std::uint64_t i = 0; i < n_kv; ++i) {
      const std::string key = str(Field::KeyLen, "kv[" + std::to_string(i) + "]");
      fields.push_back({Field::ValueType, p, key});
      const std::uint32_t t = u32();
      if (key == "general.alignment" && t == 4) {
        std::uint32_t a;
        std::memcpy(&a, b.data() + p, 4);
        alignment = a;
      }
      value(t, key);
    }
    for (std::uint64_t i = 0; i < n_tensors; ++i) {
      const std::string name = str(Field::NameLen, "tensor[" + std::to_string(i) + "]");
      fields.push_back({Field::NDims, p, name});
      const std::uint32_t nd = u32();
      for (std::uint32_t d = 0; d < nd; ++d) {
        fields.push_back({Field::Dim, p, name + ".dims[" + std::to_string(d) + "]"});
        u64();
      }
      fields.push_back({Field::TensorType, p, name});
      u32();
      fields.push_back({Field::Offset, p, name});
      u64();
    }
    data_start = (p + alignment - 1) / alignment * alignment;
  }
};

}  // namespace

std::vector<Variant> gguf_variants(const std::string& good, std::size_t budget) {
  GgufWalk w(good);
  w.walk();
  Groups g;
  std::vector<std::size_t> cuts{4, 8, 16, 24, w.p, w.data_start, w.data_start + 1, good.size() - 1,
                                w.data_start + (good.size() - w.data_start) / 2};
  for (const auto& f : w.fields) cuts.push_back(f.at);
  g.push_back(truncations(good, cuts, "gguf"));

  const std::uint64_t huge[] = {~std::uint64_t{0}, std::uint64_t{1} << 62, std::uint64_t{1} << 40,
                                std::uint64_t{0xFFFFFFFF} + 2, static_cast<std::uint64_t>(good.size())};
  std::vector<Variant> lengths, types, dims, offsets, counts;
  for (const auto& f : w.fields) {
    auto add = [&](std::vector<Variant>& to, const std::string& desc, std::string bytes) {
      to.push_back({"gguf: " + f.name + " " + desc, std::move(bytes)});
    };
    switch (f.kind) {
      case Field::Count:
        for (std::uint64_t v : huge) add(counts, "count = " + std::to_string(v), with_u64(good, f.at, v));
        add(counts, "count = 0", with_u64(good, f.at, 0));
        break;
      case Field::KeyLen:
      case Field::StrLen:
      case Field::NameLen:
      case Field::ArrCount:
        for (std::uint64_t v : huge) add(lengths, "length = " + std::to_string(v), with_u64(good, f.at, v));
        add(lengths, "length = 0", with_u64(good, f.at, 0));
        break;
      case Field::ValueType:
      case Field::ArrType:
        for (std::uint32_t v : {13u, 0xFFFFFFFFu, 9u, 8u, 0u}) add(types, "type = " + std::to_string(v), with_u32(good, f.at, v));
        break;
      case Field::TensorType:
        for (std::uint32_t v : {4u, 5u, 39u, 0xFFFFu, 0u, 8u})
          add(types, "tensor type = " + std::to_string(v), with_u32(good, f.at, v));
        break;
      case Field::NDims:
        for (std::uint32_t v : {0u, 5u, 64u, 0xFFFFFFFFu}) add(dims, "n_dims = " + std::to_string(v), with_u32(good, f.at, v));
        break;
      case Field::Dim:
        for (std::uint64_t v : {std::uint64_t{0}, std::uint64_t{1} << 40, std::uint64_t{1} << 32, ~std::uint64_t{0},
                                std::uint64_t{1} << 63})
          add(dims, "= " + std::to_string(v), with_u64(good, f.at, v));
        break;
      case Field::Offset:
        for (std::uint64_t v : {static_cast<std::uint64_t>(good.size()), std::uint64_t{1} << 62, std::uint64_t{1},
                                std::uint64_t{0}, ~std::uint64_t{0} - 31})
          add(offsets, "offset = " + std::to_string(v), with_u64(good, f.at, v));
        break;
    }
  }
  for (auto* v : {&counts, &lengths, &types, &dims, &offsets}) g.push_back(std::move(*v));
  for (auto& n : noise(good, w.p, 1, "gguf")) g.push_back(std::move(n));
  return pick(std::move(g), budget);
}

// ---- safetensors -----------------------------------------------------------

std::vector<Variant> safetensors_variants(const std::string& good, std::size_t budget) {
  if (good.size() < 8) throw std::runtime_error("not safetensors");
  std::uint64_t n;
  std::memcpy(&n, good.data(), 8);
  const std::string data = good.substr(8 + n);
  const nlohmann::ordered_json header = nlohmann::ordered_json::parse(good.substr(8, n));
  auto file_of = [&](const nlohmann::ordered_json& h) {
    std::string text = h.dump();
    std::string out(8, '\0');
    const std::uint64_t len = text.size();
    std::memcpy(out.data(), &len, 8);
    return out + text + data;
  };
  Groups g;
  g.push_back(truncations(good, {0, 4, 8, 9, 8 + n / 2, 8 + n - 1, 8 + n, 8 + n + data.size() / 2, good.size() - 1},
                          "safetensors"));
  std::vector<Variant> length;
  for (std::uint64_t v : {std::uint64_t{0}, std::uint64_t{7}, n + 1, n - 1, static_cast<std::uint64_t>(good.size()),
                          std::uint64_t{1} << 40, ~std::uint64_t{0}, std::uint64_t{100} << 20})
    length.push_back({"safetensors: header length " + std::to_string(v), with_u64(good, 0, v)});
  g.push_back(std::move(length));

  std::vector<std::string> names;
  for (auto it = header.begin(); it != header.end(); ++it)
    if (it.key() != "__metadata__") names.push_back(it.key());
  std::vector<Variant> fields;
  const std::size_t step = std::max<std::size_t>(1, names.size() / 8);
  const nlohmann::ordered_json bad_values[] = {
      nullptr, "F99", 5, nlohmann::ordered_json::array(), nlohmann::ordered_json::object(),
      nlohmann::ordered_json::array({-1, 4}), nlohmann::ordered_json::array({std::uint64_t{1} << 40, std::uint64_t{1} << 40}),
      nlohmann::ordered_json::array({1.5, 2}), nlohmann::ordered_json::array({std::uint64_t{1} << 62, 4}),
      nlohmann::ordered_json::array({0, std::uint64_t{1} << 62}), nlohmann::ordered_json::array({64, 0}),
      nlohmann::ordered_json::array({0, data.size() + 8})};
  for (std::size_t i = 0; i < names.size(); i += step) {
    for (const char* key : {"dtype", "shape", "data_offsets"}) {
      for (const auto& v : bad_values) {
        auto h = header;
        h[names[i]][key] = v;
        fields.push_back({"safetensors: " + names[i] + "." + key + " = " + v.dump(), file_of(h)});
      }
      auto h = header;
      h[names[i]].erase(key);
      fields.push_back({"safetensors: " + names[i] + "." + key + " removed", file_of(h)});
    }
    if (i > 0) {  // overlapping data: this tensor's bytes are the previous one's
      auto h = header;
      h[names[i]]["data_offsets"] = header[names[i - 1]]["data_offsets"];
      fields.push_back({"safetensors: " + names[i] + " overlaps " + names[i - 1], file_of(h)});
    }
  }
  g.push_back(std::move(fields));
  std::vector<Variant> whole;
  {
    auto h = header;
    h["__metadata__"] = {{"format", 5}};
    whole.push_back({"safetensors: __metadata__ value not a string", file_of(h)});
    h["__metadata__"] = 7;
    whole.push_back({"safetensors: __metadata__ not an object", file_of(h)});
    whole.push_back({"safetensors: header is an array", file_of(nlohmann::ordered_json::array({1, 2}))});
    std::string deep(100000, '[');
    std::string text = "{\"x\":" + deep + std::string(100000, ']') + "}";
    std::string out(8, '\0');
    const std::uint64_t len = text.size();
    std::memcpy(out.data(), &len, 8);
    whole.push_back({"safetensors: header nested 100001 deep", out + text + data});
  }
  g.push_back(std::move(whole));
  for (auto& v : noise(good, 8 + n, 2, "safetensors")) g.push_back(std::move(v));
  return pick(std::move(g), budget);
}

// ---- JSON ------------------------------------------------------------------

std::vector<Variant> json_variants(const std::string& good, std::size_t budget) {
  const nlohmann::ordered_json doc = nlohmann::ordered_json::parse(good);
  std::vector<nlohmann::ordered_json::json_pointer> paths;
  std::function<void(const nlohmann::ordered_json&, const nlohmann::ordered_json::json_pointer&)> collect =
      [&](const nlohmann::ordered_json& j, const nlohmann::ordered_json::json_pointer& at) {
        if (!at.empty()) paths.push_back(at);
        if (j.is_object()) {
          for (auto it = j.begin(); it != j.end(); ++it) collect(it.value(), at / it.key());
        } else if (j.is_array()) {
          // The first elements only: a vocabulary or merge list is long and alike.
          for (std::size_t i = 0; i < std::min<std::size_t>(j.size(), 3); ++i) collect(j[i], at / i);
        }
      };
  collect(doc, nlohmann::ordered_json::json_pointer());
  auto nested = [](int depth) {
    nlohmann::ordered_json j = 1;
    for (int i = 0; i < depth; ++i) j = nlohmann::ordered_json::array({std::move(j)});
    return j;
  };
  const nlohmann::ordered_json replacements[] = {
      nullptr, "x", -1, 0, 1e300, std::uint64_t{1} << 63, std::int64_t{1} << 40, nlohmann::ordered_json::array(),
      nlohmann::ordered_json::object(), true, 2.5, std::string(1 << 16, 'a'), nested(100)};
  Groups g;
  std::vector<Variant> typed, removed;
  for (std::size_t i = 0; i < paths.size(); ++i) {
    for (std::size_t k = 0; k < std::size(replacements); ++k) {
      auto d = doc;
      d[paths[i]] = replacements[k];
      const std::string shown = replacements[k].is_string() && replacements[k].get<std::string>().size() > 8
                                    ? "a 64 KiB string"
                                    : k + 1 == std::size(replacements) ? "[[...]] 100 deep" : replacements[k].dump();
      typed.push_back({"json: " + paths[i].to_string() + " = " + shown, d.dump(1)});
    }
    auto d = doc;
    const auto parent = paths[i].parent_pointer();
    if (d[parent].is_object()) {
      d[parent].erase(paths[i].back());
      removed.push_back({"json: " + paths[i].to_string() + " removed", d.dump(1)});
    }
  }
  g.push_back(std::move(typed));
  g.push_back(std::move(removed));
  std::vector<Variant> text;
  for (std::size_t p : {std::size_t{0}, std::size_t{1}, good.size() / 3, good.size() / 2, good.size() - 1})
    text.push_back({"json: truncated at byte " + std::to_string(p), good.substr(0, p)});
  std::string bad_utf8 = good;
  if (const auto q = bad_utf8.find('"', bad_utf8.find(':')); q != std::string::npos) bad_utf8.insert(q + 1, "\xff\xfe\xc3");
  text.push_back({"json: invalid UTF-8 in a string", bad_utf8});
  text.push_back({"json: nested 300000 deep", std::string(300000, '[') + std::string(300000, ']')});
  text.push_back({"json: top level is a number", "42"});
  text.push_back({"json: duplicate keys", "{\"a\": 1, " + good.substr(good.find('{') + 1)});
  g.push_back(std::move(text));
  return pick(std::move(g), budget);
}

// ---- binary ----------------------------------------------------------------

std::vector<Variant> binary_variants(const std::string& good, std::size_t budget) {
  std::vector<std::size_t> cuts;
  for (std::size_t p = 0; p < std::min<std::size_t>(good.size(), 4096); p += 97) cuts.push_back(p);
  for (std::size_t p = 4096; p < good.size(); p *= 2) cuts.push_back(p);
  cuts.push_back(good.size() / 2);
  cuts.push_back(good.size() - 1);
  Groups g;
  g.push_back(truncations(good, cuts, "binary"));
  for (auto& n : noise(good, 4096, 3, "binary")) g.push_back(std::move(n));
  return pick(std::move(g), budget);
}

}  // namespace qs::reliability
