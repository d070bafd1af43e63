#pragma once
// A guard run before any JSON text is parsed: nlohmann::json builds, dumps
// and walks nested values recursively, so a file of a few hundred kilobytes
// of "[[[[…" overflows the stack. Real configs, tokenizers and plans nest a
// handful of levels; anything deeper than kMaxJsonDepth is refused with the
// file named, before the parser sees it.
#include <cstddef>
#include <string>
#include <string_view>

#include "util/result.h"

namespace qs {

inline constexpr int kMaxJsonDepth = 128;

// The deepest nesting of objects and arrays in `text` (strings skipped, their
// escapes honoured); one pass, no recursion, however malformed the text is.
int json_nesting_depth(std::string_view text);

// An error naming `what` (a path, "plan.json") when `text` nests deeper than kMaxJsonDepth.
Result<void> check_json_depth(std::string_view text, const std::string& what);

}  // namespace qs
