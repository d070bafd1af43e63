// libFuzzer target: plan.json (parse_plan: schema, formats, methods, params
// and their ranges, PCRE2 regexes under limits). What is accepted writes back
// to JSON that parses to the same plan.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "quant/plan.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto plan = qs::parse_plan(text, "fuzz");
  if (!plan) return 0;
  auto again = qs::parse_plan(qs::plan_to_json(*plan), "fuzz-again");
  if (!again || !(*again == *plan)) __builtin_trap();
  return 0;
}
