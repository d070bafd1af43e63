#pragma once
// The tokenizer of a model, whichever kind its files hold: SentencePiece-style
// (Llama-2 / Mistral: tokenizer.model, metaspace tokenizer.json, GGUF "llama")
// or byte-level BPE (GPT-2 / Llama-3 / Qwen2: byte-level tokenizer.json, GGUF
// "gpt2"). Calibration, perplexity and eval go through this. A tokenizer.model
// goes through libsentencepiece when the build has it (QS_HAVE_SENTENCEPIECE,
// a public definition of qs_core so every user sees the same layout).
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "calib/bpe_tokenizer.h"
#include "calib/spm_tokenizer.h"
#ifdef QS_HAVE_SENTENCEPIECE
#include "calib/sentencepiece_tokenizer.h"
#endif
#include "util/result.h"

namespace qs {

struct Model;

class Tokenizer {
 public:
  explicit Tokenizer(SpmTokenizer t) : impl_(std::move(t)) {}
  explicit Tokenizer(BpeTokenizer t) : impl_(std::move(t)) {}
#ifdef QS_HAVE_SENTENCEPIECE
  explicit Tokenizer(SentencePieceTokenizer t) : impl_(std::move(t)) {}
#endif

  // GGUF: by tokenizer.ggml.model ("llama" SPM, "gpt2" byte-level BPE). HF
  // directory: tokenizer.model if present (libsentencepiece when built with it,
  // else our SPM reading; add_bos_token from tokenizer_config.json), else tokenizer.json — byte-level
  // BPE when it says ByteLevel (with tokenizer_config.json's BOS settings),
  // otherwise the SPM reading of it.
  static Result<Tokenizer> for_model(const Model& m);

  std::vector<std::int32_t> encode(std::string_view text, bool add_bos) const {
    return std::visit([&](const auto& t) { return t.encode(text, add_bos); }, impl_);
  }
  std::string decode(std::span<const std::int32_t> ids) const {
    return std::visit([&](const auto& t) { return t.decode(ids); }, impl_);
  }
  std::string piece_text(std::int32_t id) const {
    return std::visit([&](const auto& t) { return t.piece_text(id); }, impl_);
  }
  std::size_t size() const { return std::visit([](const auto& t) { return t.size(); }, impl_); }
  std::int32_t bos_id() const { return std::visit([](const auto& t) { return t.bos_id(); }, impl_); }
  std::int32_t eos_id() const { return std::visit([](const auto& t) { return t.eos_id(); }, impl_); }
  bool add_bos() const { return std::visit([](const auto& t) { return t.add_bos(); }, impl_); }
  bool is_byte_level() const { return std::holds_alternative<BpeTokenizer>(impl_); }
  const SpmTokenizer* spm() const { return std::get_if<SpmTokenizer>(&impl_); }
  const BpeTokenizer* bpe() const { return std::get_if<BpeTokenizer>(&impl_); }
#ifdef QS_HAVE_SENTENCEPIECE
  const SentencePieceTokenizer* sentencepiece() const { return std::get_if<SentencePieceTokenizer>(&impl_); }
#endif

 private:
#ifdef QS_HAVE_SENTENCEPIECE
  std::variant<SpmTokenizer, BpeTokenizer, SentencePieceTokenizer> impl_;
#else
  std::variant<SpmTokenizer, BpeTokenizer> impl_;
#endif
};

}  // namespace qs
