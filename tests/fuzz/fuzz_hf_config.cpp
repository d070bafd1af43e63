// libFuzzer target: config.json parsing.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "io/hf_config.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  (void)qs::parse_hf_config(std::string_view(reinterpret_cast<const char*>(data), size), "fuzz");
  return 0;
}
