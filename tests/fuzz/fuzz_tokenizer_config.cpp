// libFuzzer target: tokenizer_config.json as both tokenizers read it
// (add_bos_token; bos/eos as strings or AddedToken objects), from a file as in
// use: the input lives in a memfd whose /proc path is what the readers open.
#include <sys/mman.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "calib/bpe_tokenizer.h"
#include "calib/spm_tokenizer.h"

namespace {

// A small byte-level BPE vocabulary to apply the configs to (from the seed corpus).
const qs::BpeTokenizer& base_tokenizer() {
  static const qs::BpeTokenizer t = [] {
    auto b = qs::BpeTokenizer::from_hf_tokenizer_json(QS_FUZZ_CORPUS "/bpe_tokenizer/gpt2_style.json");
    if (!b) {
      std::fprintf(stderr, "fuzz_tokenizer_config: %s\n", b.error().message.c_str());
      std::abort();
    }
    return std::move(*b);
  }();
  return t;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const int fd = ::memfd_create("tokenizer_config.json", 0);
  static const std::string path = "/proc/self/fd/" + std::to_string(fd);
  if (fd < 0 || ::ftruncate(fd, 0) != 0 || ::pwrite(fd, data, size, 0) != static_cast<ssize_t>(size)) std::abort();
  (void)qs::read_add_bos_token(path);
  qs::BpeTokenizer t = base_tokenizer();
  if (t.apply_tokenizer_config(path) && t.add_bos() && t.bos_id() < 0) __builtin_trap();  // accepted: a BOS exists
  return 0;
}
