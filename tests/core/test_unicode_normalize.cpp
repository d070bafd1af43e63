// Unicode normalization forms (core/calib/unicode_normalize.h). Expected bytes
// are written out from the Unicode Character Database, not computed:
//   é  U+00E9 = C3 A9, its NFD "e" U+0301 = 65 CC 81
//   ﬁ  U+FB01 = EF AC 81, compatibility decomposition "fi"
//   Å  U+212B ANGSTROM SIGN = E2 84 AB, canonical singleton -> U+00C5 = C3 85
//   ᄀ U+1100 = E1 84 80, ᅡ U+1161 = E1 85 A1, ᆨ U+11A8 = E1 86 A8;
//      L V T compose to 각 U+AC01 = EA B0 81, L V to 가 U+AC00 = EA B0 80
//   U+0307 (ccc 230) = CC 87 sorts after U+0323 (ccc 220) = CC A3
//   ① U+2460 = E2 91 A0 -> "1", ² U+00B2 = C2 B2 -> "2", NBSP U+00A0 = C2 A0 -> " "
//   и U+0438 = D0 B8 + U+0306 = CC 86 -> й U+0439 = D0 B9
#include <gtest/gtest.h>

#include <random>
#include <string>

#include "calib/unicode_normalize.h"

namespace {

using qs::normalize_unicode;
using qs::UnicodeForm;

std::string repeat(const std::string& s, std::size_t n) {
  std::string out;
  out.reserve(s.size() * n);
  for (std::size_t i = 0; i < n; ++i) out += s;
  return out;
}

TEST(UnicodeNormalize, FormsGiveTheBytesTheDatabaseDefines) {
  EXPECT_EQ(normalize_unicode("caf" "e\xCC\x81", UnicodeForm::NFC), "caf\xC3\xA9");
  EXPECT_EQ(normalize_unicode("caf\xC3\xA9", UnicodeForm::NFD), "cafe\xCC\x81");
  EXPECT_EQ(normalize_unicode("caf\xC3\xA9", UnicodeForm::NFC), "caf\xC3\xA9");  // already composed
  EXPECT_EQ(normalize_unicode("\xEF\xAC\x81" "le", UnicodeForm::NFKC), "file");
  EXPECT_EQ(normalize_unicode("\xEF\xAC\x81" "le", UnicodeForm::NFC), "\xEF\xAC\x81" "le");  // canonical forms keep ligatures
  EXPECT_EQ(normalize_unicode("\xC3\xA9\xEF\xAC\x81", UnicodeForm::NFKD), "e\xCC\x81" "fi");
  EXPECT_EQ(normalize_unicode("\xE2\x84\xAB", UnicodeForm::NFC), "\xC3\x85");
  EXPECT_EQ(normalize_unicode("\xE1\x84\x80\xE1\x85\xA1\xE1\x86\xA8", UnicodeForm::NFC), "\xEA\xB0\x81");
  EXPECT_EQ(normalize_unicode("\xEA\xB0\x81", UnicodeForm::NFD), "\xE1\x84\x80\xE1\x85\xA1\xE1\x86\xA8");
  EXPECT_EQ(normalize_unicode("q\xCC\x87\xCC\xA3", UnicodeForm::NFC), "q\xCC\xA3\xCC\x87");  // reordered, nothing to compose
  EXPECT_EQ(normalize_unicode("\xE2\x91\xA0 x\xC2\xB2\xC2\xA0!", UnicodeForm::NFKC), "1 x2 !");
  EXPECT_EQ(normalize_unicode("", UnicodeForm::NFC), "");
  EXPECT_EQ(normalize_unicode("plain ASCII\n", UnicodeForm::NFKD), "plain ASCII\n");
  std::string nul("a\0e\xCC\x81", 5);
  EXPECT_EQ(normalize_unicode(nul, UnicodeForm::NFC), std::string("a\0\xC3\xA9", 4));  // NUL is a character, not an end
}

TEST(UnicodeNormalize, SequencesCollapseToOneForm) {
  using qs::unicode_form_after;
  EXPECT_EQ(unicode_form_after(std::nullopt, UnicodeForm::NFC), UnicodeForm::NFC);
  EXPECT_EQ(unicode_form_after(UnicodeForm::NFKD, UnicodeForm::NFC), UnicodeForm::NFKC);
  EXPECT_EQ(unicode_form_after(UnicodeForm::NFKC, UnicodeForm::NFD), UnicodeForm::NFKD);
  EXPECT_EQ(unicode_form_after(UnicodeForm::NFC, UnicodeForm::NFD), UnicodeForm::NFD);
  EXPECT_EQ(unicode_form_after(UnicodeForm::NFD, UnicodeForm::NFC), UnicodeForm::NFC);
  // The collapse agrees with applying the two forms one after the other.
  const std::string s = "\xEF\xAC\x81 e\xCC\x81 \xE2\x84\xAB \xEA\xB0\x81 q\xCC\x87\xCC\xA3";
  for (auto a : {UnicodeForm::NFC, UnicodeForm::NFD, UnicodeForm::NFKC, UnicodeForm::NFKD})
    for (auto b : {UnicodeForm::NFC, UnicodeForm::NFD, UnicodeForm::NFKC, UnicodeForm::NFKD})
      EXPECT_EQ(normalize_unicode(normalize_unicode(s, a), b), normalize_unicode(s, unicode_form_after(a, b)))
          << qs::unicode_form_name(a) << " then " << qs::unicode_form_name(b);
}

// Bytes that are not UTF-8 pass through unchanged; the valid text around them
// is normalized (a mark after an invalid byte has nothing to attach to).
TEST(UnicodeNormalize, InvalidUtf8IsKeptByteForByte) {
  EXPECT_EQ(normalize_unicode("\xFF" "e\xCC\x81\xC3", UnicodeForm::NFC), "\xFF\xC3\xA9\xC3");
  EXPECT_EQ(normalize_unicode("\x81" "e\xCC\x81", UnicodeForm::NFC), "\x81\xC3\xA9");           // stray continuation
  EXPECT_EQ(normalize_unicode("\xED\xA0\x80" "e\xCC\x81", UnicodeForm::NFC), "\xED\xA0\x80\xC3\xA9");  // surrogate
  EXPECT_EQ(normalize_unicode("\xC0\xAF" "e\xCC\x81", UnicodeForm::NFC), "\xC0\xAF\xC3\xA9");   // overlong '/'
  EXPECT_EQ(normalize_unicode("\xF0\x9F\x98", UnicodeForm::NFKC), "\xF0\x9F\x98");             // truncated emoji
  EXPECT_EQ(normalize_unicode("e\xFF\xCC\x81", UnicodeForm::NFC), "e\xFF\xCC\x81");
  // Random bytes: no crash, and every form is idempotent on its own output.
  std::mt19937 rng(11);
  const std::string pool[] = {"e", "\xCC\x81", "\xCC\xA3", "\xEF\xAC\x81", "\xE1\x84\x80", "\xE1\x85\xA1", " ", "\xC3\xA9"};
  for (int round = 0; round < 3000; ++round) {
    std::string s;
    const std::size_t n = rng() % 24;
    for (std::size_t k = 0; k < n; ++k) {
      if (round % 2 == 0) s.push_back(static_cast<char>(rng() % 256));
      else s += pool[rng() % std::size(pool)];
    }
    for (auto f : {UnicodeForm::NFC, UnicodeForm::NFD, UnicodeForm::NFKC, UnicodeForm::NFKD}) {
      const std::string once = normalize_unicode(s, f);
      ASSERT_EQ(normalize_unicode(once, f), once) << qs::unicode_form_name(f) << " round " << round;
    }
  }
}

// Long text is normalized in pieces; the cuts must not separate a mark from
// its base or a Hangul vowel from its initial, with or without ASCII to cut at.
TEST(UnicodeNormalize, LongTextIsCutWhereNothingCombines) {
  EXPECT_EQ(normalize_unicode(repeat("e\xCC\x81 ", 100000), UnicodeForm::NFC), repeat("\xC3\xA9 ", 100000));
  // 1.2 MB without ASCII, CJK or syllables to cut before: past the 1 MiB cap the
  // cut falls before a starter. Prefixes of 0..3 bytes shift where the cap lands
  // (on the mark, on the base, on the vowel jamo, on the initial).
  for (const std::string prefix : {"", "x", "\xC3\xA9", "\xE2\x82\xAC"}) {
    EXPECT_EQ(normalize_unicode(prefix + repeat("\xD0\xB8\xCC\x86", 300000), UnicodeForm::NFC), prefix + repeat("\xD0\xB9", 300000))
        << prefix.size();
    EXPECT_EQ(normalize_unicode(prefix + repeat("\xE1\x84\x80\xE1\x85\xA1", 200000), UnicodeForm::NFC),
              prefix + repeat("\xEA\xB0\x80", 200000))
        << prefix.size();
  }
  // Decomposition grows the text: 400k "é" become 1.2 MB across many pieces.
  const std::string d = normalize_unicode(repeat("\xC3\xA9", 400000), UnicodeForm::NFD);
  EXPECT_EQ(d, repeat("e\xCC\x81", 400000));
}

}  // namespace
