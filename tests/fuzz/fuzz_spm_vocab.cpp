// libFuzzer target: SentencePiece tokenizer.model parsing (GGUF export and our
// own SPM tokenizer read it): the pieces and the normalizer spec.
#include <cstddef>
#include <cstdint>
#include <span>

#include "export/spm_vocab.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto bytes = std::as_bytes(std::span(data, size));
  (void)qs::parse_spm_vocab(bytes, "fuzz");
  (void)qs::parse_spm_normalizer_spec(bytes, "fuzz");
  return 0;
}
