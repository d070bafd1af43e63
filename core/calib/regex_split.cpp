#include "calib/regex_split.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

namespace qs {

struct RegexSplit::Code {
  pcre2_code* code = nullptr;
  explicit Code(pcre2_code* c) : code(c) {}
  ~Code() { pcre2_code_free(code); }
  Code(const Code&) = delete;
  Code& operator=(const Code&) = delete;
};

Result<RegexSplit> RegexSplit::compile(const std::string& pattern, bool literal, const std::string& label) {
  // UCP: \s, \w and \d follow Unicode (as Oniguruma does for Hugging Face's patterns);
  // MATCH_INVALID_UTF: arbitrary bytes are legal subjects (they just never match).
  std::uint32_t options = PCRE2_UTF | PCRE2_UCP | PCRE2_MATCH_INVALID_UTF;
  if (literal) options |= PCRE2_LITERAL;
  int err = 0;
  PCRE2_SIZE err_at = 0;
  pcre2_code* code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(), options, &err, &err_at, nullptr);
  if (!code) {
    PCRE2_UCHAR msg[256];
    pcre2_get_error_message(err, msg, sizeof msg);
    return Error::format(label + ": pre-tokenizer regex does not compile at offset " + std::to_string(err_at) + " (" +
                         reinterpret_cast<const char*>(msg) + "): " + pattern);
  }
  pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);  // optional: the interpreter runs when JIT is unavailable
  RegexSplit r;
  r.code_ = std::make_shared<const Code>(code);
  r.pattern_ = pattern;
  return r;
}

void RegexSplit::split(std::string_view text, std::vector<std::string_view>& out) const {
  if (text.empty()) return;
  pcre2_match_data* md = pcre2_match_data_create_from_pattern(code_->code, nullptr);
  if (!md) {  // out of memory: keep the text whole rather than lose it
    out.push_back(text);
    return;
  }
  const auto* subject = reinterpret_cast<PCRE2_SPTR>(text.data());
  std::size_t gap = 0, at = 0;
  while (at < text.size()) {
    const int rc = pcre2_match(code_->code, subject, text.size(), at, 0, md, nullptr);
    if (rc < 0) break;  // no further match (or a matching error): the rest is one gap
    const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md);
    std::size_t b = ov[0], e = ov[1];
    if (e <= b) {  // an empty match cuts nothing; step over one character
      at = b + 1;
      while (at < text.size() && (static_cast<unsigned char>(text[at]) & 0xC0) == 0x80) ++at;
      continue;
    }
    if (b > gap) out.push_back(text.substr(gap, b - gap));
    out.push_back(text.substr(b, e - b));
    gap = at = e;
  }
  if (gap < text.size()) out.push_back(text.substr(gap));
  pcre2_match_data_free(md);
}

}  // namespace qs
