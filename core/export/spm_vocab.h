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

// Parses the pieces of a serialised ModelProto; `label` starts every error.
Result<std::vector<SpmPiece>> parse_spm_vocab(std::span<const std::byte> bytes, const std::string& label);
Result<std::vector<SpmPiece>> read_spm_vocab(const std::string& path);

}  // namespace qs
