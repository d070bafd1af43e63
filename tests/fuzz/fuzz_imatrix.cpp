// libFuzzer target: importance matrices (llama-imatrix's legacy binary layout
// and the GGUF one): no crash, no huge allocation, and what is accepted holds
// only finite, non-negative values.
#include <cmath>
#include <cstddef>
#include <cstdint>

#include "io/imatrix_file.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  auto m = qs::parse_imatrix({reinterpret_cast<const std::byte*>(data), size}, "fuzz");
  if (!m) return 0;
  for (const auto& [name, v] : m->columns)
    for (float x : v)
      if (!std::isfinite(x) || x < 0) __builtin_trap();
  return 0;
}
