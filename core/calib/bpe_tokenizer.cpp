#include "calib/bpe_tokenizer.h"

#include <algorithm>
#include <deque>
#include <nlohmann/json.hpp>
#include <queue>

#include "calib/unicode_normalize.h"
#include "io/gguf.h"
#include "util/read_text_file.h"
#include "util/json_depth.h"

namespace qs {

namespace {

// Far above any real vocabulary (Llama-3: 128k, Qwen2: 152k, Gemma: 256k),
// far below what would make a hostile file allocate gigabytes.
constexpr std::size_t kMaxTokens = std::size_t{1} << 22;
constexpr std::size_t kMaxMerges = std::size_t{1} << 22;
constexpr std::size_t kMaxCachedWord = 64;          // bytes; longer pieces are rare and not worth keeping
constexpr std::size_t kMaxCacheEntries = 1u << 16;  // per encode call

void append_utf8(std::string& out, std::uint32_t cp) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

// GPT-2's table: bytes that are printable Latin-1 ('!'..'~', '¡'..'¬', '®'..'ÿ')
// stand for themselves; the other 68 take the code points 256, 257, ... in byte order.
struct ByteTable {
  std::array<std::string, 256> to_text;
  std::array<int, 324> to_byte{};  // code point -> byte, -1 when the code point is no byte's
  ByteTable() {
    to_byte.fill(-1);
    std::uint32_t next = 256;
    for (int b = 0; b < 256; ++b) {
      const bool printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
      const std::uint32_t cp = printable ? static_cast<std::uint32_t>(b) : next++;
      append_utf8(to_text[static_cast<std::size_t>(b)], cp);
      to_byte[cp] = b;
    }
  }
};

const ByteTable& byte_table() {
  static const ByteTable t;
  return t;
}

// Next code point of UTF-8 text at `i` (advanced); a malformed byte reads as itself.
std::uint32_t next_code_point(std::string_view s, std::size_t& i) {
  const auto c = static_cast<unsigned char>(s[i]);
  std::size_t n = c < 0x80 ? 1 : c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 0;
  if (n == 0 || i + n > s.size()) {
    ++i;
    return 0x110000 + c;  // no real code point: never a byte of the table
  }
  std::uint32_t cp = n == 1 ? c : n == 2 ? (c & 0x1Fu) : n == 3 ? (c & 0x0Fu) : (c & 0x07u);
  for (std::size_t k = 1; k < n; ++k) cp = (cp << 6) | (static_cast<unsigned char>(s[i + k]) & 0x3Fu);
  i += n;
  return cp;
}

struct Symbol {
  std::int32_t id = -1;  // -1: a byte the vocabulary has no token for
  int prev = -1, next = -1;
  bool alive = true;
};

struct Candidate {
  std::int32_t rank = 0;
  int left = 0, right = 0;
  std::int32_t left_id = 0, right_id = 0, result = 0;
};

// Lowest rank first; among equal ranks the leftmost pair.
struct CandidateOrder {
  bool operator()(const Candidate& a, const Candidate& b) const {
    return a.rank > b.rank || (a.rank == b.rank && a.left > b.left);
  }
};

std::uint64_t pair_key(std::int32_t l, std::int32_t r) {
  return (static_cast<std::uint64_t>(static_cast<std::uint32_t>(l)) << 32) | static_cast<std::uint32_t>(r);
}

// A member of a JSON object, or the fallback when it is missing or of another
// type (nlohmann's value() throws on a wrong type; hostile files must not).
std::string str_of(const nlohmann::json& o, const char* key, std::string fallback = {}) {
  if (!o.is_object()) return fallback;
  const auto it = o.find(key);
  return it != o.end() && it->is_string() ? it->get<std::string>() : fallback;
}
bool bool_of(const nlohmann::json& o, const char* key, bool fallback) {
  if (!o.is_object()) return fallback;
  const auto it = o.find(key);
  return it != o.end() && it->is_boolean() ? it->get<bool>() : fallback;
}
nlohmann::json member_of(const nlohmann::json& o, const char* key) {
  const auto it = o.find(key);
  return it != o.end() ? *it : nlohmann::json();
}

Result<BpeTokenizer::PreStep> regex_step(std::string_view pattern, const std::string& label, bool literal = false) {
  auto r = RegexSplit::compile(std::string(pattern), literal, label);
  if (!r) return r.error();
  return BpeTokenizer::PreStep{std::move(*r), false, false};
}

// Unicode punctuation plus every ASCII punctuation character (some are symbols
// in Unicode), as the Punctuation pre-tokenizer of Hugging Face counts them.
constexpr std::string_view kPunctuationClass = R"([\p{P}\x21-\x2F\x3A-\x40\x5B-\x60\x7B-\x7E])";

bool is_llama3_family(std::string_view pre) {
  for (std::string_view n : {"llama3", "llama-v3", "llama-bpe", "falcon3", "dbrx", "smaug-bpe"})
    if (pre == n) return true;
  return false;
}

// The pre-tokenizer of a tokenizer.json, flattened into regex steps.
constexpr int kMaxNesting = 8;  // Sequence inside Sequence: real files nest once

Result<void> parse_pre_tokenizer(const nlohmann::json& p, const std::string& path, std::vector<BpeTokenizer::PreStep>& out,
                                 bool& mapped, int depth = 0) {
  if (p.is_null()) return {};
  if (depth > kMaxNesting) return Error::format(path + ": pre_tokenizer Sequences nest too deeply");
  if (!p.is_object() || !p.contains("type") || !p["type"].is_string())
    return Error::format(path + ": pre_tokenizer has no type");
  const std::string type = p["type"].get<std::string>();
  auto add = [&](std::string_view pattern, bool literal = false) -> Result<void> {
    auto s = regex_step(pattern, path, literal);
    if (!s) return s.error();
    s->after_byte_level = mapped;
    out.push_back(std::move(*s));
    return {};
  };
  if (type == "Sequence") {
    const auto it = p.find("pretokenizers");
    if (it == p.end() || !it->is_array()) return Error::format(path + ": pre_tokenizer Sequence has no pretokenizers array");
    for (const auto& q : *it)
      if (auto r = parse_pre_tokenizer(q, path, out, mapped, depth + 1); !r) return r;
    return {};
  }
  if (type == "ByteLevel") {
    if (mapped) return Error::unsupported(path + ": pre_tokenizer has two ByteLevel steps");
    const auto prefix = p.find("add_prefix_space");
    if (prefix != p.end() && prefix->is_boolean() && prefix->get<bool>()) out.push_back({RegexSplit{}, true, false});
    const auto use_regex = p.find("use_regex");  // absent in older files: true
    if (use_regex == p.end() || !use_regex->is_boolean() || use_regex->get<bool>())
      if (auto r = add(kGpt2Pattern); !r) return r;
    mapped = true;  // what follows sees the byte-level characters
    return {};
  }
  if (type == "Split") {
    const std::string behavior = str_of(p, "behavior", "Isolated");
    if (behavior != "Isolated")
      return Error::unsupported(path + ": pre_tokenizer Split with behavior '" + behavior + "' is not supported (only Isolated)");
    if (bool_of(p, "invert", false)) return Error::unsupported(path + ": pre_tokenizer Split with invert is not supported");
    const auto pat = p.find("pattern");
    if (pat != p.end() && pat->is_object()) {
      if (pat->contains("Regex") && (*pat)["Regex"].is_string()) return add((*pat)["Regex"].get<std::string>());
      if (pat->contains("String") && (*pat)["String"].is_string()) return add((*pat)["String"].get<std::string>(), true);
    }
    return Error::format(path + ": pre_tokenizer Split has no Regex or String pattern");
  }
  if (type == "Digits") return add(bool_of(p, "individual_digits", false) ? R"(\p{N})" : R"(\p{N}+)");
  if (type == "Punctuation") {
    const std::string behavior = str_of(p, "behavior", "Isolated");
    if (behavior == "Isolated") return add(kPunctuationClass);
    if (behavior == "Contiguous") return add(std::string(kPunctuationClass) + "+");
    return Error::unsupported(path + ": pre_tokenizer Punctuation with behavior '" + behavior + "' is not supported");
  }
  return Error::unsupported(path + ": pre_tokenizer '" + type + "' is not supported for byte-level BPE");
}

// The Unicode normalization a tokenizer.json normalizer asks for (nullopt:
// none); a Sequence of forms collapses to one (unicode_form_after). Other
// normalizers would change ids in ways not implemented here: refused.
Result<void> parse_normalizer(const nlohmann::json& n, const std::string& path, std::optional<UnicodeForm>& form, int depth = 0) {
  if (n.is_null()) return {};
  if (depth > kMaxNesting) return Error::format(path + ": normalizer Sequences nest too deeply");
  const std::string type = str_of(n, "type");
  if (const auto f = unicode_form_named(type)) {
    form = unicode_form_after(form, *f);
    return {};
  }
  if (type == "Sequence" && n.contains("normalizers") && n["normalizers"].is_array()) {
    for (const auto& m : n["normalizers"])
      if (auto r = parse_normalizer(m, path, form, depth + 1); !r) return r;
    return {};
  }
  return Error::unsupported(path + ": normalizer '" + type + "' is not supported for byte-level BPE");
}

bool mentions_byte_level(const nlohmann::json& j) {
  for (const char* key : {"pre_tokenizer", "decoder"}) {
    const auto it = j.find(key);
    if (it != j.end() && !it->is_null() && it->dump().find("\"ByteLevel\"") != std::string::npos) return true;
  }
  return false;
}

// The BOS a TemplateProcessing post-processor puts first ("" when none).
std::string template_bos(const nlohmann::json& pp, int depth = 0) {
  if (!pp.is_object() || depth > kMaxNesting) return {};
  const std::string type = str_of(pp, "type");
  if (type == "Sequence" && pp.contains("processors") && pp["processors"].is_array()) {
    for (const auto& q : pp["processors"])
      if (auto b = template_bos(q, depth + 1); !b.empty()) return b;
    return {};
  }
  if (type != "TemplateProcessing" || !pp.contains("single") || !pp["single"].is_array() || pp["single"].empty()) return {};
  const auto& first = pp["single"][0];
  if (!first.is_object() || !first.contains("SpecialToken") || !first["SpecialToken"].is_object()) return {};
  const auto& st = first["SpecialToken"];
  return st.contains("id") && st["id"].is_string() ? st["id"].get<std::string>() : std::string();
}

Result<nlohmann::json> read_json(const std::string& path, std::size_t max_bytes) {
  auto text = read_text_file(path, max_bytes);
  if (!text) return text.error();
  if (auto r = check_json_depth(*text, path); !r) return r.error();
  auto j = nlohmann::json::parse(*text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return Error::format(path + ": not a JSON object");
  return j;
}

}  // namespace

Result<std::vector<BpeTokenizer::PreStep>> BpeTokenizer::pre_steps_for(std::string_view pre, const std::string& label) {
  std::vector<std::string_view> patterns;
  std::size_t after_byte_level = 99;  // steps from this index on split byte-level text
  if (pre == "gpt-2" || pre == "gpt2" || pre == "mpt" || pre == "olmo" || pre == "jais") {
    patterns = {kGpt2Pattern};
  } else if (is_llama3_family(pre)) {
    patterns = {kLlama3Pattern};
  } else if (pre == "qwen2" || pre == "deepseek-r1-qwen" || pre == "stablelm2") {
    patterns = {kQwen2Pattern};
  } else if (pre == "starcoder" || pre == "refact" || pre == "command-r" || pre == "smollm" || pre == "codeshell" ||
             pre == "exaone" || pre == "minerva-7b") {
    patterns = {R"(\p{N})", kGpt2Pattern};  // Digits(individual) then ByteLevel's regex
  } else if (pre == "falcon") {
    static const std::string punct = std::string(kPunctuationClass) + "+";
    // Punctuation, ByteLevel (its regex), then Digits and a Split that see the byte-level text.
    patterns = {punct, kGpt2Pattern, R"(\p{N}+)", "[0-9][0-9][0-9]"};
    after_byte_level = 2;
  } else if (pre == "deepseek-coder") {
    patterns = {"[\r\n]", R"(\s?\p{L}+)", R"(\s?\p{P}+)", R"([\x{4E00}-\x{9FA5}\x{0800}-\x{4E00}\x{AC00}-\x{D7FF}]+)", R"(\p{N})"};
  } else if (pre == "deepseek-llm") {
    // Cased letters (Lu, Ll, Lt) after an optional space; ASCII and full-width
    // punctuation; trailing spaces; CJK runs; digit runs.
    patterns = {"[\r\n]", R"(\s?[\p{Lu}\p{Ll}\p{Lt}]+)",
                R"(\s?[!-/:-~\x{FF01}-\x{FF0F}\x{FF1A}-\x{FF5E}\x{2018}-\x{201F}\x{3000}-\x{3002}]+)", R"(\s+$)",
                R"([\x{4E00}-\x{9FA5}\x{0800}-\x{4E00}\x{AC00}-\x{D7FF}]+)", R"(\p{N}+)"};
  } else {
    return Error::unsupported(label + ": unknown byte-level pre-tokenizer '" + std::string(pre) + "' (tokenizer.ggml.pre)");
  }
  std::vector<PreStep> steps;
  for (std::string_view p : patterns) {
    auto s = regex_step(p, label);
    if (!s) return s.error();
    s->after_byte_level = steps.size() >= after_byte_level;
    steps.push_back(std::move(*s));
  }
  return steps;
}

Result<BpeTokenizer> BpeTokenizer::from_parts(std::vector<Token> tokens, std::span<const MergePair> merges,
                                              std::vector<PreStep> pre, const std::string& label) {
  if (tokens.empty()) return Error::format(label + ": the vocabulary is empty");
  if (tokens.size() > kMaxTokens)
    return Error::format(label + ": " + std::to_string(tokens.size()) + " tokens is more than any vocabulary has");
  if (merges.size() > kMaxMerges) return Error::format(label + ": " + std::to_string(merges.size()) + " merges is too many");
  BpeTokenizer t;
  t.tokens_ = std::move(tokens);
  t.pre_ = std::move(pre);
  t.ids_.reserve(t.tokens_.size());
  for (std::size_t i = 0; i < t.tokens_.size(); ++i) {
    const Token& k = t.tokens_[i];
    if (!k.text.empty()) t.ids_.insert_or_assign(k.text, static_cast<std::int32_t>(i));  // a repeated text: its last id
    if ((k.kind == TokenKind::Control || k.kind == TokenKind::UserDefined) && !k.text.empty())
      t.added_[static_cast<unsigned char>(k.text[0])].push_back(static_cast<std::int32_t>(i));
  }
  for (auto& bucket : t.added_)
    std::stable_sort(bucket.begin(), bucket.end(), [&](std::int32_t a, std::int32_t b) {
      return t.tokens_[static_cast<std::size_t>(a)].text.size() > t.tokens_[static_cast<std::size_t>(b)].text.size();
    });
  const ByteTable& bt = byte_table();
  for (std::size_t b = 0; b < 256; ++b) t.byte_ids_[b] = t.find(bt.to_text[b]);
  t.merges_.reserve(merges.size());
  std::string joined;
  for (std::size_t r = 0; r < merges.size(); ++r) {
    const auto& [left, right] = merges[r];
    const std::int32_t l = t.find(left), rt = t.find(right);
    joined.assign(left);
    joined.append(right);
    const std::int32_t res = t.find(joined);
    const std::string_view missing = l < 0 ? left : rt < 0 ? right : res < 0 ? std::string_view(joined) : std::string_view();
    if (l < 0 || rt < 0 || res < 0)
      return Error::format(label + ": merge " + std::to_string(r) + " '" + std::string(left) + " " + std::string(right) +
                           "' names a token that is not in the vocabulary: '" + std::string(missing) + "'");
    t.merges_.emplace(pair_key(l, rt), Merge{static_cast<std::int32_t>(r), res});  // the first listing of a pair wins
  }
  t.eos_ = t.find("<|endoftext|>");
  return t;
}

Result<bool> BpeTokenizer::is_byte_level_tokenizer_json(const std::string& path) {
  auto j = read_json(path, std::size_t{256} << 20);
  if (!j) return j.error();
  const auto model = j->find("model");
  return model != j->end() && model->is_object() && str_of(*model, "type") == "BPE" && mentions_byte_level(*j);
}

Result<BpeTokenizer> BpeTokenizer::from_hf_tokenizer_json(const std::string& path) {
  auto text = read_text_file(path, std::size_t{256} << 20);
  if (!text) return text.error();
  return from_hf_tokenizer_json_text(*text, path);
}

Result<BpeTokenizer> BpeTokenizer::from_hf_tokenizer_json_text(std::string_view json_text, const std::string& path) {
  if (auto r = check_json_depth(json_text, path); !r) return r.error();
  const auto j = nlohmann::json::parse(json_text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return Error::format(path + ": not a JSON object");
  const auto model = j.find("model");
  if (model == j.end() || !model->is_object() || str_of(*model, "type") != "BPE")
    return Error::unsupported(path + ": only BPE tokenizer.json models are supported");
  if (!mentions_byte_level(j))
    return Error::unsupported(path + ": not a byte-level BPE (no ByteLevel pre-tokenizer or decoder)");
  if (const auto bf = model->find("byte_fallback"); bf != model->end() && bf->is_boolean() && bf->get<bool>())
    return Error::unsupported(path + ": byte-level BPE with byte_fallback is not supported");
  for (const char* key : {"continuing_subword_prefix", "end_of_word_suffix"})
    if (const auto it = model->find(key); it != model->end() && it->is_string() && !it->get<std::string>().empty())
      return Error::unsupported(path + ": BPE with a " + key + " is not supported");
  std::optional<UnicodeForm> normalizer;
  if (auto r = parse_normalizer(member_of(j, "normalizer"), path, normalizer); !r) return r.error();

  const auto vocab = model->find("vocab");
  const auto merges = model->find("merges");
  if (vocab == model->end() || !vocab->is_object() || merges == model->end() || !merges->is_array())
    return Error::format(path + ": model.vocab must be an object and model.merges an array");
  const auto added_it = j.find("added_tokens");
  const nlohmann::json no_added = nlohmann::json::array();
  const nlohmann::json& added = added_it != j.end() && added_it->is_array() ? *added_it : no_added;
  // Ids must be in range before anything is sized by them.
  auto valid_id = [&](const nlohmann::json& id) {
    return id.is_number_unsigned() || (id.is_number_integer() && id.get<std::int64_t>() >= 0);
  };
  std::uint64_t n = 0;
  for (const auto& [text, id] : vocab->items()) {
    if (!valid_id(id) || id.get<std::uint64_t>() >= kMaxTokens)
      return Error::format(path + ": vocab id of '" + text + "' is not a token id below " + std::to_string(kMaxTokens));
    n = std::max(n, id.get<std::uint64_t>() + 1);
  }
  for (const auto& a : added) {
    if (!a.is_object() || !a.contains("id") || !valid_id(a["id"]) || a["id"].get<std::uint64_t>() >= kMaxTokens ||
        !a.contains("content") || !a["content"].is_string())
      return Error::format(path + ": an added_tokens entry has no valid id and content: " + a.dump().substr(0, 200));
    n = std::max(n, a["id"].get<std::uint64_t>() + 1);
  }
  // Real vocabularies are dense; a few ids far apart must not size a huge table.
  const std::uint64_t entries = vocab->size() + added.size();
  if (n > 2 * entries + 1024)
    return Error::format(path + ": token ids reach " + std::to_string(n - 1) + " but there are only " + std::to_string(entries) +
                         " tokens");
  std::vector<Token> tokens(static_cast<std::size_t>(n));
  std::vector<bool> seen(tokens.size(), false);
  for (const auto& [text, id] : vocab->items()) {
    const auto i = id.get<std::size_t>();
    if (seen[i]) return Error::format(path + ": vocab id " + std::to_string(i) + " is used twice");
    seen[i] = true;
    tokens[i].text = text;
  }
  for (const auto& a : added) {
    Token& k = tokens[a["id"].get<std::size_t>()];
    k.text = a["content"].get<std::string>();
    k.kind = bool_of(a, "special", false) ? TokenKind::Control : TokenKind::UserDefined;
  }

  std::vector<MergePair> pairs;
  pairs.reserve(merges->size());
  for (std::size_t r = 0; r < merges->size(); ++r) {
    const auto& mg = (*merges)[r];
    if (mg.is_string()) {
      const std::string& m = mg.get_ref<const std::string&>();
      const auto sp = m.find(' ', 1);
      if (sp == std::string::npos) return Error::format(path + ": merge " + std::to_string(r) + " '" + m + "' is not 'left right'");
      pairs.emplace_back(std::string_view(m).substr(0, sp), std::string_view(m).substr(sp + 1));
    } else if (mg.is_array() && mg.size() == 2 && mg[0].is_string() && mg[1].is_string()) {
      pairs.emplace_back(mg[0].get_ref<const std::string&>(), mg[1].get_ref<const std::string&>());
    } else {
      return Error::format(path + ": merge " + std::to_string(r) + " is neither 'left right' nor a pair of strings");
    }
  }
  std::vector<PreStep> pre;
  bool mapped = false;
  if (auto r = parse_pre_tokenizer(member_of(j, "pre_tokenizer"), path, pre, mapped); !r) return r.error();
  auto t = from_parts(std::move(tokens), pairs, std::move(pre), path);
  if (!t) return t.error();
  t->normalizer_ = normalizer;
  if (const auto im = model->find("ignore_merges"); im != model->end() && im->is_boolean()) t->ignore_merges_ = im->get<bool>();
  if (const auto unk = model->find("unk_token"); unk != model->end() && unk->is_string()) t->unk_ = t->find(unk->get<std::string>());
  if (const auto pp = j.find("post_processor"); pp != j.end()) {
    if (const std::string bos = template_bos(*pp); !bos.empty()) {
      t->bos_ = t->find(bos);
      if (t->bos_ < 0) return Error::format(path + ": post_processor adds '" + bos + "', which is not a token");
      t->add_bos_ = true;
    }
  }
  return t;
}

Result<void> BpeTokenizer::apply_tokenizer_config(const std::string& path) {
  auto j = read_json(path, std::size_t{16} << 20);
  if (!j) return j.error();
  // bos_token / eos_token: a string, or an AddedToken object with "content".
  auto token_of = [&](const char* key) -> std::int32_t {
    const auto it = j->find(key);
    if (it == j->end()) return -1;
    if (it->is_string()) return find(it->get<std::string>());
    if (it->is_object() && it->contains("content") && (*it)["content"].is_string()) return find((*it)["content"].get<std::string>());
    return -1;
  };
  if (const std::int32_t b = token_of("bos_token"); b >= 0) bos_ = b;
  if (const std::int32_t e = token_of("eos_token"); e >= 0) eos_ = e;
  if (const auto it = j->find("add_bos_token"); it != j->end() && it->is_boolean()) add_bos_ = it->get<bool>();
  if (add_bos_ && bos_ < 0) return Error::format(path + ": add_bos_token is true but there is no BOS token in the vocabulary");
  return {};
}

Result<BpeTokenizer> BpeTokenizer::from_gguf(const GgufFile& g, const std::string& label) {
  const GgufValue* model = g.find("tokenizer.ggml.model");
  if (!model || !model->as_string() || *model->as_string() != "gpt2")
    return Error::unsupported(label + ": not a byte-level BPE vocabulary (tokenizer.ggml.model is not 'gpt2')");
  const GgufValue* tokens = g.find("tokenizer.ggml.tokens");
  const GgufValue* merges = g.find("tokenizer.ggml.merges");
  const GgufValue* types = g.find("tokenizer.ggml.token_type");
  if (!tokens || !tokens->as_array() || tokens->as_array()->elem != GgufType::STRING)
    return Error::format(label + ": tokenizer.ggml.tokens must be an array of strings");
  if (!merges || !merges->as_array() || merges->as_array()->elem != GgufType::STRING)
    return Error::format(label + ": tokenizer.ggml.merges must be an array of strings");
  const GgufArray& tok = *tokens->as_array();
  const GgufArray* ty = types ? types->as_array() : nullptr;
  if (types && (!ty || ty->count != tok.count))
    return Error::format(label + ": tokenizer.ggml.token_type must be an array as long as tokenizer.ggml.tokens");
  if (tok.strings.size() > kMaxTokens)
    return Error::format(label + ": " + std::to_string(tok.strings.size()) + " tokens is more than any vocabulary has");
  std::vector<Token> vocab(tok.strings.size());
  for (std::size_t i = 0; i < vocab.size(); ++i) {
    vocab[i].text = std::string(tok.strings[i]);
    if (!ty) continue;
    const auto v = ty->number(i);
    if (!v || *v < 1 || *v > 6)
      return Error::format(label + ": tokenizer.ggml.token_type[" + std::to_string(i) + "] is not a token type 1..6");
    switch (static_cast<int>(*v)) {
      case 2:  // unknown
      case 3: vocab[i].kind = TokenKind::Control; break;
      case 4: vocab[i].kind = TokenKind::UserDefined; break;
      case 5: vocab[i].kind = TokenKind::Unused; break;
      default: break;  // normal, byte
    }
  }
  std::vector<MergePair> pairs;
  pairs.reserve(merges->as_array()->strings.size());
  for (std::size_t r = 0; r < merges->as_array()->strings.size(); ++r) {
    const std::string_view m = merges->as_array()->strings[r];
    const auto sp = m.find(' ', 1);
    if (sp == std::string_view::npos)
      return Error::format(label + ": tokenizer.ggml.merges[" + std::to_string(r) + "] '" + std::string(m) + "' is not 'left right'");
    pairs.emplace_back(m.substr(0, sp), m.substr(sp + 1));
  }
  std::string pre = "gpt-2";  // files written before tokenizer.ggml.pre existed: GPT-2's regex
  if (const GgufValue* p = g.find("tokenizer.ggml.pre")) {
    if (!p->as_string()) return Error::format(label + ": tokenizer.ggml.pre is not a string");
    pre = *p->as_string();
  }
  auto steps = pre_steps_for(pre, label);
  if (!steps) return steps.error();
  auto t = from_parts(std::move(vocab), pairs, std::move(*steps), label);
  if (!t) return t.error();
  t->ignore_merges_ = is_llama3_family(pre);
  t->add_bos_ = is_llama3_family(pre);  // Llama-3's post-processor adds <|begin_of_text|>; GPT-2's adds nothing
  const auto n = static_cast<std::int64_t>(t->size());
  for (auto [key, out] : {std::pair{"tokenizer.ggml.bos_token_id", &t->bos_}, std::pair{"tokenizer.ggml.eos_token_id", &t->eos_},
                          std::pair{"tokenizer.ggml.unknown_token_id", &t->unk_}}) {
    const GgufValue* v = g.find(key);
    if (!v) continue;
    const auto i = v->as_int();
    if (!i || *i < 0 || *i >= n) return Error::format(label + ": " + key + " is not a token id: " + v->to_display_string());
    *out = static_cast<std::int32_t>(*i);
  }
  if (const GgufValue* v = g.find("tokenizer.ggml.add_bos_token"))
    if (const bool* b = std::get_if<bool>(&v->v)) t->add_bos_ = *b;
  if (t->add_bos_ && t->bos_ < 0) return Error::format(label + ": add_bos_token is set but tokenizer.ggml.bos_token_id is missing");
  return t;
}

std::int32_t BpeTokenizer::find(std::string_view text) const {
  const auto it = ids_.find(std::string(text));
  return it == ids_.end() ? -1 : it->second;
}

std::vector<BpeTokenizer::Fragment> BpeTokenizer::split_added(std::string_view text) const {
  std::vector<Fragment> frags;
  std::size_t from = 0;
  for (std::size_t i = 0; i < text.size();) {
    std::int32_t hit = -1;
    for (const std::int32_t id : added_[static_cast<unsigned char>(text[i])]) {  // longest first
      const std::string& a = tokens_[static_cast<std::size_t>(id)].text;
      if (text.compare(i, a.size(), a) == 0) {
        hit = id;
        break;
      }
    }
    if (hit < 0) {
      ++i;
      continue;
    }
    if (i > from) frags.push_back({text.substr(from, i - from), -1});
    frags.push_back({{}, hit});
    i += tokens_[static_cast<std::size_t>(hit)].text.size();
    from = i;
  }
  if (from < text.size()) frags.push_back({text.substr(from), -1});
  return frags;
}

void BpeTokenizer::encode_word(std::string_view word, std::vector<std::int32_t>& out,
                               std::unordered_map<std::string, std::vector<std::int32_t>>& cache) const {
  const bool cacheable = word.size() <= kMaxCachedWord;
  if (cacheable) {
    if (const auto it = cache.find(std::string(word)); it != cache.end()) {
      out.insert(out.end(), it->second.begin(), it->second.end());
      return;
    }
  }
  const std::size_t start = out.size();
  const ByteTable& bt = byte_table();
  std::int32_t whole = -1;
  if (ignore_merges_) {  // a piece that is a token as a whole is taken as it is (Llama-3)
    std::string mapped;
    for (const char c : word) mapped += bt.to_text[static_cast<unsigned char>(c)];
    whole = find(mapped);
  }
  if (whole >= 0) {
    out.push_back(whole);
  } else {
    std::vector<Symbol> sym(word.size());
    for (std::size_t i = 0; i < word.size(); ++i) {
      sym[i].id = byte_ids_[static_cast<unsigned char>(word[i])];
      sym[i].prev = static_cast<int>(i) - 1;
      sym[i].next = i + 1 < word.size() ? static_cast<int>(i) + 1 : -1;
    }
    std::priority_queue<Candidate, std::vector<Candidate>, CandidateOrder> queue;
    auto consider = [&](int l, int r) {
      if (l < 0 || r < 0) return;
      const std::int32_t li = sym[static_cast<std::size_t>(l)].id, ri = sym[static_cast<std::size_t>(r)].id;
      if (li < 0 || ri < 0) return;
      const auto m = merges_.find(pair_key(li, ri));
      if (m != merges_.end()) queue.push({m->second.rank, l, r, li, ri, m->second.result});
    };
    for (int i = 1; i < static_cast<int>(sym.size()); ++i) consider(i - 1, i);
    while (!queue.empty()) {
      const Candidate c = queue.top();
      queue.pop();
      Symbol& l = sym[static_cast<std::size_t>(c.left)];
      // Stale when either side has merged with something else since it was queued.
      if (!l.alive || l.next != c.right || l.id != c.left_id || sym[static_cast<std::size_t>(c.right)].id != c.right_id) continue;
      Symbol& r = sym[static_cast<std::size_t>(c.right)];
      l.id = c.result;
      l.next = r.next;
      r.alive = false;
      if (r.next >= 0) sym[static_cast<std::size_t>(r.next)].prev = c.left;
      consider(l.prev, c.left);
      consider(c.left, l.next);
    }
    for (int i = sym.empty() ? -1 : 0; i >= 0; i = sym[static_cast<std::size_t>(i)].next) {
      const std::int32_t id = sym[static_cast<std::size_t>(i)].id;
      if (id >= 0) out.push_back(id);
      else if (unk_ >= 0) out.push_back(unk_);  // without an unknown token the byte is dropped, as HF's BPE does
    }
  }
  if (cacheable && cache.size() < kMaxCacheEntries)
    cache.emplace(std::string(word), std::vector<std::int32_t>(out.begin() + static_cast<std::ptrdiff_t>(start), out.end()));
}

std::vector<std::int32_t> BpeTokenizer::encode(std::string_view text, bool add_bos) const {
  std::vector<std::int32_t> out;
  if (add_bos && bos_ >= 0) out.push_back(bos_);
  std::unordered_map<std::string, std::vector<std::int32_t>> cache;
  std::deque<std::string> owned;  // pieces a prefix-space step made
  std::vector<std::string_view> pieces, next, parts;
  std::string mapped;
  std::string normalized;
  const ByteTable& bt = byte_table();
  for (const Fragment& f : split_added(text)) {
    if (f.token >= 0) {
      out.push_back(f.token);
      continue;
    }
    // As Hugging Face does: added tokens are cut from the raw text, the text
    // between them is normalized, then pre-tokenized.
    if (normalizer_) normalized = normalize_unicode(f.text, *normalizer_);
    pieces.assign(1, normalizer_ ? std::string_view(normalized) : f.text);
    for (const PreStep& step : pre_) {
      next.clear();
      for (const std::string_view p : pieces) {
        if (step.prefix_space) {
          if (p.empty() || p[0] == ' ') next.push_back(p);
          else next.push_back(owned.emplace_back(std::string(" ").append(p)));
        } else if (step.after_byte_level) {
          // Split the byte-level spelling, then cut the raw piece at the same
          // places: every byte is exactly one character there.
          mapped.clear();
          for (const char c : p) mapped += bt.to_text[static_cast<unsigned char>(c)];
          parts.clear();
          step.split.split(mapped, parts);
          std::size_t raw = 0;
          for (const std::string_view part : parts) {
            std::size_t chars = 0;
            for (const char c : part) chars += (static_cast<unsigned char>(c) & 0xC0) != 0x80;
            next.push_back(p.substr(raw, chars));
            raw += chars;
          }
        } else {
          step.split.split(p, next);
        }
      }
      pieces.swap(next);
    }
    for (const std::string_view p : pieces) encode_word(p, out, cache);
  }
  return out;
}

std::string BpeTokenizer::piece_text(std::int32_t id) const {
  if (id < 0 || static_cast<std::size_t>(id) >= tokens_.size()) return {};
  const Token& k = tokens_[static_cast<std::size_t>(id)];
  switch (k.kind) {
    case TokenKind::Control:
    case TokenKind::Unused: return {};
    case TokenKind::UserDefined: return k.text;
    case TokenKind::Normal: break;
  }
  const ByteTable& bt = byte_table();
  std::string out;
  out.reserve(k.text.size());
  for (std::size_t i = 0; i < k.text.size();) {
    const std::size_t at = i;
    const std::uint32_t cp = next_code_point(k.text, i);
    if (cp < bt.to_byte.size() && bt.to_byte[cp] >= 0) out.push_back(static_cast<char>(bt.to_byte[cp]));
    else out.append(k.text, at, i - at);  // not a byte character: kept as written
  }
  return out;
}

std::string BpeTokenizer::decode(std::span<const std::int32_t> ids) const {
  std::string out;
  for (const std::int32_t id : ids) out += piece_text(id);
  return out;
}

}  // namespace qs
