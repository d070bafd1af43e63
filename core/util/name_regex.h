#pragma once
// A regular expression over layer names (a plan's "regex" selector), through
// PCRE2 with limits: a pattern of at most kMaxNamePatternBytes, PCRE2's own
// nesting limit at compile time, and match and depth limits at match time, so
// a hostile plan ("((((…a))))", catastrophic backtracking) is an error, never a
// stack overflow or a hang — std::regex recursed per group and crashed.
#include <memory>
#include <string>
#include <string_view>

#include "util/result.h"

namespace qs {

inline constexpr std::size_t kMaxNamePatternBytes = 4096;

class NameRegex {
 public:
  // `where` names the pattern's place in errors ("plan.overrides[2].match.regex").
  static Result<NameRegex> compile(const std::string& pattern, const std::string& where);
  // Whether the pattern matches anywhere in `name` (std::regex_search's meaning).
  Result<bool> search(std::string_view name) const;
  const std::string& pattern() const { return pattern_; }

 private:
  struct Code;
  std::shared_ptr<const Code> code_;
  std::string pattern_, where_;
};

}  // namespace qs
