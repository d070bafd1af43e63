#include "util/json_depth.h"

#include <algorithm>

namespace qs {

int json_nesting_depth(std::string_view text) {
  int depth = 0, deepest = 0;
  bool in_string = false, escaped = false;
  for (const char c : text) {
    if (in_string) {
      if (escaped) escaped = false;
      else if (c == '\\') escaped = true;
      else if (c == '"') in_string = false;
      continue;
    }
    if (c == '"') in_string = true;
    else if (c == '{' || c == '[') deepest = std::max(deepest, ++depth);
    else if ((c == '}' || c == ']') && depth > 0) --depth;
  }
  return deepest;
}

Result<void> check_json_depth(std::string_view text, const std::string& what) {
  if (const int d = json_nesting_depth(text); d > kMaxJsonDepth)
    return Error::format(what + ": JSON nested " + std::to_string(d) + " levels deep (more than " +
                         std::to_string(kMaxJsonDepth) + "): not a file QuantScope reads");
  return {};
}

}  // namespace qs
