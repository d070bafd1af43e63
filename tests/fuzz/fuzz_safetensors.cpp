// libFuzzer target: the safetensors header parser on arbitrary bytes.
#include <cstddef>
#include <cstdint>
#include <span>

#include "io/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  auto r = qs::parse_safetensors_header({reinterpret_cast<const std::byte*>(data), size}, "fuzz");
  if (r) {
    // A header we accept must describe tensors that lie inside the input.
    for (const auto& e : r->entries)
      if (r->data_start + e.end > size) __builtin_trap();
  }
  return 0;
}
