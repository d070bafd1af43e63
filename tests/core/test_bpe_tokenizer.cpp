// Byte-level BPE on a hand-made vocabulary whose expected ids are derived by
// hand below (no outside tokenizer involved), plus malformed inputs.
//
// GPT-2's byte -> character table, as used by the vocabulary:
//   ' ' (0x20) -> "Ġ" (U+0120), '\n' (0x0A) -> "Ċ" (U+010A): bytes that are not
//   printable Latin-1 take U+0100 + their rank among such bytes (0x00..0x20 first).
//   "é" = C3 A9 -> "Ã" (U+00C3) "©" (U+00A9): printable Latin-1 bytes stand for themselves.
//   "😀" = F0 9F 98 80 -> "ð" (U+00F0), 0x9F -> U+0141 "Ł", 0x98 -> U+013A "ĺ", 0x80 -> U+0122 "Ģ"
//   (0x7F..0xA0 follow the 33 control bytes: 0x7F -> U+0121, so 0x80 -> U+0122, 0x98 -> U+013A, 0x9F -> U+0141).
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <random>

#include "calib/bpe_tokenizer.h"
#include "calib/tokenizer.h"
#include "export/gguf_writer.h"
#include "io/gguf.h"
#include "model/model.h"
#include "test_files.h"

namespace {

using Ids = std::vector<std::int32_t>;

// Base characters 0..24, merge results 25..48 (merge rank r makes token 25 + r),
// added tokens 49..51 (special), 52 a plain token no merge makes, 53 a non-special added token.
const char* const kBase[] = {"h", "e", "l", "o", "w", "r", "d", "'", "s", "t", "a", "c", "f",
                             "1", "2", "3", "4", "Ġ", "Ċ", "Ã", "©", "ð", "Ł", "ĺ", "Ģ"};
const char* const kMerges[] = {
    "l l",        // 0 -> 25 "ll"
    "h e",        // 1 -> 26 "he"
    "he ll",      // 2 -> 27 "hell"
    "hell o",     // 3 -> 28 "hello"
    "e l",        // 4 -> 29 "el"   (ranks below "l l": "ell" must not become "el" "l")
    "Ġ w",        // 5 -> 30 "Ġw"
    "o r",        // 6 -> 31 "or"
    "Ġw or",      // 7 -> 32 "Ġwor"
    "Ġwor l",     // 8 -> 33 "Ġworl"
    "Ġworl d",    // 9 -> 34 "Ġworld"
    "' s",        // 10 -> 35 "'s"
    "' t",        // 11 -> 36 "'t"
    "1 2",        // 12 -> 37 "12"
    "12 3",       // 13 -> 38 "123"
    "3 4",        // 14 -> 39 "34"
    "Ġ Ġ",        // 15 -> 40 "ĠĠ"
    "Ċ Ċ",        // 16 -> 41 "ĊĊ"
    "Ã ©",        // 17 -> 42 "Ã©" (é)
    "ð Ł",        // 18 -> 43 "ðŁ"
    "ĺ Ģ",        // 19 -> 44 "ĺĢ"
    "c a",        // 20 -> 45 "ca"
    "f Ã©",       // 21 -> 46 "fÃ©"
    "ca fÃ©",     // 22 -> 47 "cafÃ©" (café)
    "Ġ h",        // 23 -> 48 "Ġh"   (ranks last: " hello" is "Ġ" "hello")
};

const std::string kLlama3Split = R"({"type": "Sequence", "pretokenizers": [
  {"type": "Split", "pattern": {"Regex": "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"},
   "behavior": "Isolated", "invert": false},
  {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": false}]})";
const std::string kGpt2ByteLevel = R"({"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true})";

nlohmann::json tokenizer_json(const std::string& pre_tokenizer) {
  nlohmann::json vocab = nlohmann::json::object();
  int id = 0;
  for (const char* b : kBase) vocab[b] = id++;
  for (const char* m : kMerges) {
    std::string s(m);
    s.erase(s.find(' '), 1);
    vocab[s] = id++;
  }
  vocab["lll"] = 52;
  nlohmann::json merges = nlohmann::json::array();
  for (const char* m : kMerges) merges.push_back(m);
  nlohmann::json j;
  j["version"] = "1.0";
  j["added_tokens"] = nlohmann::json::array({{{"id", 49}, {"content", "<|bos|>"}, {"special", true}},
                                             {{"id", 50}, {"content", "<|eos|>"}, {"special", true}},
                                             {{"id", 51}, {"content", "<|sep|>"}, {"special", true}},
                                             {{"id", 53}, {"content", "<wow>"}, {"special", false}}});
  j["normalizer"] = nullptr;
  j["pre_tokenizer"] = nlohmann::json::parse(pre_tokenizer);
  j["post_processor"] = nlohmann::json::parse(R"({"type": "TemplateProcessing",
      "single": [{"SpecialToken": {"id": "<|bos|>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
      "special_tokens": {"<|bos|>": {"id": "<|bos|>", "ids": [49], "tokens": ["<|bos|>"]}}})");
  j["decoder"] = {{"type", "ByteLevel"}};
  j["model"] = {{"type", "BPE"},          {"dropout", nullptr}, {"unk_token", nullptr}, {"byte_fallback", false},
                {"ignore_merges", false}, {"vocab", vocab},     {"merges", merges}};
  return j;
}

qs::BpeTokenizer load(const qs::test::TempDir& dir, const nlohmann::json& j, const std::string& name = "tokenizer.json") {
  qs::test::write_bytes(dir.file(name), j.dump(1));
  auto t = qs::BpeTokenizer::from_hf_tokenizer_json(dir.file(name));
  EXPECT_TRUE(t.ok()) << t.error().message;
  return std::move(*t);
}

TEST(BpeTokenizer, ByteMappingMergesAndLlama3Splits) {
  qs::test::TempDir dir;
  const auto t = load(dir, tokenizer_json(kLlama3Split));
  ASSERT_EQ(t.size(), 54u);
  EXPECT_EQ(t.merge_count(), 24u);
  // Byte mapping, both ways: "Ġ" is a space, "Ċ" a newline, "Ã" "©" the bytes of é.
  EXPECT_EQ(t.piece_text(17), " ");
  EXPECT_EQ(t.piece_text(18), "\n");
  EXPECT_EQ(t.piece_text(42), "\xC3\xA9");
  EXPECT_EQ(t.piece_text(43) + t.piece_text(44), "\xF0\x9F\x98\x80");
  // "hello" " world": Ġ w o r l d -> Ġw (5) -> or (6) -> Ġwor (7) -> Ġworl (8) -> Ġworld (9).
  EXPECT_EQ(t.encode("hello world", false), (Ids{28, 34}));
  // Merge priority: "l l" (rank 0) beats the leftward "e l" (rank 4): e|ll, not el|l.
  EXPECT_EQ(t.encode("ell", false), (Ids{1, 25}));
  // Equal ranks: the leftmost pair first: ll|l, not l|ll.
  EXPECT_EQ(t.encode("lll", false), (Ids{25, 2}));
  // " hello" is one piece; "h e" (rank 1) wins over "Ġ h" (rank 23), and then Ġ has nothing to merge with.
  EXPECT_EQ(t.encode(" hello", false), (Ids{17, 28}));
  // Contractions are their own pieces: he|'s, hell|'t.
  EXPECT_EQ(t.encode("he's", false), (Ids{26, 35}));
  EXPECT_EQ(t.encode("hell't", false), (Ids{27, 36}));
  // Llama-3 numbers: groups of up to three digits, 123|412|34 -> 123 | 4 12 | 34.
  EXPECT_EQ(t.encode("12341234", false), (Ids{38, 16, 37, 39}));
  // Whitespace runs: "hello" "  " " world" (the run leaves its last space to the word).
  EXPECT_EQ(t.encode("hello   world", false), (Ids{28, 40, 34}));
  EXPECT_EQ(t.encode("hello  ", false), (Ids{28, 40}));
  // Newlines: "\n\n" is one piece under Llama-3's \s*[\r\n]+; "world" without a space: w or l d.
  EXPECT_EQ(t.encode("hello\n\nworld", false), (Ids{28, 41, 4, 31, 2, 6}));
  // Non-ASCII: café -> c a f Ã © -> Ã© (17) -> fÃ© (21)... ca (20) first, then cafÃ© (22); the emoji is its own piece.
  EXPECT_EQ(t.encode("caf\xC3\xA9\xF0\x9F\x98\x80", false), (Ids{47, 43, 44}));
  // Special tokens in the middle of the text, and the text on each side tokenized alone.
  EXPECT_EQ(t.encode("hello<|sep|>world", false), (Ids{28, 51, 4, 31, 2, 6}));
  EXPECT_EQ(t.encode(" <|sep|> hello<|eos|>", false), (Ids{17, 51, 17, 28, 50}));
  EXPECT_EQ(t.encode("<wow>hello", false), (Ids{53, 28}));
  // BOS from the post-processor template.
  EXPECT_TRUE(t.add_bos());
  EXPECT_EQ(t.bos_id(), 49);
  EXPECT_EQ(t.encode("hello", true), (Ids{49, 28}));
  EXPECT_EQ(t.encode("", true), (Ids{49}));
  EXPECT_EQ(t.encode("", false), (Ids{}));
  // Decoding: special tokens dropped, the non-special added token kept as text.
  EXPECT_EQ(t.decode(Ids{49, 28, 34, 51, 42, 43, 44, 53}), "hello world\xC3\xA9\xF0\x9F\x98\x80<wow>");
}

TEST(BpeTokenizer, Gpt2RegexDiffersOnNumbersAndNewlines) {
  qs::test::TempDir dir;
  const auto t = load(dir, tokenizer_json(kGpt2ByteLevel));
  EXPECT_EQ(t.encode("hello world", false), (Ids{28, 34}));
  EXPECT_EQ(t.encode("he's", false), (Ids{26, 35}));
  // One piece "12341234": "1 2" at 0 and 4, then "12 3" twice: 123 4 123 4.
  EXPECT_EQ(t.encode("12341234", false), (Ids{38, 16, 38, 16}));
  // \s+(?!\S) leaves the last newline to \s+: "\n" "\n" "world".
  EXPECT_EQ(t.encode("hello\n\nworld", false), (Ids{28, 18, 18, 4, 31, 2, 6}));
  // add_prefix_space: a space before the text.
  auto j = tokenizer_json(kGpt2ByteLevel);
  j["pre_tokenizer"]["add_prefix_space"] = true;
  const auto p = load(dir, j, "prefix.json");
  EXPECT_EQ(p.encode("hello", false), (Ids{17, 28}));
}

TEST(BpeTokenizer, IgnoreMergesTakesWholeTokens) {
  qs::test::TempDir dir;
  auto j = tokenizer_json(kLlama3Split);
  j["model"]["ignore_merges"] = true;
  const auto t = load(dir, j);
  EXPECT_EQ(t.encode("lll", false), (Ids{52}));         // in the vocabulary as a whole: no merges
  EXPECT_EQ(t.encode("ell", false), (Ids{1, 25}));      // not a token: merged as before
}

TEST(BpeTokenizer, ModelDirectoryPicksByteLevelAndBosFromConfig) {
  qs::test::TempDir dir;
  qs::test::write_bytes(dir.file("tokenizer.json"), tokenizer_json(kLlama3Split).dump());
  qs::Model m;
  m.path = dir.path().string();
  m.format = qs::ModelFormat::HfDirectory;
  auto t = qs::Tokenizer::for_model(m);
  ASSERT_TRUE(t.ok()) << t.error().message;
  EXPECT_TRUE(t->is_byte_level());
  EXPECT_TRUE(t->add_bos());
  EXPECT_EQ(t->encode("hello world", t->add_bos()), (Ids{49, 28, 34}));
  // tokenizer_config.json turns BOS off and names the EOS.
  qs::test::write_bytes(dir.file("tokenizer_config.json"),
                        R"({"add_bos_token": false, "bos_token": {"content": "<|bos|>"}, "eos_token": "<|sep|>"})");
  t = qs::Tokenizer::for_model(m);
  ASSERT_TRUE(t.ok()) << t.error().message;
  EXPECT_FALSE(t->add_bos());
  EXPECT_EQ(t->eos_id(), 51);
  EXPECT_EQ(t->encode("hello world", t->add_bos()), (Ids{28, 34}));
  // A BOS the vocabulary lacks is an error naming the file.
  qs::test::write_bytes(dir.file("tokenizer_config.json"), R"({"add_bos_token": true, "bos_token": "<s>"})");
  auto j = tokenizer_json(kGpt2ByteLevel);
  j["post_processor"] = nullptr;
  qs::test::write_bytes(dir.file("tokenizer.json"), j.dump());
  t = qs::Tokenizer::for_model(m);
  ASSERT_FALSE(t.ok());
  EXPECT_NE(t.error().message.find("tokenizer_config.json"), std::string::npos) << t.error().message;
}

// The same vocabulary as GGUF metadata (as llama.cpp's converter writes it).
struct GgufVocab {
  std::vector<std::string> tokens, merges;
  std::vector<std::int32_t> types;
  std::string bytes;
  std::shared_ptr<qs::GgufFile> file;
};

qs::GgufValue string_array(const std::vector<std::string>& v) {
  qs::GgufArray a;
  a.elem = qs::GgufType::STRING;
  a.count = v.size();
  for (const auto& s : v) a.strings.emplace_back(s);
  return {qs::GgufType::ARRAY, a};
}

std::unique_ptr<GgufVocab> gguf_vocab(const std::string& pre, int add_bos /* -1: absent */) {
  auto g = std::make_unique<GgufVocab>();
  for (const char* b : kBase) g->tokens.push_back(b);
  for (const char* m : kMerges) {
    std::string s(m);
    s.erase(s.find(' '), 1);
    g->tokens.push_back(s);
    g->merges.push_back(m);
  }
  for (const char* a : {"<|bos|>", "<|eos|>", "<|sep|>", "lll", "<wow>"}) g->tokens.push_back(a);
  g->types.assign(g->tokens.size(), 1);
  g->types[49] = g->types[50] = g->types[51] = 3;  // control
  g->types[53] = 4;                                  // user-defined
  qs::GgufWriter w;
  w.set_string("general.architecture", "llama");
  w.set_string("tokenizer.ggml.model", "gpt2");
  if (!pre.empty()) w.set_string("tokenizer.ggml.pre", pre);
  w.set("tokenizer.ggml.tokens", string_array(g->tokens));
  w.set("tokenizer.ggml.merges", string_array(g->merges));
  qs::GgufArray types;
  types.elem = qs::GgufType::I32;
  types.count = g->types.size();
  types.raw = std::as_bytes(std::span(g->types));
  w.set("tokenizer.ggml.token_type", {qs::GgufType::ARRAY, types});
  w.set_u32("tokenizer.ggml.bos_token_id", 49);
  w.set_u32("tokenizer.ggml.eos_token_id", 50);
  if (add_bos >= 0) w.set("tokenizer.ggml.add_bos_token", {qs::GgufType::BOOL, add_bos != 0});
  auto header = w.header();
  EXPECT_TRUE(header.ok()) << header.error().message;
  g->bytes = *header;
  auto parsed = qs::parse_gguf(std::as_bytes(std::span(g->bytes)), "vocab.gguf");
  EXPECT_TRUE(parsed.ok()) << parsed.error().message;
  g->file = std::make_shared<qs::GgufFile>(std::move(*parsed));
  return g;
}

TEST(BpeTokenizer, GgufVocabularyGivesTheSameIds) {
  const auto g = gguf_vocab("llama-bpe", -1);
  auto t = qs::BpeTokenizer::from_gguf(*g->file, "vocab.gguf");
  ASSERT_TRUE(t.ok()) << t.error().message;
  EXPECT_TRUE(t->add_bos());  // Llama-3's default when the key is absent
  EXPECT_TRUE(t->ignore_merges());
  EXPECT_EQ(t->encode("hello   world", true), (Ids{49, 28, 40, 34}));
  EXPECT_EQ(t->encode("12341234", false), (Ids{38, 16, 37, 39}));
  EXPECT_EQ(t->encode("hello<|sep|>caf\xC3\xA9", false), (Ids{28, 51, 47}));
  EXPECT_EQ(t->encode("lll", false), (Ids{52}));  // ignore_merges, as Llama-3
  EXPECT_EQ(t->decode(Ids{49, 28, 53}), "hello<wow>");
  // GPT-2's pre-tokenizer, BOS off from the metadata; through the model-level picker.
  const auto g2 = gguf_vocab("gpt-2", 0);
  qs::Model m;
  m.path = "vocab.gguf";
  m.gguf = g2->file;
  auto t2 = qs::Tokenizer::for_model(m);
  ASSERT_TRUE(t2.ok()) << t2.error().message;
  EXPECT_TRUE(t2->is_byte_level());
  EXPECT_FALSE(t2->add_bos());
  EXPECT_EQ(t2->encode("12341234", t2->add_bos()), (Ids{38, 16, 38, 16}));
  EXPECT_EQ(t2->encode("lll", false), (Ids{25, 2}));
  // An unknown pre-tokenizer name is an error naming the file and the name.
  const auto g3 = gguf_vocab("mystery-pre", -1);
  auto t3 = qs::BpeTokenizer::from_gguf(*g3->file, "vocab.gguf");
  ASSERT_FALSE(t3.ok());
  EXPECT_NE(t3.error().message.find("vocab.gguf"), std::string::npos);
  EXPECT_NE(t3.error().message.find("'mystery-pre'"), std::string::npos) << t3.error().message;
}

struct BadJson {
  std::string what, text, expect;  // expect: a fragment of the error message
};

TEST(BpeTokenizer, MalformedTokenizerJsonNamesFileAndProblem) {
  qs::test::TempDir dir;
  auto base = tokenizer_json(kLlama3Split);
  std::vector<BadJson> cases;
  cases.push_back({"broken JSON", base.dump().substr(0, 300), "not a JSON object"});
  auto j = base;
  j["model"]["merges"].push_back("x y");
  cases.push_back({"merge of unknown tokens", j.dump(), "merge 24 'x y'"});
  j = base;
  j["model"]["merges"].push_back("e o");
  cases.push_back({"merge result unknown", j.dump(), "'eo'"});
  j = base;
  j["model"]["merges"].push_back("hello");
  cases.push_back({"merge without a space", j.dump(), "'hello' is not 'left right'"});
  j = base;
  j["model"]["vocab"]["zz"] = 99999999999LL;
  cases.push_back({"absurd id", j.dump(), "vocab id of 'zz'"});
  j = base;
  j["model"]["vocab"]["zz"] = -3;
  cases.push_back({"negative id", j.dump(), "vocab id of 'zz'"});
  j = base;
  j["model"]["vocab"]["zz"] = 3;
  cases.push_back({"id used twice", j.dump(), "used twice"});
  j = base;
  j["pre_tokenizer"]["pretokenizers"][0]["pattern"]["Regex"] = "(\\p{L";
  cases.push_back({"bad regex", j.dump(), "does not compile"});
  j = base;
  j["pre_tokenizer"]["pretokenizers"][0]["type"] = "Whitespace";
  cases.push_back({"unknown pre-tokenizer", j.dump(), "'Whitespace'"});
  j = base;
  j["pre_tokenizer"]["pretokenizers"][0]["behavior"] = "Removed";
  cases.push_back({"unsupported split behaviour", j.dump(), "'Removed'"});
  j = base;
  j["normalizer"] = {{"type", "Lowercase"}};
  cases.push_back({"unsupported normalizer", j.dump(), "'Lowercase'"});
  j = base;
  j["model"]["byte_fallback"] = true;
  cases.push_back({"byte fallback", j.dump(), "byte_fallback"});
  j = base;
  j["model"]["vocab"] = nlohmann::json::array();
  cases.push_back({"vocab not an object", j.dump(), "model.vocab"});
  j = base;
  j["added_tokens"].push_back({{"id", "seven"}});
  cases.push_back({"added token without id", j.dump(), "added_tokens"});
  j = base;
  j["model"]["type"] = nlohmann::json::array();  // members of the wrong type are errors, not exceptions
  cases.push_back({"model type not a string", j.dump(), "only BPE"});
  j = base;
  j["pre_tokenizer"] = {{"type", "Sequence"}, {"pretokenizers", {{{"type", 7}}}}};
  cases.push_back({"pre-tokenizer type not a string", j.dump(), "pre_tokenizer has no type"});
  for (const auto& c : cases) {
    const std::string path = dir.file("bad.json");
    qs::test::write_bytes(path, c.text);
    auto t = qs::BpeTokenizer::from_hf_tokenizer_json(path);
    ASSERT_FALSE(t.ok()) << c.what;
    EXPECT_NE(t.error().message.find(path), std::string::npos) << c.what << ": " << t.error().message;
    EXPECT_NE(t.error().message.find(c.expect), std::string::npos) << c.what << ": " << t.error().message;
  }
}

TEST(BpeTokenizer, WrongTypedOptionalMembersAreIgnored) {
  qs::test::TempDir dir;
  auto j = tokenizer_json(kLlama3Split);
  j["post_processor"] = {{"type", nlohmann::json::array()}};  // found by fuzzing: threw from nlohmann's value()
  j["added_tokens"][0]["special"] = "yes";
  const auto t = load(dir, j);
  EXPECT_FALSE(t.add_bos());
  EXPECT_EQ(t.encode("hello", true), (Ids{28}));  // no BOS token known
}

// tokenizer.json's NFC normalizer (Qwen2 and others declare it): text is
// composed before pre-tokenization, as Hugging Face does. Decomposed "é" is
// "e" U+0301 = 65 CC 81; composed it is C3 A9, the vocabulary's "Ã©".
TEST(BpeTokenizer, NfcNormalizerComposesDecomposedText) {
  qs::test::TempDir dir;
  const std::string composed = "caf\xC3\xA9", decomposed = "cafe\xCC\x81";
  auto j = tokenizer_json(kLlama3Split);
  const auto plain = load(dir, j, "plain.json");
  EXPECT_FALSE(plain.normalizer().has_value());
  // Without a normalizer: "cafe" (ca f e) and the mark alone, whose bytes have no tokens.
  EXPECT_EQ(plain.encode(decomposed, false), (Ids{45, 12, 1}));
  j["normalizer"] = {{"type", "NFC"}};
  const auto t = load(dir, j, "nfc.json");
  ASSERT_EQ(t.normalizer(), qs::UnicodeForm::NFC);
  EXPECT_EQ(t.encode(composed, false), (Ids{47}));
  EXPECT_EQ(t.encode(decomposed, false), (Ids{47}));
  // Between added tokens each stretch is normalized on its own.
  EXPECT_EQ(t.encode("e\xCC\x81<|sep|>e\xCC\x81", false), (Ids{42, 51, 42}));
  // Invalid UTF-8 goes through as before (its bytes have no tokens here and
  // are dropped); the valid text after it is still composed.
  EXPECT_EQ(t.encode(std::string("\xFF") + decomposed, false), plain.encode(std::string("\xFF") + composed, false));
  EXPECT_EQ(t.encode(std::string("\xFF") + composed, false), plain.encode(std::string("\xFF") + composed, false));
  // A Sequence of forms collapses: NFD then NFC is NFC.
  j["normalizer"] = nlohmann::json::parse(R"({"type": "Sequence", "normalizers": [{"type": "NFD"}, {"type": "NFC"}]})");
  const auto seq = load(dir, j, "seq.json");
  EXPECT_EQ(seq.normalizer(), qs::UnicodeForm::NFC);
  EXPECT_EQ(seq.encode(decomposed, false), (Ids{47}));
  // Random bytes through the normalizer: no crash, ids in range.
  std::mt19937 rng(5);
  const std::string alphabet = "helo \xC3\xA9\xCC\x81<|sep>";
  for (int round = 0; round < 1000; ++round) {
    std::string s(rng() % 40, '\0');
    for (char& c : s) c = round % 2 ? alphabet[rng() % alphabet.size()] : static_cast<char>(rng() % 256);
    for (const auto id : t.encode(s, true)) ASSERT_TRUE(id >= 0 && static_cast<std::size_t>(id) < t.size());
  }
}

// NFKC replaces compatibility characters: the "ﬁ" ligature U+FB01 (EF AC 81)
// becomes "fi", "①" (E2 91 A0) becomes "1"; NFC keeps both.
TEST(BpeTokenizer, NfkcNormalizerMapsLigatures) {
  qs::test::TempDir dir;
  auto j = tokenizer_json(kLlama3Split);
  j["model"]["vocab"]["i"] = 54;
  j["normalizer"] = {{"type", "NFKC"}};
  const auto t = load(dir, j, "nfkc.json");
  EXPECT_EQ(t.encode("\xEF\xAC\x81", false), (Ids{12, 54}));
  EXPECT_EQ(t.encode("\xE2\x91\xA0", false), (Ids{13}));
  j["normalizer"] = {{"type", "NFC"}};
  const auto nfc = load(dir, j, "nfc.json");
  EXPECT_EQ(nfc.encode("\xEF\xAC\x81", false), (Ids{}));  // ï ¬ and 0x81 have no tokens
  // Other normalizers, alone or in a Sequence, are still refused by name.
  j["normalizer"] = nlohmann::json::parse(R"({"type": "Sequence", "normalizers": [{"type": "NFC"}, {"type": "Lowercase"}]})");
  qs::test::write_bytes(dir.file("lower.json"), j.dump());
  auto lower = qs::BpeTokenizer::from_hf_tokenizer_json(dir.file("lower.json"));
  ASSERT_FALSE(lower.ok());
  EXPECT_NE(lower.error().message.find("'Lowercase'"), std::string::npos) << lower.error().message;
}

// Random bytes (invalid UTF-8 included) and every truncation of the file: no
// crash, ids in range, and text made only of vocabulary bytes decodes back.
TEST(BpeTokenizer, FuzzedTextAndTruncatedFiles) {
  qs::test::TempDir dir;
  const auto t = load(dir, tokenizer_json(kLlama3Split));
  std::mt19937 rng(7);
  const std::string alphabet = "helowrd'st1234 \n\xC3\xA9<|sep>";
  for (int round = 0; round < 2000; ++round) {
    std::string s(rng() % 40, '\0');
    const bool raw = round % 2 == 0;
    for (char& c : s) c = raw ? static_cast<char>(rng() % 256) : alphabet[rng() % alphabet.size()];
    const auto ids = t.encode(s, true);
    for (const auto id : ids) ASSERT_TRUE(id >= 0 && static_cast<std::size_t>(id) < t.size());
    if (!raw && s.find("<|") == std::string::npos && s.find('>') == std::string::npos &&
        s.find('|') == std::string::npos && s.find('<') == std::string::npos && s.find('p') == std::string::npos) {
      // Every byte has a token, so nothing is dropped (a lone \xC3 or \xA9 included).
      EXPECT_EQ(t.decode(ids), s);
    }
  }
  const std::string text = tokenizer_json(kLlama3Split).dump();
  for (std::size_t cut = 0; cut < text.size(); cut += 13) {
    qs::test::write_bytes(dir.file("cut.json"), text.substr(0, cut));
    auto r = qs::BpeTokenizer::from_hf_tokenizer_json(dir.file("cut.json"));
    EXPECT_FALSE(r.ok());
  }
}

}  // namespace
