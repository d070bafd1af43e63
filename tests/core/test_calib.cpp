// Tokenizer, llama forward pass and perplexity against outside references on
// stories260K (../shared/models/stories260K): llama.cpp's token ids,
// llama-perplexity's figures and llama2.c's greedy output.
#include <gtest/gtest.h>

#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "calib/llama_forward.h"
#include "calib/perplexity.h"
#include "calib/spm_tokenizer.h"
#include "demo/demo_model.h"
#include "io/open_model.h"
#include "test_files.h"

namespace {

std::string stories(const std::string& shared, const std::string& rel) { return shared + "/models/stories260K/" + rel; }

std::vector<std::int32_t> reference_ids(const std::string& shared) {
  const auto j = nlohmann::json::parse(qs::test::read_bytes(stories(shared, "eval/tiny_stories_eval.llamacpp_ids.json")));
  return j.get<std::vector<std::int32_t>>();  // a flat list, BOS (1) first
}

TEST(SpmTokenizer, MatchesLlamaCppIdsThroughTokenizerModel) {
  QS_REQUIRE_SHARED();
  auto tok = qs::SpmTokenizer::from_spm_file(stories(shared, "hf/tokenizer.model"));
  ASSERT_TRUE(tok.ok()) << tok.error().message;
  EXPECT_EQ(tok->size(), 512u);
  EXPECT_EQ(tok->bos_id(), 1);
  EXPECT_EQ(tok->eos_id(), 2);
  const std::string text = qs::test::read_bytes(stories(shared, "eval/tiny_stories_eval.txt"));
  const auto ids = tok->encode(text, true);
  const auto want = reference_ids(shared);
  ASSERT_EQ(want.size(), 2066u);
  EXPECT_EQ(ids, want);
  // Decoding gives the text back (the added leading space removed).
  EXPECT_EQ(tok->decode(std::span(ids).subspan(1)), text);
}

// tokenizer.json (HF BPE, metaspace, byte fallback): merges by rank give the same ids.
TEST(SpmTokenizer, MatchesLlamaCppIdsThroughTokenizerJson) {
  QS_REQUIRE_SHARED();
  auto tok = qs::SpmTokenizer::from_hf_tokenizer_json(stories(shared, "hf/tokenizer.json"));
  ASSERT_TRUE(tok.ok()) << tok.error().message;
  EXPECT_EQ(tok->size(), 512u);
  EXPECT_EQ(tok->bos_id(), 1);
  const std::string text = qs::test::read_bytes(stories(shared, "eval/tiny_stories_eval.txt"));
  const auto ids = tok->encode(text, true);
  EXPECT_EQ(ids, reference_ids(shared));
  EXPECT_EQ(tok->decode(std::span(ids).subspan(1)), text);
  // A directory with tokenizer.json only uses it.
  qs::test::TempDir dir;
  qs::test::write_bytes(dir.file("tokenizer.json"), qs::test::read_bytes(stories(shared, "hf/tokenizer.json")));
  qs::Model m;
  m.path = dir.path().string();
  m.format = qs::ModelFormat::HfDirectory;
  auto from_dir = qs::SpmTokenizer::for_model(m);
  ASSERT_TRUE(from_dir.ok()) << from_dir.error().message;
  EXPECT_EQ(from_dir->encode(text, true), ids);
  // Byte-level BPE is refused with a reason.
  qs::test::write_bytes(dir.file("bytelevel.json"),
                        R"({"model": {"type": "BPE", "vocab": {"a": 0}, "merges": []}, "pre_tokenizer": {"type": "ByteLevel"}})");
  auto bl = qs::SpmTokenizer::from_hf_tokenizer_json(dir.file("bytelevel.json"));
  ASSERT_FALSE(bl.ok());
  EXPECT_EQ(bl.error().code, qs::ErrorCode::Unsupported);
}

TEST(SpmTokenizer, MatchesLlamaCppIdsThroughGgufAndHfDirectory) {
  QS_REQUIRE_SHARED();
  const std::string text = qs::test::read_bytes(stories(shared, "eval/tiny_stories_eval.txt"));
  const auto want = reference_ids(shared);
  for (const std::string rel : {"gguf/stories260K-f32.gguf", "gguf/stories260K-Q4_K_M.gguf", "hf"}) {
    auto m = qs::open_model(stories(shared, rel));
    ASSERT_TRUE(m.ok()) << m.error().message;
    auto tok = qs::SpmTokenizer::for_model(*m);
    ASSERT_TRUE(tok.ok()) << tok.error().message;
    EXPECT_TRUE(tok->add_bos()) << rel;
    EXPECT_EQ(tok->encode(text, tok->add_bos()), want) << rel;
  }
}

TEST(SpmTokenizer, ByteFallbackEmptyTextAndControlTokens) {
  QS_REQUIRE_SHARED();
  auto tok = qs::SpmTokenizer::from_spm_file(stories(shared, "hf/tokenizer.model"));
  ASSERT_TRUE(tok.ok()) << tok.error().message;
  EXPECT_EQ(tok->encode("", true), std::vector<std::int32_t>{1});
  EXPECT_TRUE(tok->encode("", false).empty());
  // "ü" is not a piece of this 512-token vocabulary ("é" is): its two UTF-8 bytes come as <0xC3><0xBC>.
  ASSERT_GE(tok->find("\xC3\xA9"), 0);
  ASSERT_LT(tok->find("\xC3\xBC"), 0);
  const std::int32_t c3 = tok->find("<0xC3>"), bc = tok->find("<0xBC>"), space = tok->find("\xE2\x96\x81");
  ASSERT_GE(c3, 0);
  ASSERT_GE(bc, 0);
  ASSERT_GE(space, 0);
  EXPECT_EQ(tok->encode("\xC3\xBC", false), (std::vector<std::int32_t>{space, c3, bc}));
  EXPECT_EQ(tok->decode(std::vector<std::int32_t>{space, c3, bc}), "\xC3\xBC");
  const std::string mixed = "caf\xC3\xA9  \xC3\xBC\tber\n\xE2\x9C\x93 ok";  // pieces, bytes, double space, tab, newline
  // stories260K's normalizer spec has remove_extra_whitespaces on: the double
  // space comes back as one, as libsentencepiece gives it.
  EXPECT_TRUE(tok->remove_extra_whitespaces());
  EXPECT_EQ(tok->decode(tok->encode(mixed, true)), "caf\xC3\xA9 \xC3\xBC\tber\n\xE2\x9C\x93 ok");
  EXPECT_EQ(tok->encode("  a  ", false), tok->encode("a", false));
  EXPECT_EQ(tok->piece_text(1), "");   // <s> is a control token
  EXPECT_EQ(tok->piece_text(13), "\n");  // <0x0A>
}

// A hand-made vocabulary: merges follow the piece scores (not left to right),
// and user-defined pieces split the raw text, each following text fragment
// getting the space prefix again (llama.cpp's is_prev_special rule).
TEST(SpmTokenizer, ScoreOrderAndUserDefinedPieces) {
  using T = qs::SpmPieceType;
  std::vector<qs::SpmPiece> v = {{"<unk>", 0, T::Unknown}, {"<s>", 0, T::Control},  {"</s>", 0, T::Control},
                                 {"\xE2\x96\x81", -1, T::Normal}, {"a", -2, T::Normal},  {"b", -2, T::Normal},
                                 {"\xE2\x96\x81" "a", -0.5f, T::Normal}, {"\xE2\x96\x81" "b", -0.5f, T::Normal},
                                 {"<sep>", 0, T::UserDefined}, {"ab", -0.1f, T::Normal}};
  auto tok = qs::SpmTokenizer::from_pieces(v, "test vocab");
  ASSERT_TRUE(tok.ok()) << tok.error().message;
  EXPECT_EQ(tok->bos_id(), 1);
  EXPECT_EQ(tok->unk_id(), 0);
  // "▁ab": "ab" (-0.1) beats "▁a" (-0.5), and "▁ab" is no piece.
  EXPECT_EQ(tok->encode("ab", false), (std::vector<std::int32_t>{3, 9}));
  EXPECT_EQ(tok->encode("a<sep>b", true), (std::vector<std::int32_t>{1, 6, 8, 7}));
  EXPECT_EQ(tok->encode("<sep><sep>", false), (std::vector<std::int32_t>{8, 8}));
  // No byte pieces in this vocabulary: an unknown character becomes <unk>.
  EXPECT_EQ(tok->encode("c", false), (std::vector<std::int32_t>{3, 0}));
  EXPECT_EQ(tok->decode(std::vector<std::int32_t>{6, 8, 7}), "a<sep> b");
}

// A metaspace tokenizer.json whose normalizer Sequence starts with NFC: the
// text is composed before "▁" replaces spaces. Decomposed "é" is "e" U+0301
// (65 CC 81); the vocabulary has the composed "é" (C3 A9) only.
TEST(SpmTokenizer, MetaspaceTokenizerJsonAppliesNfc) {
  qs::test::TempDir dir;
  auto j = nlohmann::json::parse(R"({"model": {"type": "BPE", "unk_token": "<unk>", "byte_fallback": true,
      "vocab": {"<unk>": 0, "<s>": 1, "</s>": 2, "\u2581": 3, "c": 4, "a": 5, "f": 6, "\u00e9": 7, "e": 8,
                "\u2581c": 9, "\u2581ca": 10, "\u2581caf": 11},
      "merges": ["\u2581 c", "\u2581c a", "\u2581ca f"]},
    "added_tokens": [{"id": 0, "content": "<unk>", "special": true}, {"id": 1, "content": "<s>", "special": true}],
    "normalizer": {"type": "Sequence", "normalizers": [{"type": "Prepend", "prepend": "\u2581"},
                   {"type": "Replace", "pattern": {"String": " "}, "content": "\u2581"}]}})");
  const std::string composed = "caf\xC3\xA9 cafe", decomposed = "cafe\xCC\x81 cafe";
  qs::test::write_bytes(dir.file("plain.json"), j.dump());
  auto plain = qs::SpmTokenizer::from_hf_tokenizer_json(dir.file("plain.json"));
  ASSERT_TRUE(plain.ok()) << plain.error().message;
  EXPECT_FALSE(plain->normalizer().has_value());
  // Without NFC the mark has no piece and no byte pieces: two <unk> for its two bytes.
  EXPECT_EQ(plain->encode(decomposed, false), (std::vector<std::int32_t>{11, 8, 0, 0, 11, 8}));
  j["normalizer"]["normalizers"].insert(j["normalizer"]["normalizers"].begin(), nlohmann::json{{"type", "NFC"}});
  qs::test::write_bytes(dir.file("nfc.json"), j.dump());
  auto nfc = qs::SpmTokenizer::from_hf_tokenizer_json(dir.file("nfc.json"));
  ASSERT_TRUE(nfc.ok()) << nfc.error().message;
  EXPECT_EQ(nfc->normalizer(), qs::UnicodeForm::NFC);
  EXPECT_EQ(nfc->encode(composed, false), (std::vector<std::int32_t>{11, 7, 11, 8}));
  EXPECT_EQ(nfc->encode(decomposed, false), (std::vector<std::int32_t>{11, 7, 11, 8}));
  EXPECT_EQ(plain->encode(composed, false), nfc->encode(composed, false));  // the metaspace steps are as before
}

// llama.cpp's llama-perplexity -c 256 figures (shared/models/README.md).
struct PplCase {
  const char* rel;
  double want;
  double tolerance;  // relative
};

double run_ppl(const std::string& shared, const std::string& rel, qs::PerplexityResult* out = nullptr) {
  auto m = qs::open_model(stories(shared, rel));
  EXPECT_TRUE(m.ok()) << m.error().message;
  if (!m) return 0;
  auto tok = qs::SpmTokenizer::for_model(*m);
  EXPECT_TRUE(tok.ok()) << tok.error().message;
  auto lm = qs::LlamaModel::load(*m);
  EXPECT_TRUE(lm.ok()) << lm.error().message;
  if (!tok || !lm) return 0;
  const auto ids = tok->encode(qs::test::read_bytes(stories(shared, "eval/tiny_stories_eval.txt")), true);
  qs::PerplexityOptions opt;
  opt.n_ctx = 256;
  opt.bos = tok->bos_id();
  auto r = qs::perplexity(*lm, ids, opt);
  EXPECT_TRUE(r.ok()) << r.error().message;
  if (!r) return 0;
  if (out) *out = *r;
  return r->ppl;
}

TEST(LlamaForward, PerplexityMatchesLlamaCpp) {
  QS_REQUIRE_SHARED();
  const PplCase cases[] = {
      {"gguf/stories260K-f32.gguf", 4.6576, 0.005},
      {"hf", 4.6576, 0.005},
      {"gguf/stories260K-F16.gguf", 4.6579, 0.01},
      {"gguf/stories260K-Q8_0-ffndownF16.gguf", 4.6489, 0.01},
      {"gguf/stories260K-Q6_K.gguf", 4.6489, 0.01},
      {"gguf/stories260K-Q5_K_M.gguf", 4.6133, 0.01},
      {"gguf/stories260K-Q4_K_M.gguf", 4.8044, 0.01},
      {"gguf/stories260K-Q3_K_M.gguf", 4.9153, 0.01},
      {"gguf/stories260K-Q2_K.gguf", 4.9100, 0.01},
      {"gguf/stories260K-Q4_0-ffndownF16.gguf", 5.0145, 0.01},
  };
  for (const PplCase& c : cases) {
    qs::PerplexityResult r;
    const double ppl = run_ppl(shared, c.rel, &r);
    std::printf("  %-40s ppl %.4f ± %.4f (llama.cpp %.4f, %+.3f %%), %lld tokens scored\n", c.rel, ppl, r.ppl_error,
                c.want, 100.0 * (ppl / c.want - 1.0), static_cast<long long>(r.tokens_scored));
    EXPECT_NEAR(ppl, c.want, c.want * c.tolerance) << c.rel;
    EXPECT_EQ(r.chunks, 8) << c.rel;
    EXPECT_EQ(r.tokens_scored, 8 * 127) << c.rel;
  }
}

// llama2.c run.c, greedy (temperature 0), 200 steps from BOS: 200 tokens are
// generated, the first one's leading space dropped after BOS, then a newline.
TEST(LlamaForward, GreedyDecodingReproducesLlama2c) {
  QS_REQUIRE_SHARED();
  const std::string want = qs::test::read_bytes(stories(shared, "eval/reference_greedy_200.txt"));
  for (const std::string rel : {"gguf/stories260K-f32.gguf", "hf"}) {
    auto m = qs::open_model(stories(shared, rel));
    ASSERT_TRUE(m.ok()) << m.error().message;
    auto tok = qs::SpmTokenizer::for_model(*m);
    ASSERT_TRUE(tok.ok()) << tok.error().message;
    auto lm = qs::LlamaModel::load(*m);
    ASSERT_TRUE(lm.ok()) << lm.error().message;
    const std::vector<std::int32_t> prompt{tok->bos_id()};
    auto out = qs::generate_greedy(*lm, prompt, 200, tok->bos_id());
    ASSERT_TRUE(out.ok()) << out.error().message;
    EXPECT_EQ(out->size(), 200u) << rel;
    EXPECT_EQ(tok->decode(*out) + "\n", want) << rel;
  }
}

// The KV cache: a sequence run in pieces gives the logits of the whole run.
TEST(LlamaForward, IncrementalMatchesWholeSequence) {
  QS_REQUIRE_SHARED();
  auto m = qs::open_model(stories(shared, "gguf/stories260K-f32.gguf"));
  ASSERT_TRUE(m.ok()) << m.error().message;
  auto lm = qs::LlamaModel::load(*m);
  ASSERT_TRUE(lm.ok()) << lm.error().message;
  const auto ids = reference_ids(shared);
  const std::span<const std::int32_t> seq(ids.data(), 150);
  qs::LlamaRunner runner(*lm);
  qs::LlamaCache whole(lm->config(), 150), parts(lm->config(), 150);
  std::vector<float> all, piece, got;
  ASSERT_TRUE(runner.forward(whole, seq, all).ok());
  for (std::size_t start = 0; start < seq.size();) {
    const std::size_t len = std::min<std::size_t>(start < 100 ? 37 : 1, seq.size() - start);
    ASSERT_TRUE(runner.forward(parts, seq.subspan(start, len), piece).ok());
    got.insert(got.end(), piece.begin(), piece.end());
    start += len;
  }
  ASSERT_EQ(got.size(), all.size());
  float max_diff = 0;
  for (std::size_t i = 0; i < all.size(); ++i) max_diff = std::max(max_diff, std::abs(got[i] - all[i]));
  EXPECT_LT(max_diff, 1e-4f);
  EXPECT_EQ(parts.position(), 150);
  // A full cache refuses more.
  EXPECT_FALSE(runner.forward(parts, seq.subspan(0, 1), piece).ok());
}

// The HF directory (rotate-half RoPE, un-permuted Q/K) and the GGUF
// (interleaved RoPE, permuted rows) are the same network: same logits.
TEST(LlamaForward, HfAndGgufGiveTheSameLogits) {
  QS_REQUIRE_SHARED();
  std::vector<float> logits[2];
  const auto ids = reference_ids(shared);
  const std::span<const std::int32_t> seq(ids.data(), 64);
  int k = 0;
  for (const std::string rel : {"gguf/stories260K-f32.gguf", "hf"}) {
    auto m = qs::open_model(stories(shared, rel));
    ASSERT_TRUE(m.ok()) << m.error().message;
    auto lm = qs::LlamaModel::load(*m);
    ASSERT_TRUE(lm.ok()) << lm.error().message;
    EXPECT_EQ(lm->config().rope_interleaved, rel != "hf");
    EXPECT_FALSE(lm->config().tied_embeddings);
    qs::LlamaRunner runner(*lm);
    qs::LlamaCache cache(lm->config(), 64);
    ASSERT_TRUE(runner.forward(cache, seq, logits[k++]).ok());
  }
  ASSERT_EQ(logits[0].size(), 64u * 512u);
  float max_diff = 0;
  for (std::size_t i = 0; i < logits[0].size(); ++i) max_diff = std::max(max_diff, std::abs(logits[0][i] - logits[1][i]));
  EXPECT_LT(max_diff, 1e-3f);
}

TEST(LlamaForward, RejectsWhatItCannotRun) {
  QS_REQUIRE_SHARED();
  auto m = qs::open_model(shared + "/models/tinygrad-mnist-mlp/model.safetensors");
  ASSERT_TRUE(m.ok()) << m.error().message;
  auto lm = qs::LlamaModel::load(*m);
  ASSERT_FALSE(lm.ok());
  EXPECT_EQ(lm.error().code, qs::ErrorCode::Unsupported);

  auto g = qs::open_model(stories(shared, "gguf/stories260K-f32.gguf"));
  ASSERT_TRUE(g.ok());
  auto gl = qs::LlamaModel::load(*g);
  ASSERT_TRUE(gl.ok());
  qs::PerplexityOptions opt;
  opt.n_ctx = 256;
  const std::vector<std::int32_t> few(100, 5);
  EXPECT_FALSE(qs::perplexity(*gl, few, opt).ok());  // fewer tokens than a chunk
  const std::vector<std::int32_t> bad{1, 600};
  qs::LlamaRunner runner(*gl);
  qs::LlamaCache cache(gl->config(), 8);
  std::vector<float> logits;
  EXPECT_FALSE(runner.forward(cache, bad, logits).ok());  // id outside the vocabulary
}

// Without ../shared: the generated demo model (F16 HF directory) runs, its
// logits are finite, and the KV cache agrees with a whole-sequence run.
TEST(LlamaForward, DemoModelRunsIncrementally) {
  qs::test::TempDir dir;
  qs::DemoSpec spec;
  spec.layers = 2;
  spec.hidden = 64;
  spec.intermediate = 96;
  spec.vocab = 300;
  ASSERT_TRUE(qs::write_demo_model(dir.path().string(), spec).ok());
  auto m = qs::open_model(dir.path().string());
  ASSERT_TRUE(m.ok()) << m.error().message;
  auto lm = qs::LlamaModel::load(*m);
  ASSERT_TRUE(lm.ok()) << lm.error().message;
  EXPECT_EQ(lm->config().layers, 2);
  EXPECT_EQ(lm->config().vocab, 300);
  EXPECT_FALSE(lm->config().rope_interleaved);
  std::vector<std::int32_t> seq(70);
  for (std::size_t i = 0; i < seq.size(); ++i) seq[i] = static_cast<std::int32_t>((i * 53 + 7) % 300);
  qs::LlamaRunner runner(*lm);
  qs::LlamaCache whole(lm->config(), 70), parts(lm->config(), 70);
  std::vector<float> all, piece, got;
  ASSERT_TRUE(runner.forward(whole, seq, all).ok());
  for (float v : all) ASSERT_TRUE(std::isfinite(v));
  for (std::size_t start = 0; start < seq.size(); start += 10) {
    ASSERT_TRUE(runner.forward(parts, std::span(seq).subspan(start, 10), piece).ok());
    got.insert(got.end(), piece.begin(), piece.end());
  }
  ASSERT_EQ(got.size(), all.size());
  double max_diff = 0, max_abs = 0;
  for (std::size_t i = 0; i < all.size(); ++i) {
    max_diff = std::max(max_diff, static_cast<double>(std::abs(got[i] - all[i])));
    max_abs = std::max(max_abs, static_cast<double>(std::abs(all[i])));
  }
  EXPECT_LT(max_diff, 1e-4 * std::max(1.0, max_abs));
}

}  // namespace

// tokenizer.json members of the wrong JSON type are input errors or ignored,
// never an exception out of the reader (nlohmann's value() throws on them).
TEST(SpmTokenizer, WrongTypedMembersDoNotThrow) {
  const auto dir = std::filesystem::temp_directory_path() / ("qs_spm_types_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const auto write = [&](const std::string& text) {
    const std::string path = (dir / "tokenizer.json").string();
    std::ofstream(path) << text;
    return path;
  };
  const std::string metaspace = R"("normalizer":{"type":"Replace","pattern":{"String":" "},"content":"\u2581"})";
  auto bad_type = qs::SpmTokenizer::from_hf_tokenizer_json(write(R"({"model":{"type":5,"vocab":{},"merges":[]},)" + metaspace + "}"));
  ASSERT_FALSE(bad_type.ok());
  EXPECT_NE(bad_type.error().message.find("only BPE"), std::string::npos) << bad_type.error().message;
  auto odd = qs::SpmTokenizer::from_hf_tokenizer_json(write(
      R"({"model":{"type":"BPE","unk_token":[1],"vocab":{"<unk>":0,"<s>":1,"a":2,"b":3},"merges":["a b"]},)" + metaspace +
      R"(,"added_tokens":[{"id":1,"content":"<s>","special":"yes"}]})"));
  EXPECT_TRUE(odd.ok() || !odd.error().message.empty());
  std::filesystem::remove_all(dir);
}
