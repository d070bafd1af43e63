// libFuzzer target: the GGUF parser and the metadata -> architecture mapping.
#include <cstddef>
#include <cstdint>

#include "io/gguf.h"
#include "io/gguf_model.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  auto g = qs::parse_gguf({reinterpret_cast<const std::byte*>(data), size}, "fuzz");
  if (!g) return 0;
  for (const auto& t : g->tensors)
    if (t.offset + t.nbytes > size) __builtin_trap();  // accepted tensors lie inside the input
  for (const auto& kv : g->metadata) (void)kv.second.to_display_string();
  (void)qs::arch_from_gguf(*g, "fuzz");
  return 0;
}
