// libFuzzer target: byte-level BPE tokenizer.json parsing, then encoding the
// same bytes as text (invalid UTF-8, added tokens, regex edge cases).
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "calib/bpe_tokenizer.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto t = qs::BpeTokenizer::from_hf_tokenizer_json_text(text, "fuzz");
  if (t) (void)t->decode(t->encode(text, true));
  return 0;
}
