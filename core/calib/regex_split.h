#pragma once
// One pre-tokenization step of a byte-level BPE tokenizer: a PCRE2 regular
// expression (UTF-8, Unicode properties for \p{L}, \p{N}, \s) that cuts a piece
// of text into its matches and the gaps between them, both kept ("Isolated" in
// Hugging Face tokenizers' Split). Invalid UTF-8 never matches, so stray bytes
// end up in the gaps instead of stopping the match.
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "util/result.h"

namespace qs {

class RegexSplit {
 public:
  // `literal`: the pattern is plain text (a Split with a String pattern).
  // `label` starts the error message when the pattern does not compile.
  static Result<RegexSplit> compile(const std::string& pattern, bool literal, const std::string& label);

  // Appends the pieces of `text` to `out` in order; their concatenation is `text`.
  void split(std::string_view text, std::vector<std::string_view>& out) const;

  const std::string& pattern() const { return pattern_; }

 private:
  struct Code;  // pcre2_code, freed once no copy uses it
  std::shared_ptr<const Code> code_;
  std::string pattern_;
};

}  // namespace qs
