#include "calib/unicode_normalize.h"

#include <utf8proc.h>

#include <cstdlib>

namespace qs {

namespace {

// A piece is cut at the first safe character after kPiece bytes. Past
// kMaxPiece without one (hostile text: megabytes of marks, or of a script with
// no space), it is cut before any starter; that can only differ from a whole-
// text normalization at a rare starter-starter composition across the cut.
constexpr std::size_t kPiece = std::size_t{64} << 10;
constexpr std::size_t kMaxPiece = std::size_t{1} << 20;

// Starters that nothing before them combines with and that decompose to a
// starter: ASCII, CJK unified ideographs, Hangul syllables. Canonical
// reordering stops at a starter, so the text on each side normalizes alone.
bool never_combines_backwards(utf8proc_int32_t cp) {
  return cp < 0x80 || (cp >= 0x4E00 && cp <= 0x9FFF) || (cp >= 0xAC00 && cp <= 0xD7A3);
}

// The fallback cut: a starter, and not a Hangul vowel or final jamo (which
// compose with the syllable before them).
bool is_plain_starter(utf8proc_int32_t cp) {
  return utf8proc_get_property(cp)->combining_class == 0 && !(cp >= 0x1161 && cp <= 0x11C2);
}

utf8proc_option_t options_for(UnicodeForm f) {
  switch (f) {
    case UnicodeForm::NFC: return static_cast<utf8proc_option_t>(UTF8PROC_STABLE | UTF8PROC_COMPOSE);
    case UnicodeForm::NFD: return static_cast<utf8proc_option_t>(UTF8PROC_STABLE | UTF8PROC_DECOMPOSE);
    case UnicodeForm::NFKC: return static_cast<utf8proc_option_t>(UTF8PROC_STABLE | UTF8PROC_COMPOSE | UTF8PROC_COMPAT);
    case UnicodeForm::NFKD: return static_cast<utf8proc_option_t>(UTF8PROC_STABLE | UTF8PROC_DECOMPOSE | UTF8PROC_COMPAT);
  }
  return UTF8PROC_STABLE;
}

// Valid UTF-8 only (the caller cut invalid bytes out).
void append_normalized(std::string_view valid, UnicodeForm f, std::string& out) {
  utf8proc_uint8_t* dst = nullptr;
  const utf8proc_ssize_t n = utf8proc_map(reinterpret_cast<const utf8proc_uint8_t*>(valid.data()),
                                          static_cast<utf8proc_ssize_t>(valid.size()), &dst, options_for(f));
  if (n >= 0 && dst) out.append(reinterpret_cast<const char*>(dst), static_cast<std::size_t>(n));
  else out.append(valid);  // out of memory: the text as it came rather than none of it
  std::free(dst);
}

}  // namespace

std::optional<UnicodeForm> unicode_form_named(std::string_view type) {
  if (type == "NFC") return UnicodeForm::NFC;
  if (type == "NFD") return UnicodeForm::NFD;
  if (type == "NFKC") return UnicodeForm::NFKC;
  if (type == "NFKD") return UnicodeForm::NFKD;
  return std::nullopt;
}

const char* unicode_form_name(UnicodeForm f) {
  switch (f) {
    case UnicodeForm::NFC: return "NFC";
    case UnicodeForm::NFD: return "NFD";
    case UnicodeForm::NFKC: return "NFKC";
    case UnicodeForm::NFKD: return "NFKD";
  }
  return "?";
}

UnicodeForm unicode_form_after(std::optional<UnicodeForm> earlier, UnicodeForm later) {
  auto compat = [](UnicodeForm f) { return f == UnicodeForm::NFKC || f == UnicodeForm::NFKD; };
  const bool composed = later == UnicodeForm::NFC || later == UnicodeForm::NFKC;
  if (compat(later) || (earlier && compat(*earlier))) return composed ? UnicodeForm::NFKC : UnicodeForm::NFKD;
  return composed ? UnicodeForm::NFC : UnicodeForm::NFD;
}

std::string normalize_unicode(std::string_view text, UnicodeForm f) {
  std::string out;
  out.reserve(text.size());
  const auto* bytes = reinterpret_cast<const utf8proc_uint8_t*>(text.data());
  std::size_t run = 0;     // start of the valid text not yet normalized
  bool run_ascii = true;   // ASCII is the same in every form: no need to map it
  auto flush = [&](std::size_t end) {
    if (end > run) {
      const std::string_view piece = text.substr(run, end - run);
      if (run_ascii) out.append(piece);
      else append_normalized(piece, f, out);
    }
    run = end;
    run_ascii = true;
  };
  for (std::size_t i = 0; i < text.size();) {
    if (static_cast<unsigned char>(text[i]) < 0x80) {
      if (i - run >= kPiece) flush(i);
      ++i;
      continue;
    }
    utf8proc_int32_t cp = 0;
    const utf8proc_ssize_t n = utf8proc_iterate(bytes + i, static_cast<utf8proc_ssize_t>(text.size() - i), &cp);
    if (n <= 0) {  // not UTF-8 (stray continuation, truncated, overlong, surrogate): kept as the byte it is
      flush(i);
      out.push_back(text[i]);
      run = ++i;
      continue;
    }
    const std::size_t len = i - run;
    if ((len >= kPiece && never_combines_backwards(cp)) || (len >= kMaxPiece && is_plain_starter(cp))) flush(i);
    run_ascii = false;
    i += static_cast<std::size_t>(n);
  }
  flush(text.size());
  return out;
}

}  // namespace qs
