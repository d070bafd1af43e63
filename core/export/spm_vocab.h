#pragma once
// The vocabulary of a SentencePiece model file (tokenizer.model): each piece,
// its score and its type, read straight from the protobuf wire format (no
// protobuf or sentencepiece library needed for this). GGUF stores exactly
// these three arrays for llama-style (SPM) tokenizers.
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "util/result.h"

namespace qs {

// sentencepiece's ModelProto.SentencePiece.Type; llama.cpp's token types use
// the same numbers (tokenizer.ggml.token_type).
enum class SpmPieceType : std::int32_t { Normal = 1, Unknown = 2, Control = 3, UserDefined = 4, Unused = 5, Byte = 6 };

struct SpmPiece {
  std::string piece;
  float score = 0;
  SpmPieceType type = SpmPieceType::Normal;
};

// ModelProto.normalizer_spec: what sentencepiece does to text before encoding
// (defaults are the proto's, for a model that leaves a field out).
struct SpmNormalizerSpec {
  std::string name;                 // "identity", "nmt_nfkc", … ("" when absent)
  bool has_charsmap = false;        // a precompiled_charsmap: rules only the library applies
  bool add_dummy_prefix = true;     // a "▁" in front of the text
  bool remove_extra_whitespaces = true;  // leading, trailing and repeated spaces dropped
};

// Parses the pieces of a serialised ModelProto; `label` starts every error.
Result<std::vector<SpmPiece>> parse_spm_vocab(std::span<const std::byte> bytes, const std::string& label);
Result<std::vector<SpmPiece>> read_spm_vocab(const std::string& path);
// The normalizer spec of a serialised ModelProto.
Result<SpmNormalizerSpec> parse_spm_normalizer_spec(std::span<const std::byte> bytes, const std::string& label);

}  // namespace qs
