#include "util/name_regex.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

namespace qs {
namespace {
// Layer names are short; a legitimate pattern needs a tiny fraction of these.
constexpr std::uint32_t kMatchLimit = 1'000'000;
constexpr std::uint32_t kDepthLimit = 10'000;
constexpr std::uint32_t kHeapLimitKiB = 64 * 1024;  // backtracking memory of one match
}  // namespace

struct NameRegex::Code {
  pcre2_code* code = nullptr;
  pcre2_match_context* context = nullptr;
  Code(pcre2_code* c, pcre2_match_context* m) : code(c), context(m) {}
  ~Code() {
    pcre2_match_context_free(context);
    pcre2_code_free(code);
  }
  Code(const Code&) = delete;
  Code& operator=(const Code&) = delete;
};

Result<NameRegex> NameRegex::compile(const std::string& pattern, const std::string& where) {
  if (pattern.size() > kMaxNamePatternBytes)
    return Error::invalid(where + ": regular expression of " + std::to_string(pattern.size()) + " bytes (at most " +
                          std::to_string(kMaxNamePatternBytes) + ")");
  int err = 0;
  PCRE2_SIZE err_at = 0;
  pcre2_code* code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(),
                                   PCRE2_UTF | PCRE2_MATCH_INVALID_UTF, &err, &err_at, nullptr);
  if (!code) {
    PCRE2_UCHAR msg[256];
    pcre2_get_error_message(err, msg, sizeof msg);
    return Error::invalid(where + ": invalid regular expression at offset " + std::to_string(err_at) + ": " +
                          reinterpret_cast<const char*>(msg));
  }
  pcre2_match_context* context = pcre2_match_context_create(nullptr);
  if (!context) {
    pcre2_code_free(code);
    return Error::invalid(where + ": out of memory compiling the regular expression");
  }
  pcre2_set_match_limit(context, kMatchLimit);
  pcre2_set_depth_limit(context, kDepthLimit);
  pcre2_set_heap_limit(context, kHeapLimitKiB);
  NameRegex r;
  r.code_ = std::make_shared<const Code>(code, context);
  r.pattern_ = pattern;
  r.where_ = where;
  return r;
}

Result<bool> NameRegex::search(std::string_view name) const {
  pcre2_match_data* md = pcre2_match_data_create_from_pattern(code_->code, nullptr);
  if (!md) return Error::invalid(where_ + ": out of memory matching the regular expression");
  const int rc = pcre2_match(code_->code, reinterpret_cast<PCRE2_SPTR>(name.data()), name.size(), 0, 0, md, code_->context);
  pcre2_match_data_free(md);
  if (rc >= 0) return true;
  if (rc == PCRE2_ERROR_NOMATCH) return false;
  PCRE2_UCHAR msg[256];
  pcre2_get_error_message(rc, msg, sizeof msg);
  return Error::invalid(where_ + ": the regular expression \"" + pattern_ + "\" cannot be matched against " +
                        std::string(name) + ": " + reinterpret_cast<const char*>(msg));
}

}  // namespace qs
