#pragma once
// Byte-level BPE tokenizer (GPT-2, Llama-3, Qwen2, StarCoder, Falcon, DeepSeek
// style) as Hugging Face tokenizers runs it:
//  1. added / special tokens are cut out of the raw text first (longest match);
//  2. the text between them is split by the model's pre-tokenizer regexes;
//  3. each piece's bytes become printable characters (GPT-2's byte -> unicode
//     table: ' ' is "Ġ", '\n' is "Ċ", é's two bytes are "Ã©");
//  4. the characters are merged pair by pair, lowest merge rank first (leftmost
//     among equal ranks), and the resulting strings are the token ids.
// Vocabularies come from tokenizer.json (model.type "BPE" with a ByteLevel
// pre-tokenizer or decoder) or from GGUF metadata (tokenizer.ggml.model "gpt2",
// with tokenizer.ggml.pre naming the pre-tokenizer, as llama.cpp writes it).
#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "calib/regex_split.h"
#include "calib/unicode_normalize.h"
#include "util/result.h"

namespace qs {

struct GgufFile;

// The pre-tokenization patterns a few model families use (Hugging Face's
// tokenizer.json carries them; GGUF only names them).
inline constexpr std::string_view kGpt2Pattern =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";
inline constexpr std::string_view kLlama3Pattern =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
inline constexpr std::string_view kQwen2Pattern =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

class BpeTokenizer {
 public:
  enum class TokenKind : std::uint8_t { Normal, Control, UserDefined, Unused };
  struct Token {
    std::string text;  // byte-level string for Normal tokens; raw text for added ones
    TokenKind kind = TokenKind::Normal;
  };
  // One pre-tokenization step, applied to every piece the previous one left.
  struct PreStep {
    RegexSplit split;            // unused when prefix_space
    bool prefix_space = false;   // ByteLevel add_prefix_space: a ' ' before each piece lacking one
    bool after_byte_level = false;  // splits the byte-level spelling (a step after ByteLevel in a Sequence)
  };

  // tokenizer.json of the byte-level kind (see is_byte_level_tokenizer_json).
  static Result<BpeTokenizer> from_hf_tokenizer_json(const std::string& path);
  // The same from the file's text; `label` starts every error message.
  static Result<BpeTokenizer> from_hf_tokenizer_json_text(std::string_view text, const std::string& label);
  // Whether a tokenizer.json is byte-level BPE (a ByteLevel pre-tokenizer or decoder).
  static Result<bool> is_byte_level_tokenizer_json(const std::string& path);
  // tokenizer.ggml.model must be "gpt2"; tokenizer.ggml.pre picks the regexes
  // (absent: GPT-2's). bos/eos/unk ids and add_bos_token from the metadata.
  static Result<BpeTokenizer> from_gguf(const GgufFile& g, const std::string& label);
  // From parts (both loaders): tokens in id order, merges (left, right) in rank order.
  using MergePair = std::pair<std::string_view, std::string_view>;
  static Result<BpeTokenizer> from_parts(std::vector<Token> tokens, std::span<const MergePair> merges,
                                         std::vector<PreStep> pre, const std::string& label);
  // The regex steps for a tokenizer.ggml.pre name; an unknown name is an error naming it.
  static Result<std::vector<PreStep>> pre_steps_for(std::string_view pre_name, const std::string& label);

  // add_bos_token and bos_token / eos_token of a tokenizer_config.json.
  Result<void> apply_tokenizer_config(const std::string& path);

  // Token ids of `text`; BOS first when add_bos.
  std::vector<std::int32_t> encode(std::string_view text, bool add_bos) const;
  // Bytes of ids: Control and Unused tokens dropped, added tokens as their text.
  std::string decode(std::span<const std::int32_t> ids) const;
  std::string piece_text(std::int32_t id) const;

  std::size_t size() const { return tokens_.size(); }
  const Token& token(std::int32_t id) const { return tokens_[static_cast<std::size_t>(id)]; }
  std::int32_t bos_id() const { return bos_; }
  std::int32_t eos_id() const { return eos_; }
  bool add_bos() const { return add_bos_; }
  bool ignore_merges() const { return ignore_merges_; }
  std::int32_t find(std::string_view text) const;  // -1 when absent
  std::size_t merge_count() const { return merges_.size(); }
  // The Unicode form tokenizer.json's normalizer applies before pre-tokenization
  // (nullopt: none; always none from GGUF, which records no normalizer).
  std::optional<UnicodeForm> normalizer() const { return normalizer_; }

 private:
  struct Merge {
    std::int32_t rank = 0, result = 0;
  };
  struct Fragment {
    std::string_view text;
    std::int32_t token = -1;  // >= 0: an added token cut out of the text
  };
  std::vector<Fragment> split_added(std::string_view text) const;
  void encode_word(std::string_view word, std::vector<std::int32_t>& out,
                   std::unordered_map<std::string, std::vector<std::int32_t>>& cache) const;

  std::vector<Token> tokens_;
  std::unordered_map<std::string, std::int32_t> ids_;       // Normal tokens by byte-level text
  std::unordered_map<std::uint64_t, Merge> merges_;         // (left id << 32 | right id) -> rank, result
  std::array<std::vector<std::int32_t>, 256> added_;        // Control + UserDefined ids by first byte, longest first
  std::array<std::int32_t, 256> byte_ids_{};                // the one-character token of each byte, -1 absent
  std::vector<PreStep> pre_;
  std::optional<UnicodeForm> normalizer_;
  std::int32_t bos_ = -1, eos_ = -1, unk_ = -1;
  bool add_bos_ = false, ignore_merges_ = false;
};

}  // namespace qs
