#pragma once
// Unicode normalization forms as tokenizer.json normalizers name them (NFC,
// NFD, NFKC, NFKD), through utf8proc. Hugging Face tokenizers normalizes the
// text between added tokens before its pre-tokenizer runs, so decomposed input
// ("e" + U+0301) reaches the vocabulary as the composed "é" it was trained on.
#include <optional>
#include <string>
#include <string_view>

namespace qs {

enum class UnicodeForm { NFC, NFD, NFKC, NFKD };

// The form a normalizer "type" names; nullopt for any other type.
std::optional<UnicodeForm> unicode_form_named(std::string_view type);
const char* unicode_form_name(UnicodeForm f);
// The one form that does what `earlier` then `later` do: after a compatibility
// form the text stays compatibility-normalized, and the later form decides
// composed or decomposed (NFC(NFKD(x)) = NFKC(x), NFD(NFC(x)) = NFD(x)).
UnicodeForm unicode_form_after(std::optional<UnicodeForm> earlier, UnicodeForm later);

// `text` in normalization form `f`. Bytes that are not valid UTF-8 are kept
// as they are, and the valid text on each side of them is normalized on its
// own (Hugging Face only ever sees valid UTF-8; the tokenizers here map any
// byte, so invalid input must still get through unchanged). Long text is
// normalized in pieces cut before characters that never combine with what
// precedes them, so memory stays proportional to a piece, not to the text.
std::string normalize_unicode(std::string_view text, UnicodeForm f);

}  // namespace qs
