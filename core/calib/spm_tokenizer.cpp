#include "calib/spm_tokenizer.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <queue>

#include "calib/unicode_normalize.h"
#include "io/gguf.h"
#include "model/model.h"
#include "util/read_text_file.h"
#include "util/json_depth.h"

namespace qs {

namespace {

constexpr std::string_view kSpace = "\xE2\x96\x81";  // U+2581 "▁"

// Byte length of the UTF-8 sequence a lead byte starts; stray continuation
// bytes count as one (as llama.cpp's tokenizer splits them).
std::size_t utf8_len(unsigned char lead) {
  if (lead < 0xC0) return 1;
  if (lead < 0xE0) return 2;
  if (lead < 0xF0) return 3;
  return 4;
}

struct Symbol {
  std::size_t start = 0, n = 0;  // bytes of the normalised text; n == 0 once merged away
  int prev = -1, next = -1;
};

struct Bigram {
  int left = 0, right = 0;
  float score = 0;
  std::size_t size = 0;  // bytes of the merged text, to detect stale entries
};

// Highest score first; among equal scores the leftmost pair.
struct BigramOrder {
  bool operator()(const Bigram& a, const Bigram& b) const {
    return a.score < b.score || (a.score == b.score && a.left > b.left);
  }
};


}  // namespace

int parse_byte_piece(std::string_view p) {
  // "<0xXX>" with upper- or lower-case hex digits
  if (p.size() != 6 || p[0] != '<' || p[1] != '0' || p[2] != 'x' || p[5] != '>') return -1;
  int v = 0;
  for (int i = 3; i < 5; ++i) {
    const char c = p[static_cast<std::size_t>(i)];
    int d = -1;
    if (c >= '0' && c <= '9') d = c - '0';
    else if (c >= 'A' && c <= 'F') d = c - 'A' + 10;
    else if (c >= 'a' && c <= 'f') d = c - 'a' + 10;
    if (d < 0) return -1;
    v = v * 16 + d;
  }
  return v;
}

Result<SpmTokenizer> SpmTokenizer::from_pieces(std::vector<SpmPiece> pieces, const std::string& label) {
  if (pieces.empty()) return Error::format(label + ": the vocabulary is empty");
  if (pieces.size() > (std::size_t{1} << 30)) return Error::format(label + ": the vocabulary is too large");
  SpmTokenizer t;
  t.pieces_ = std::move(pieces);
  t.byte_ids_.fill(-1);
  t.ids_.reserve(t.pieces_.size());
  std::int32_t bos = -1, eos = -1, unk = -1;
  for (std::size_t i = 0; i < t.pieces_.size(); ++i) {
    const auto id = static_cast<std::int32_t>(i);
    const SpmPiece& p = t.pieces_[i];
    t.ids_.insert_or_assign(p.piece, id);  // a duplicated text maps to its last id, as in llama.cpp
    if (p.type == SpmPieceType::Byte) {
      const int b = parse_byte_piece(p.piece);
      if (b < 0) return Error::format(label + ": byte piece " + std::to_string(i) + " is not <0xXX>: '" + p.piece + "'");
      if (t.byte_ids_[static_cast<std::size_t>(b)] < 0) t.byte_ids_[static_cast<std::size_t>(b)] = id;
    }
    if (p.type == SpmPieceType::Control && p.piece == "<s>" && bos < 0) bos = id;
    if (p.type == SpmPieceType::Control && p.piece == "</s>" && eos < 0) eos = id;
    if (p.type == SpmPieceType::Unknown && unk < 0) unk = id;
  }
  for (std::size_t i = 0; i < t.pieces_.size(); ++i)
    if (t.pieces_[i].type == SpmPieceType::UserDefined && !t.pieces_[i].piece.empty())
      t.user_defined_.push_back(static_cast<std::int32_t>(i));
  std::stable_sort(t.user_defined_.begin(), t.user_defined_.end(), [&](std::int32_t a, std::int32_t b) {
    return t.pieces_[static_cast<std::size_t>(a)].piece.size() > t.pieces_[static_cast<std::size_t>(b)].piece.size();
  });
  const auto n = static_cast<std::int32_t>(t.pieces_.size());
  t.bos_ = bos >= 0 ? bos : std::min(1, n - 1);
  t.eos_ = eos >= 0 ? eos : std::min(2, n - 1);
  t.unk_ = unk >= 0 ? unk : 0;
  return t;
}

Result<SpmTokenizer> SpmTokenizer::from_spm_file(const std::string& path) {
  auto bytes = read_text_file(path, std::size_t{64} << 20);  // real models: < 5 MiB
  if (!bytes) return bytes.error();
  const auto raw = std::as_bytes(std::span(bytes->data(), bytes->size()));
  auto pieces = parse_spm_vocab(raw, path);
  if (!pieces) return pieces.error();
  auto spec = parse_spm_normalizer_spec(raw, path);
  if (!spec) return spec.error();
  auto t = from_pieces(std::move(*pieces), path);
  if (!t) return t.error();
  t->add_space_prefix_ = spec->add_dummy_prefix;
  t->remove_extra_whitespaces_ = spec->remove_extra_whitespaces;
  return t;
}

Result<SpmTokenizer> SpmTokenizer::from_gguf(const GgufFile& g, const std::string& label) {
  const GgufValue* model = g.find("tokenizer.ggml.model");
  if (!model || !model->as_string())
    return Error::unsupported(label + ": no tokenizer in the GGUF metadata (tokenizer.ggml.model)");
  if (*model->as_string() != "llama")
    return Error::unsupported(label + ": tokenizer '" + *model->as_string() +
                              "' is not supported yet (only SentencePiece 'llama' vocabularies)");
  const GgufValue* tokens = g.find("tokenizer.ggml.tokens");
  const GgufValue* scores = g.find("tokenizer.ggml.scores");
  const GgufValue* types = g.find("tokenizer.ggml.token_type");
  if (!tokens || !tokens->as_array() || tokens->as_array()->elem != GgufType::STRING)
    return Error::format(label + ": tokenizer.ggml.tokens must be an array of strings");
  const GgufArray& tok = *tokens->as_array();
  const GgufArray* sc = scores ? scores->as_array() : nullptr;
  const GgufArray* ty = types ? types->as_array() : nullptr;
  if (scores && (!sc || sc->count != tok.count))
    return Error::format(label + ": tokenizer.ggml.scores must be an array as long as tokenizer.ggml.tokens");
  if (types && (!ty || ty->count != tok.count))
    return Error::format(label + ": tokenizer.ggml.token_type must be an array as long as tokenizer.ggml.tokens");
  std::vector<SpmPiece> pieces(tok.strings.size());
  for (std::size_t i = 0; i < pieces.size(); ++i) {
    pieces[i].piece = std::string(tok.strings[i]);
    if (sc) {
      const auto s = sc->number(i);
      if (!s) return Error::format(label + ": tokenizer.ggml.scores holds no numbers");
      pieces[i].score = static_cast<float>(*s);
    }
    if (ty) {
      const auto v = ty->number(i);
      if (!v || *v < 1 || *v > 6)
        return Error::format(label + ": tokenizer.ggml.token_type[" + std::to_string(i) + "] is not a token type 1..6");
      pieces[i].type = static_cast<SpmPieceType>(static_cast<int>(*v));
    }
  }
  auto t = from_pieces(std::move(pieces), label);
  if (!t) return t.error();
  const auto n = static_cast<std::int64_t>(t->size());
  auto id = [&](const char* key, std::int32_t& out) -> Result<void> {
    const GgufValue* v = g.find(key);
    if (!v) return {};
    const auto i = v->as_int();
    if (!i || *i < 0 || *i >= n) return Error::format(label + ": " + key + " is not a token id: " + v->to_display_string());
    out = static_cast<std::int32_t>(*i);
    return {};
  };
  for (auto [key, out] : {std::pair{"tokenizer.ggml.bos_token_id", &t->bos_}, std::pair{"tokenizer.ggml.eos_token_id", &t->eos_},
                          std::pair{"tokenizer.ggml.unknown_token_id", &t->unk_}})
    if (auto r = id(key, *out); !r) return r.error();
  auto flag = [&](const char* key, bool& out) {
    if (const GgufValue* v = g.find(key))
      if (const bool* b = std::get_if<bool>(&v->v)) out = *b;
  };
  flag("tokenizer.ggml.add_bos_token", t->add_bos_);
  flag("tokenizer.ggml.add_space_prefix", t->add_space_prefix_);
  return t;
}

namespace {
// A member of a JSON object when it has the wanted type, else `fallback`:
// json::value() throws on a member of another type, and these files are input.
std::string string_member(const nlohmann::json& obj, const char* key) {
  const auto it = obj.find(key);
  return it != obj.end() && it->is_string() ? it->get<std::string>() : std::string();
}
bool bool_member(const nlohmann::json& obj, const char* key, bool fallback) {
  const auto it = obj.find(key);
  return it != obj.end() && it->is_boolean() ? it->get<bool>() : fallback;
}
// The Unicode forms (NFC, NFKC, ...) of a metaspace tokenizer.json's normalizer,
// collapsed to one. The Prepend / Replace steps that make the metaspace are
// what encode_text does anyway; other steps stay unread, as before.
void find_unicode_form(const nlohmann::json& n, std::optional<UnicodeForm>& form, int depth = 0) {
  if (!n.is_object() || depth > 8) return;
  if (const auto f = unicode_form_named(string_member(n, "type"))) form = unicode_form_after(form, *f);
  if (const auto it = n.find("normalizers"); it != n.end() && it->is_array())
    for (const auto& m : *it) find_unicode_form(m, form, depth + 1);
}
}  // namespace

Result<SpmTokenizer> SpmTokenizer::from_hf_tokenizer_json(const std::string& path) {
  auto text = read_text_file(path, std::size_t{256} << 20);
  if (!text) return text.error();
  if (auto r = check_json_depth(*text, path); !r) return r.error();
  const auto j = nlohmann::json::parse(*text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return Error::format(path + ": not a JSON object");
  const auto model = j.find("model");
  if (model == j.end() || !model->is_object() || string_member(*model, "type") != "BPE")
    return Error::unsupported(path + ": only BPE tokenizer.json models are supported");
  // Metaspace BPE (Llama-2, Mistral): the normalizer prepends "▁" and turns spaces into "▁"
  // (or a Metaspace pre-tokenizer does); byte-level BPE maps bytes to printable characters instead.
  const std::string dump = j.value("normalizer", nlohmann::json()).dump() + j.value("pre_tokenizer", nlohmann::json()).dump();
  if (dump.find("\xE2\x96\x81") == std::string::npos || dump.find("ByteLevel") != std::string::npos)
    return Error::unsupported(path + ": byte-level BPE (GPT-2 / Llama-3 / Qwen2 style) is not supported yet; "
                              "only SentencePiece-style metaspace BPE");
  const auto vocab = model->find("vocab");
  const auto merges = model->find("merges");
  if (vocab == model->end() || !vocab->is_object() || merges == model->end() || !merges->is_array())
    return Error::format(path + ": model.vocab must be an object and model.merges an array");
  std::vector<SpmPiece> pieces(vocab->size());
  std::vector<bool> seen(pieces.size(), false);
  for (const auto& [piece, id] : vocab->items()) {
    if (!id.is_number_integer() || id.get<std::int64_t>() < 0 || id.get<std::uint64_t>() >= pieces.size())
      return Error::format(path + ": vocab id of '" + piece + "' is not in 0.." + std::to_string(pieces.size() - 1));
    const auto i = id.get<std::size_t>();
    if (seen[i]) return Error::format(path + ": vocab id " + std::to_string(i) + " is used twice");
    seen[i] = true;
    pieces[i].piece = piece;
    pieces[i].score = -static_cast<float>(i);
    pieces[i].type = parse_byte_piece(piece) >= 0 ? SpmPieceType::Byte : SpmPieceType::Normal;
  }
  const std::string unk = string_member(*model, "unk_token");
  if (const auto added = j.find("added_tokens"); added != j.end() && added->is_array())
    for (const auto& a : *added) {
      if (!a.is_object() || !a.contains("id") || !a["id"].is_number_integer()) continue;
      const auto id = a["id"].get<std::int64_t>();
      if (id < 0 || static_cast<std::uint64_t>(id) >= pieces.size()) continue;
      SpmPiece& p = pieces[static_cast<std::size_t>(id)];
      if (a.contains("content") && a["content"].is_string()) p.piece = a["content"].get<std::string>();
      p.type = p.piece == unk ? SpmPieceType::Unknown
               : bool_member(a, "special", false) ? SpmPieceType::Control : SpmPieceType::UserDefined;
    }
  auto t = from_pieces(std::move(pieces), path);
  if (!t) return t.error();
  if (const auto n = j.find("normalizer"); n != j.end()) find_unicode_form(*n, t->normalizer_);
  std::int32_t rank = 0;
  for (const auto& mg : *merges) {
    std::string left, right;
    if (mg.is_string()) {  // "left right"
      const std::string m = mg.get<std::string>();
      const auto sp = m.find(' ');
      if (sp == std::string::npos) return Error::format(path + ": merge '" + m + "' is not 'left right'");
      left = m.substr(0, sp);
      right = m.substr(sp + 1);
    } else if (mg.is_array() && mg.size() == 2 && mg[0].is_string() && mg[1].is_string()) {  // ["left", "right"]
      left = mg[0].get<std::string>();
      right = mg[1].get<std::string>();
    } else {
      return Error::format(path + ": merge " + std::to_string(rank) + " is neither 'left right' nor a pair");
    }
    left.push_back('\0');
    left.append(right);
    t->merge_rank_.emplace(std::move(left), rank++);  // the first listing of a pair wins
  }
  if (t->merge_rank_.empty()) t->merge_rank_.emplace(std::string(1, '\0'), 0);  // keep BPE mode with no merges
  return t;
}

Result<SpmTokenizer> SpmTokenizer::for_model(const Model& m) {
  if (m.gguf) return from_gguf(*m.gguf, m.path);
  namespace fs = std::filesystem;
  std::error_code ec;
  const fs::path dir = fs::is_directory(m.path, ec) ? fs::path(m.path) : fs::path(m.path).parent_path();
  const fs::path model_file = dir / "tokenizer.model", json_file = dir / "tokenizer.json";
  Result<SpmTokenizer> t = Error::unsupported(m.path + ": no tokenizer.model or tokenizer.json next to the weights");
  if (fs::exists(model_file, ec)) t = from_spm_file(model_file.string());
  else if (fs::exists(json_file, ec)) t = from_hf_tokenizer_json(json_file.string());
  if (!t) return t.error();
  auto add_bos = read_add_bos_token((dir / "tokenizer_config.json").string());
  if (!add_bos) return add_bos.error();
  if (*add_bos) t->add_bos_ = **add_bos;
  return t;
}

Result<std::optional<bool>> read_add_bos_token(const std::string& tokenizer_config_path) {
  std::error_code ec;
  if (!std::filesystem::exists(tokenizer_config_path, ec)) return std::optional<bool>();
  auto text = read_text_file(tokenizer_config_path, std::size_t{16} << 20);
  if (!text) return text.error();
  if (auto r = check_json_depth(*text, tokenizer_config_path); !r) return r.error();
  auto j = nlohmann::json::parse(*text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return Error::format(tokenizer_config_path + ": not a JSON object");
  if (auto it = j.find("add_bos_token"); it != j.end() && it->is_boolean()) return std::optional<bool>(it->get<bool>());
  return std::optional<bool>();
}

std::int32_t SpmTokenizer::find(std::string_view piece) const {
  const auto it = ids_.find(std::string(piece));
  return it == ids_.end() ? -1 : it->second;
}

std::vector<std::int32_t> SpmTokenizer::encode(std::string_view text, bool add_bos) const {
  std::vector<std::int32_t> out;
  if (add_bos) out.push_back(bos_);
  std::string collapsed;
  if (remove_extra_whitespaces_) {
    // sentencepiece's rule: only U+0020 counts (tabs and newlines stay).
    collapsed.reserve(text.size());
    for (const char c : text)
      if (c != ' ' || (!collapsed.empty() && collapsed.back() != ' ')) collapsed.push_back(c);
    if (!collapsed.empty() && collapsed.back() == ' ') collapsed.pop_back();
    text = collapsed;
  }
  if (text.empty()) return out;
  // User-defined pieces are matched in the raw text first (longest first), as
  // llama.cpp does even when special tokens are not parsed; the text between
  // them is tokenized piece by piece, with the space prefix after each one.
  struct Fragment {
    std::string_view text;
    std::int32_t token = -1;  // >= 0: a user-defined piece
  };
  std::vector<Fragment> frags{{text, -1}};
  for (const std::int32_t id : user_defined_) {
    const std::string& p = pieces_[static_cast<std::size_t>(id)].piece;
    std::vector<Fragment> next;
    for (const Fragment& f : frags) {
      if (f.token >= 0) {
        next.push_back(f);
        continue;
      }
      std::size_t from = 0;
      for (std::size_t at; (at = f.text.find(p, from)) != std::string_view::npos; from = at + p.size()) {
        if (at > from) next.push_back({f.text.substr(from, at - from), -1});
        next.push_back({{}, id});
      }
      if (from < f.text.size()) next.push_back({f.text.substr(from), -1});
    }
    frags = std::move(next);
  }
  bool prev_special = true;
  for (const Fragment& f : frags) {
    if (f.token >= 0) {
      out.push_back(f.token);
      prev_special = true;
    } else {
      encode_text(f.text, add_space_prefix_ && prev_special, out);
      prev_special = false;
    }
  }
  return out;
}

void SpmTokenizer::encode_text(std::string_view text, bool space_prefix, std::vector<std::int32_t>& out) const {
  // Normalise: the Unicode form tokenizer.json asks for, a leading space, then every space as "▁".
  std::string unicode;
  if (normalizer_) {
    unicode = normalize_unicode(text, *normalizer_);
    text = unicode;
  }
  std::string s;
  s.reserve(text.size() + text.size() / 2 + 3);
  if (space_prefix) s.append(kSpace);
  for (char c : text) {
    if (c == ' ') s.append(kSpace);
    else s.push_back(c);
  }

  if (s.empty()) return;
  // One symbol per UTF-8 character, linked in order.
  std::vector<Symbol> sym;
  sym.reserve(s.size());
  for (std::size_t off = 0; off < s.size();) {
    Symbol y;
    y.start = off;
    y.n = std::min(utf8_len(static_cast<unsigned char>(s[off])), s.size() - off);
    off += y.n;
    y.prev = static_cast<int>(sym.size()) - 1;
    y.next = off == s.size() ? -1 : static_cast<int>(sym.size()) + 1;
    sym.push_back(y);
  }

  std::priority_queue<Bigram, std::vector<Bigram>, BigramOrder> queue;
  std::string scratch;
  auto try_pair = [&](int left, int right) {
    if (left < 0 || right < 0) return;
    const Symbol& l = sym[static_cast<std::size_t>(left)];
    const Symbol& r = sym[static_cast<std::size_t>(right)];
    scratch.assign(s, l.start, l.n + r.n);  // adjacent symbols are contiguous bytes
    if (!merge_rank_.empty()) {  // BPE: the pair's merge rank decides
      std::string key(s, l.start, l.n);
      key.push_back('\0');
      key.append(s, r.start, r.n);
      const auto m = merge_rank_.find(key);
      if (m == merge_rank_.end() || !ids_.count(scratch)) return;
      queue.push({left, right, -static_cast<float>(m->second), scratch.size()});
      return;
    }
    const auto it = ids_.find(scratch);
    if (it == ids_.end()) return;
    queue.push({left, right, pieces_[static_cast<std::size_t>(it->second)].score, scratch.size()});
  };
  for (int i = 1; i < static_cast<int>(sym.size()); ++i) try_pair(i - 1, i);

  while (!queue.empty()) {
    const Bigram b = queue.top();
    queue.pop();
    Symbol& l = sym[static_cast<std::size_t>(b.left)];
    Symbol& r = sym[static_cast<std::size_t>(b.right)];
    if (l.n == 0 || r.n == 0 || l.n + r.n != b.size) continue;  // one side changed since it was queued
    l.n += r.n;
    r.n = 0;
    l.next = r.next;
    if (r.next >= 0) sym[static_cast<std::size_t>(r.next)].prev = b.left;
    try_pair(l.prev, b.left);
    try_pair(b.left, l.next);
  }

  for (int i = 0; i >= 0; i = sym[static_cast<std::size_t>(i)].next) {
    const Symbol& y = sym[static_cast<std::size_t>(i)];
    scratch.assign(s, y.start, y.n);
    if (const auto it = ids_.find(scratch); it != ids_.end()) {
      out.push_back(it->second);
      continue;
    }
    for (std::size_t k = 0; k < y.n; ++k) {  // byte fallback
      const std::int32_t id = byte_ids_[static_cast<unsigned char>(s[y.start + k])];
      out.push_back(id >= 0 ? id : unk_);
    }
  }
}

std::string SpmTokenizer::piece_text(std::int32_t id) const {
  if (id < 0 || static_cast<std::size_t>(id) >= pieces_.size()) return {};
  const SpmPiece& p = pieces_[static_cast<std::size_t>(id)];
  switch (p.type) {
    case SpmPieceType::Control:
    case SpmPieceType::Unused:
      return {};
    case SpmPieceType::Byte: {
      const int b = parse_byte_piece(p.piece);
      return b < 0 ? std::string() : std::string(1, static_cast<char>(b));
    }
    default: {
      std::string out;
      out.reserve(p.piece.size());
      for (std::size_t i = 0; i < p.piece.size();) {
        if (p.piece.compare(i, kSpace.size(), kSpace) == 0) {
          out.push_back(' ');
          i += kSpace.size();
        } else {
          out.push_back(p.piece[i++]);
        }
      }
      return out;
    }
  }
}

std::string SpmTokenizer::decode(std::span<const std::int32_t> ids) const {
  std::string out;
  bool first = true;
  for (const std::int32_t id : ids) {
    std::string piece = piece_text(id);
    if (piece.empty()) continue;
    if (first && add_space_prefix_ && piece[0] == ' ') piece.erase(0, 1);
    first = false;
    out.append(piece);
  }
  return out;
}

}  // namespace qs
