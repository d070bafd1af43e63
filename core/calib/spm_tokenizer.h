#pragma once
// SentencePiece-style (SPM) tokenizer as llama.cpp runs it for Llama-2 /
// Mistral vocabularies: a leading space, spaces as U+2581 "▁", UTF-8
// characters merged greedily by piece score, <0xXX> byte pieces for what the
// vocabulary lacks. Vocabulary from tokenizer.model or from GGUF metadata
// (tokenizer.ggml.tokens / scores / token_type). User-defined pieces are
// matched in the raw text before that, as llama.cpp does. From tokenizer.model,
// the normalizer spec's add_dummy_prefix and remove_extra_whitespaces apply too
// (its precompiled rules, e.g. nmt_nfkc's, do not: docs/tokenizers.md).
#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "calib/unicode_normalize.h"
#include "export/spm_vocab.h"
#include "util/result.h"

namespace qs {

struct GgufFile;
struct Model;

// tokenizer_config.json's add_bos_token (nullopt when the file or the key is
// absent); errors name the file.
Result<std::optional<bool>> read_add_bos_token(const std::string& tokenizer_config_path);

// The byte of a byte-fallback piece "<0xXX>" (hex digits of either case), else -1.
int parse_byte_piece(std::string_view piece);

class SpmTokenizer {
 public:
  // From pieces in id order. BOS/EOS/UNK default to the pieces "<s>", "</s>"
  // and the first Unknown piece (else 1, 2, 0 as llama.cpp assumes for SPM).
  static Result<SpmTokenizer> from_pieces(std::vector<SpmPiece> pieces, const std::string& label);
  static Result<SpmTokenizer> from_spm_file(const std::string& path);  // tokenizer.model
  // tokenizer.ggml.model must be "llama" (SPM); bos/eos/unk ids, add_bos_token
  // and add_space_prefix come from the metadata when present.
  static Result<SpmTokenizer> from_gguf(const GgufFile& g, const std::string& label);
  // A Hugging Face tokenizer.json of the Llama-2 kind: BPE over "▁"-metaspace
  // text with byte fallback; merges applied by their rank (pair by pair), as
  // the tokenizers library does. Byte-level BPE (GPT-2/Llama-3) is Unsupported.
  static Result<SpmTokenizer> from_hf_tokenizer_json(const std::string& path);
  // The tokenizer of an opened model: GGUF metadata, or the HF directory's
  // tokenizer.model, else its tokenizer.json (add_bos_token from tokenizer_config.json).
  static Result<SpmTokenizer> for_model(const Model& m);

  // Token ids of `text`; BOS first when add_bos.
  std::vector<std::int32_t> encode(std::string_view text, bool add_bos) const;
  // Text of ids: control tokens dropped, byte pieces as their bytes, "▁" as
  // spaces, and the leading space of the first piece removed (as
  // sentencepiece's decode and llama2.c's output after BOS do).
  std::string decode(std::span<const std::int32_t> ids) const;
  // One token's text as it appears in output ("" for control tokens).
  std::string piece_text(std::int32_t id) const;

  std::size_t size() const { return pieces_.size(); }
  const SpmPiece& piece(std::int32_t id) const { return pieces_[static_cast<std::size_t>(id)]; }
  std::int32_t bos_id() const { return bos_; }
  std::int32_t eos_id() const { return eos_; }
  std::int32_t unk_id() const { return unk_; }
  bool add_bos() const { return add_bos_; }            // the model's default for encode
  bool add_space_prefix() const { return add_space_prefix_; }
  // tokenizer.model's remove_extra_whitespaces (never from GGUF or tokenizer.json):
  // leading and trailing spaces dropped, runs of spaces made one, as sentencepiece does.
  bool remove_extra_whitespaces() const { return remove_extra_whitespaces_; }
  std::int32_t find(std::string_view piece) const;     // -1 when absent
  // The Unicode form a metaspace tokenizer.json's normalizer applies (nullopt:
  // none, and always none from tokenizer.model or GGUF).
  std::optional<UnicodeForm> normalizer() const { return normalizer_; }

 private:
  void encode_text(std::string_view text, bool space_prefix, std::vector<std::int32_t>& out) const;

  std::vector<SpmPiece> pieces_;
  std::unordered_map<std::string, std::int32_t> ids_;
  std::array<std::int32_t, 256> byte_ids_{};  // <0xXX> pieces, -1 when absent
  std::vector<std::int32_t> user_defined_;     // UserDefined pieces, longest first
  // tokenizer.json BPE: rank of each merge, keyed "left\0right"; empty: merge by piece score
  std::unordered_map<std::string, std::int32_t> merge_rank_;
  std::optional<UnicodeForm> normalizer_;
  std::int32_t bos_ = 1, eos_ = 2, unk_ = 0;
  bool add_bos_ = true, add_space_prefix_ = true, remove_extra_whitespaces_ = false;
};

}  // namespace qs
