#pragma once
// A tokenizer.model run by the SentencePiece library itself (Debian
// libsentencepiece-dev; compiled only when the build finds it, which defines
// QS_HAVE_SENTENCEPIECE). Unlike our own SpmTokenizer, which hard-codes
// Llama's behaviour, the library applies the model's normalizer spec
// (nmt_nfkc rules, add_dummy_prefix, remove_extra_whitespaces …), so it is the
// reference for any tokenizer.model. The library's headers stay out of this
// one: the processor is held behind a pointer.
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "util/result.h"

namespace sentencepiece {
class SentencePieceProcessor;
}

namespace qs {

class SentencePieceTokenizer {
 public:
  // Real tokenizer.model files are a few MiB; anything past this is refused
  // before it is read.
  static constexpr std::size_t kMaxFileBytes = std::size_t{256} << 20;

  // Errors (missing, oversized, truncated or garbage file) name `path`.
  static Result<SentencePieceTokenizer> from_file(const std::string& path);
  // A serialised ModelProto already in memory; `label` starts every error.
  static Result<SentencePieceTokenizer> from_bytes(std::string_view bytes, const std::string& label);

  // Token ids of `text` as the library encodes it; BOS first when add_bos
  // (and the model has a BOS piece).
  std::vector<std::int32_t> encode(std::string_view text, bool add_bos) const;
  // The library's decode; ids out of range are skipped.
  std::string decode(std::span<const std::int32_t> ids) const;
  // One token's text as it appears in output ("" for control and unused
  // tokens, the byte of a <0xXX> piece, "▁" as a space), as SpmTokenizer gives it.
  std::string piece_text(std::int32_t id) const;

  std::size_t size() const { return size_; }
  std::int32_t bos_id() const { return bos_; }
  std::int32_t eos_id() const { return eos_; }
  // The model file does not say whether to add BOS (the caller does): on
  // unless tokenizer_config.json's add_bos_token says otherwise, or there is no BOS piece.
  bool add_bos() const { return add_bos_; }
  void set_add_bos(bool on) { add_bos_ = on && bos_ >= 0; }

 private:
  std::shared_ptr<const sentencepiece::SentencePieceProcessor> sp_;  // shared: Encode is const
  std::size_t size_ = 0;
  std::int32_t bos_ = -1, eos_ = -1;
  bool add_bos_ = true;
};

}  // namespace qs
