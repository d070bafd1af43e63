// libFuzzer target: SentencePiece tokenizer.model parsing (GGUF export reads it).
#include <cstddef>
#include <cstdint>
#include <span>

#include "export/spm_vocab.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  (void)qs::parse_spm_vocab(std::as_bytes(std::span(data, size)), "fuzz");
  return 0;
}
