// Byte-level BPE against Hugging Face tokenizers' own ids, outside CI: llama.cpp's
// vocabulary test files (models/ggml-vocab-NAME.gguf with .gguf.inp, inputs cut
// by "\n__ggml_vocab_test__\n", and .gguf.out, the ids HF tokenizers gave, one
// line per input). Point QS_VOCAB_DIR at a folder holding them; without it the
// test skips. Every byte-level ("gpt2") vocabulary found is checked case by case.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <sstream>

#include <nlohmann/json.hpp>

#include "calib/bpe_tokenizer.h"
#include "io/gguf.h"
#include "test_files.h"

namespace {

std::vector<std::string> split_inputs(const std::string& raw) {
  const std::string sep = "\n__ggml_vocab_test__\n";
  std::vector<std::string> out;
  for (std::size_t pos = 0; pos < raw.size();) {
    const std::size_t next = raw.find(sep, pos);
    if (next == std::string::npos) {
      out.push_back(raw.substr(pos));
      break;
    }
    out.push_back(raw.substr(pos, next - pos));
    pos = next + sep.size();
  }
  return out;
}

std::vector<std::vector<std::int32_t>> read_outputs(const std::string& raw) {
  std::vector<std::vector<std::int32_t>> out;
  std::istringstream lines(raw);
  for (std::string line; std::getline(lines, line);) {
    std::istringstream ids(line);
    std::vector<std::int32_t> v;
    for (long long id; ids >> id;) v.push_back(static_cast<std::int32_t>(id));
    out.push_back(std::move(v));
  }
  return out;
}

std::string ids_text(const std::vector<std::int32_t>& v) {
  std::string s;
  for (const auto id : v) s += std::to_string(id) + " ";
  return s;
}

// The pre_tokenizer the model's Hugging Face tokenizer.json has, for the
// tokenizer.ggml.pre names llama.cpp writes ("" when not written out here).
std::string hf_pre_tokenizer(const std::string& pre) {
  const std::string byte_level = R"({"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true})";
  if (pre == "gpt-2" || pre == "mpt") return byte_level;
  if (pre == "starcoder" || pre == "refact")
    return R"({"type": "Sequence", "pretokenizers": [{"type": "Digits", "individual_digits": true}, )" + byte_level + "]}";
  if (pre == "falcon")
    return R"({"type": "Sequence", "pretokenizers": [{"type": "Punctuation", "behavior": "Contiguous"}, )" + byte_level +
           R"(, {"type": "Digits", "individual_digits": false},
               {"type": "Split", "pattern": {"Regex": "[0-9][0-9][0-9]"}, "behavior": "Isolated", "invert": false}]})";
  if (pre == "deepseek-coder")
    return R"({"type": "Sequence", "pretokenizers": [
      {"type": "Split", "pattern": {"Regex": "[\r\n]"}, "behavior": "Isolated", "invert": false},
      {"type": "Split", "pattern": {"Regex": "\\s?\\p{L}+"}, "behavior": "Isolated", "invert": false},
      {"type": "Split", "pattern": {"Regex": "\\s?\\p{P}+"}, "behavior": "Isolated", "invert": false},
      {"type": "Split", "pattern": {"Regex": "[\u4e00-\u9fa5\u0800-\u4e00\uac00-\ud7ff]+"}, "behavior": "Isolated", "invert": false},
      {"type": "Digits", "individual_digits": true},
      {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": false}]})";
  return {};
}

// A tokenizer.json with the GGUF's vocabulary and merges and the model's HF
// pre-tokenizer: checks the tokenizer.json reading of those pre-tokenizers.
std::string tokenizer_json_of(const qs::GgufFile& g, const std::string& pre_tokenizer) {
  const auto& tokens = g.find("tokenizer.ggml.tokens")->as_array()->strings;
  const auto& merges = g.find("tokenizer.ggml.merges")->as_array()->strings;
  const qs::GgufValue* types = g.find("tokenizer.ggml.token_type");
  nlohmann::json vocab = nlohmann::json::object(), added = nlohmann::json::array(), m = nlohmann::json::array();
  for (std::size_t i = 0; i < tokens.size(); ++i) {
    const int type = types ? static_cast<int>(*types->as_array()->number(i)) : 1;
    vocab[std::string(tokens[i])] = i;
    if (type == 3 || type == 4) added.push_back({{"id", i}, {"content", std::string(tokens[i])}, {"special", type == 3}});
  }
  for (const auto merge : merges) m.push_back(std::string(merge));
  nlohmann::json j = {{"added_tokens", added},
                      {"normalizer", nullptr},
                      {"pre_tokenizer", nlohmann::json::parse(pre_tokenizer)},
                      {"decoder", {{"type", "ByteLevel"}}},
                      {"model", {{"type", "BPE"}, {"vocab", vocab}, {"merges", m}}}};
  return j.dump();
}

TEST(BpeVocabConformance, LlamaCppVocabularyFiles) {
  const char* dir = std::getenv("QS_VOCAB_DIR");
  if (!dir || !*dir) GTEST_SKIP() << "QS_VOCAB_DIR is not set: point it at llama.cpp's models/ggml-vocab-*.gguf(.inp/.out) to run";
  namespace fs = std::filesystem;
  std::vector<fs::path> files;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.path().extension() == ".gguf" && fs::exists(e.path().string() + ".inp") && fs::exists(e.path().string() + ".out"))
      files.push_back(e.path());
  std::sort(files.begin(), files.end());
  int checked = 0;
  for (const fs::path& f : files) {
    auto g = qs::read_gguf(f.string());
    ASSERT_TRUE(g.ok()) << g.error().message;
    const qs::GgufValue* model = g->find("tokenizer.ggml.model");
    if (!model || !model->as_string() || *model->as_string() != "gpt2") continue;  // not byte-level BPE
    const qs::GgufValue* pre = g->find("tokenizer.ggml.pre");
    const std::string pre_name = pre && pre->as_string() ? *pre->as_string() : "(none)";
    auto tok = qs::BpeTokenizer::from_gguf(*g, f.string());
    if (!tok) {
      std::printf("%-36s pre=%-16s not loaded: %s\n", f.filename().c_str(), pre_name.c_str(), tok.error().message.c_str());
      ADD_FAILURE() << tok.error().message;
      continue;
    }
    const auto inputs = split_inputs(qs::test::read_bytes(f.string() + ".inp"));
    const auto outputs = read_outputs(qs::test::read_bytes(f.string() + ".out"));
    ASSERT_EQ(inputs.size(), outputs.size()) << f;
    int match = 0, round_trip = 0;
    for (std::size_t i = 0; i < inputs.size(); ++i) {
      const auto ids = tok->encode(inputs[i], false);  // as llama.cpp's test: no BOS
      if (ids == outputs[i]) ++match;
      else ADD_FAILURE() << f.filename() << " case " << i << " '" << inputs[i] << "'\n  ours: " << ids_text(ids)
                         << "\n  want: " << ids_text(outputs[i]);
      if (tok->decode(ids) == inputs[i]) ++round_trip;
    }
    std::printf("%-36s pre=%-16s %zu tokens %zu merges: %d/%zu cases match, %d/%zu decode back to the input\n",
                f.filename().c_str(), pre_name.c_str(), tok->size(), tok->merge_count(), match, inputs.size(), round_trip,
                inputs.size());
    if (const std::string hf_pre = hf_pre_tokenizer(pre_name); !hf_pre.empty()) {
      qs::test::TempDir tmp;
      qs::test::write_bytes(tmp.file("tokenizer.json"), tokenizer_json_of(*g, hf_pre));
      auto js = qs::BpeTokenizer::from_hf_tokenizer_json(tmp.file("tokenizer.json"));
      ASSERT_TRUE(js.ok()) << js.error().message;
      int js_match = 0;
      for (std::size_t i = 0; i < inputs.size(); ++i) {
        const auto ids = js->encode(inputs[i], false);
        if (ids == outputs[i]) ++js_match;
        else ADD_FAILURE() << f.filename() << " as tokenizer.json, case " << i << "\n  ours: " << ids_text(ids)
                           << "\n  want: " << ids_text(outputs[i]);
      }
      std::printf("%-36s   the same as tokenizer.json (HF pre_tokenizer): %d/%zu cases match\n", "", js_match, inputs.size());
    }
    ++checked;
  }
  if (checked == 0) GTEST_SKIP() << "no byte-level vocabulary with .inp/.out files in " << dir;
}

}  // namespace
