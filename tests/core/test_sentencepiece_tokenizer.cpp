// tokenizer.model through Debian's libsentencepiece (QS_HAVE_SENTENCEPIECE):
// llama.cpp's ids on stories260K through the library path, a differential
// test of our own SpmTokenizer against the library (the reference), load
// errors on broken files, and the path Tokenizer::for_model picks.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "calib/spm_tokenizer.h"
#include "calib/tokenizer.h"
#include "io/open_model.h"
#include "test_files.h"

namespace {

using Ids = std::vector<std::int32_t>;

std::string stories(const std::string& shared, const std::string& rel) { return shared + "/models/stories260K/" + rel; }

Ids reference_ids(const std::string& shared) {
  const auto j = nlohmann::json::parse(qs::test::read_bytes(stories(shared, "eval/tiny_stories_eval.llamacpp_ids.json")));
  return j.get<Ids>();  // BOS (1) first
}

// Works in either build: the HF directory's tokenizer.model gives llama.cpp's
// ids through whichever path for_model takes, and the path is the expected one.
TEST(TokenizerForModel, TokenizerModelPathAndLlamaCppIds) {
  QS_REQUIRE_SHARED();
  auto m = qs::open_model(stories(shared, "hf"));
  ASSERT_TRUE(m.ok()) << m.error().message;
  auto tok = qs::Tokenizer::for_model(*m);
  ASSERT_TRUE(tok.ok()) << tok.error().message;
#ifdef QS_HAVE_SENTENCEPIECE
  EXPECT_NE(tok->sentencepiece(), nullptr);
#else
  EXPECT_NE(tok->spm(), nullptr);
#endif
  EXPECT_FALSE(tok->is_byte_level());
  EXPECT_EQ(tok->size(), 512u);
  EXPECT_EQ(tok->bos_id(), 1);
  EXPECT_EQ(tok->eos_id(), 2);
  EXPECT_TRUE(tok->add_bos());
  const std::string text = qs::test::read_bytes(stories(shared, "eval/tiny_stories_eval.txt"));
  const Ids ids = tok->encode(text, tok->add_bos());
  ASSERT_EQ(ids.size(), 2066u);
  EXPECT_EQ(ids, reference_ids(shared));
  EXPECT_EQ(tok->decode(std::span(ids).subspan(1)), text);
  EXPECT_EQ(tok->piece_text(1), "");     // <s> is a control token
  EXPECT_EQ(tok->piece_text(13), "\n");  // <0x0A>
}

// tokenizer_config.json's add_bos_token still applies to a tokenizer.model directory.
TEST(TokenizerForModel, TokenizerModelHonoursAddBosToken) {
  QS_REQUIRE_SHARED();
  qs::test::TempDir dir;
  qs::test::write_bytes(dir.file("tokenizer.model"), qs::test::read_bytes(stories(shared, "hf/tokenizer.model")));
  qs::test::write_bytes(dir.file("tokenizer_config.json"), R"({"add_bos_token": false})");
  qs::Model m;
  m.path = dir.path().string();
  m.format = qs::ModelFormat::HfDirectory;
  auto tok = qs::Tokenizer::for_model(m);
  ASSERT_TRUE(tok.ok()) << tok.error().message;
  EXPECT_FALSE(tok->add_bos());
  const Ids ids = tok->encode("Once upon a time", tok->add_bos());
  ASSERT_FALSE(ids.empty());
  EXPECT_NE(ids.front(), 1);
  // A broken tokenizer_config.json is an error naming it.
  qs::test::write_bytes(dir.file("tokenizer_config.json"), "{not json");
  auto bad = qs::Tokenizer::for_model(m);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message.find("tokenizer_config.json"), std::string::npos) << bad.error().message;
}

#ifdef QS_HAVE_SENTENCEPIECE

TEST(SentencePieceTokenizer, MatchesLlamaCppIds) {
  QS_REQUIRE_SHARED();
  auto tok = qs::SentencePieceTokenizer::from_file(stories(shared, "hf/tokenizer.model"));
  ASSERT_TRUE(tok.ok()) << tok.error().message;
  EXPECT_EQ(tok->size(), 512u);
  EXPECT_EQ(tok->bos_id(), 1);
  EXPECT_EQ(tok->eos_id(), 2);
  const std::string text = qs::test::read_bytes(stories(shared, "eval/tiny_stories_eval.txt"));
  const Ids ids = tok->encode(text, true);
  EXPECT_EQ(ids, reference_ids(shared));
  EXPECT_EQ(tok->decode(std::span(ids).subspan(1)), text);
  EXPECT_EQ(tok->encode("", true), Ids{1});
  EXPECT_TRUE(tok->encode("", false).empty());
}

// Broken files are errors naming the file: missing, empty, truncated, random
// bytes, and a size past the limit (a sparse file, refused before reading).
TEST(SentencePieceTokenizer, LoadErrorsNameTheFile) {
  qs::test::TempDir dir;
  auto expect_error = [](const std::string& path, const char* what) {
    auto t = qs::SentencePieceTokenizer::from_file(path);
    ASSERT_FALSE(t.ok()) << what;
    EXPECT_NE(t.error().message.find(path), std::string::npos) << what << ": " << t.error().message;
  };
  expect_error(dir.file("missing.model"), "missing");
  qs::test::write_bytes(dir.file("empty.model"), "");
  expect_error(dir.file("empty.model"), "empty");
  std::mt19937 rng(11);
  for (int k = 0; k < 20; ++k) {
    std::string bytes(static_cast<std::size_t>(1 + rng() % 4096), '\0');
    for (char& c : bytes) c = static_cast<char>(rng());
    const std::string path = dir.file("random" + std::to_string(k) + ".model");
    qs::test::write_bytes(path, bytes);
    expect_error(path, "random bytes");
  }
  const std::string big = dir.file("big.model");
  qs::test::write_bytes(big, "x");
  std::filesystem::resize_file(big, qs::SentencePieceTokenizer::kMaxFileBytes + 1);
  expect_error(big, "oversized");

  const std::string shared = qs::test::shared_dir();
  if (shared.empty()) GTEST_SKIP() << "../shared is absent (fresh clone): skipping the truncations of a real tokenizer.model";
  const std::string whole = qs::test::read_bytes(stories(shared, "hf/tokenizer.model"));
  ASSERT_GT(whole.size(), 1000u);
  // Cut inside a piece, inside the trainer spec and one byte short: refused.
  for (const std::size_t n : {std::size_t{10}, whole.size() / 2 + 3, whole.size() - 1}) {
    const std::string path = dir.file("cut" + std::to_string(n) + ".model");
    qs::test::write_bytes(path, whole.substr(0, n));
    expect_error(path, "truncated");
  }
  // Every 61st truncation: an error naming the file, or (cut on a field
  // boundary) a model that loads and encodes — never a crash.
  int refused = 0, loaded = 0;
  for (std::size_t n = 1; n < whole.size(); n += 61) {
    const std::string path = dir.file("every.model");
    qs::test::write_bytes(path, whole.substr(0, n));
    auto t = qs::SentencePieceTokenizer::from_file(path);
    if (t.ok()) {
      ++loaded;
      (void)t->encode("Once upon a time, caf\xC3\xA9 \xE4\xBD\xA0", true);
    } else {
      ++refused;
      EXPECT_NE(t.error().message.find(path), std::string::npos) << t.error().message;
    }
  }
  EXPECT_GT(refused, 0);
  std::printf("truncations of tokenizer.model: %d refused, %d loaded\n", refused, loaded);
  // Through Tokenizer::for_model: the broken file is the error, no fallback.
  qs::test::write_bytes(dir.file("tokenizer.model"), whole.substr(0, whole.size() / 2 + 3));
  qs::Model m;
  m.path = dir.path().string();
  m.format = qs::ModelFormat::HfDirectory;
  auto tok = qs::Tokenizer::for_model(m);
  ASSERT_FALSE(tok.ok());
  EXPECT_NE(tok.error().message.find("tokenizer.model"), std::string::npos) << tok.error().message;
}

// Random text from the classes calibration text holds: ASCII words and
// punctuation, digits, runs of spaces, newlines, tabs, accented Latin, CJK,
// emoji (with skin tone, ZWJ and VS16). Always valid UTF-8.
std::string random_text(std::mt19937& rng) {
  static const std::vector<std::string> parts = {
      "Once", "upon", "a", "time", "the", "little", "girl", "Lily", "said", "happy", "dog", "ball",
      "xyzzy", "qwerty", "Zebra", "ab", "I", "it's", "don't", ",", ".", "!", "?", "\"", "'", "(", ")",
      "-", "0", "7", "42", "1999", "3.14", " ", " ", "  ", "   ", "     ", "\n", "\n\n", "\t", "\t\t",
      " \n", "\r\n", "caf\xC3\xA9", "\xC3\xBC" "ber", "Espa\xC3\xB1" "a", "\xC3\x80", "\xC3\xA7", "na\xC3\xAF" "ve",
      "\xC3\x85ngstr\xC3\xB6m", "e\xCC\x81",  // e + combining acute (decomposed)
      "\xE4\xBD\xA0\xE5\xA5\xBD", "\xE4\xB8\x96\xE7\x95\x8C", "\xE6\x97\xA5\xE6\x9C\xAC\xE8\xAA\x9E",
      "\xED\x95\x9C\xEA\xB5\xAD",  // Hangul
      "\xD0\x9F\xD1\x80\xD0\xB8\xD0\xB2\xD0\xB5\xD1\x82",  // Cyrillic
      "\xF0\x9F\x98\x80", "\xF0\x9F\x91\x8D\xF0\x9F\x8F\xBD", "\xE2\x9D\xA4\xEF\xB8\x8F",
      "\xF0\x9F\x91\xA8\xE2\x80\x8D\xF0\x9F\x91\xA9\xE2\x80\x8D\xF0\x9F\x91\xA7",
      "\xEF\xBC\xA1",  // fullwidth A (NFKC would map it)
      "\xE2\x80\xA6", "\xE2\x80\x94"};
  std::string s;
  const int n = 1 + static_cast<int>(rng() % 12);
  for (int i = 0; i < n; ++i) {
    if (rng() % 8 == 0) {  // a random lowercase word
      const int len = 1 + static_cast<int>(rng() % 9);
      for (int k = 0; k < len; ++k) s.push_back(static_cast<char>('a' + rng() % 26));
    } else {
      s += parts[rng() % parts.size()];
    }
    if (rng() % 2 == 0) s.push_back(' ');
  }
  return s;
}

// Our own SpmTokenizer against the library (the reference) on the eval text,
// line by line, and on 2000 random strings: identical ids, and the library
// decodes our ids back to the text.
TEST(SentencePieceTokenizer, OurSpmTokenizerAgreesWithTheLibrary) {
  QS_REQUIRE_SHARED();
  const std::string model = stories(shared, "hf/tokenizer.model");
  auto ours = qs::SpmTokenizer::from_spm_file(model);
  ASSERT_TRUE(ours.ok()) << ours.error().message;
  auto lib = qs::SentencePieceTokenizer::from_file(model);
  ASSERT_TRUE(lib.ok()) << lib.error().message;
  ASSERT_EQ(ours->size(), lib->size());
  for (std::int32_t id = 0; id < static_cast<std::int32_t>(ours->size()); ++id) {
    ASSERT_EQ(ours->piece_text(id), lib->piece_text(id)) << "piece " << id;
  }

  const std::string text = qs::test::read_bytes(stories(shared, "eval/tiny_stories_eval.txt"));
  EXPECT_EQ(ours->encode(text, true), lib->encode(text, true));
  int lines = 0;
  for (std::size_t from = 0; from < text.size();) {
    const std::size_t end = std::min(text.find('\n', from), text.size());
    const std::string line = text.substr(from, end - from);
    EXPECT_EQ(ours->encode(line, true), lib->encode(line, true)) << "line: " << line;
    ++lines;
    from = end + 1;
  }

  std::mt19937 rng(2024);
  int agree = 0, total = 0;
  std::size_t tokens = 0;
  for (int i = 0; i < 2000; ++i) {
    const std::string s = random_text(rng);
    const Ids a = ours->encode(s, false), b = lib->encode(s, false);
    ++total;
    tokens += b.size();
    if (a == b) ++agree;
    else ADD_FAILURE() << "ids differ on '" << s << "'";
    EXPECT_EQ(ours->decode(a), lib->decode(b)) << s;
  }
  EXPECT_EQ(agree, total);
  std::printf("eval text: %d lines; random strings: %d/%d identical (%zu library tokens)\n", lines, agree, total, tokens);
}

#else

TEST(SentencePieceTokenizer, NeedsTheLibrary) {
  GTEST_SKIP() << "built without libsentencepiece (Debian libsentencepiece-dev): tokenizer.model uses our own "
                  "SPM tokenizer, and the library tests do not run";
}

#endif  // QS_HAVE_SENTENCEPIECE

}  // namespace
