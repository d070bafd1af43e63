#include "calib/tokenizer.h"

#include <filesystem>

#include "io/gguf.h"
#include "model/model.h"

namespace qs {

Result<Tokenizer> Tokenizer::for_model(const Model& m) {
  auto spm = [&]() -> Result<Tokenizer> {
    auto t = SpmTokenizer::for_model(m);
    if (!t) return t.error();
    return Tokenizer(std::move(*t));
  };
  if (m.gguf) {
    const GgufValue* kind = m.gguf->find("tokenizer.ggml.model");
    if (!kind || !kind->as_string() || *kind->as_string() != "gpt2") return spm();
    auto t = BpeTokenizer::from_gguf(*m.gguf, m.path);
    if (!t) return t.error();
    return Tokenizer(std::move(*t));
  }
  namespace fs = std::filesystem;
  std::error_code ec;
  const fs::path dir = fs::is_directory(m.path, ec) ? fs::path(m.path) : fs::path(m.path).parent_path();
  const fs::path json_file = dir / "tokenizer.json";
  const fs::path model_file = dir / "tokenizer.model";
  if (fs::exists(model_file, ec)) {
#ifdef QS_HAVE_SENTENCEPIECE
    // The library applies the model's own normalizer spec; our SpmTokenizer
    // (the fallback in builds without it) hard-codes Llama's.
    auto t = SentencePieceTokenizer::from_file(model_file.string());
    if (!t) return t.error();
    auto add_bos = read_add_bos_token((dir / "tokenizer_config.json").string());
    if (!add_bos) return add_bos.error();
    if (*add_bos) t->set_add_bos(**add_bos);
    return Tokenizer(std::move(*t));
#else
    return spm();
#endif
  }
  if (!fs::exists(json_file, ec)) return spm();
  auto byte_level = BpeTokenizer::is_byte_level_tokenizer_json(json_file.string());
  if (!byte_level) return byte_level.error();
  if (!*byte_level) return spm();
  auto t = BpeTokenizer::from_hf_tokenizer_json(json_file.string());
  if (!t) return t.error();
  if (const fs::path config = dir / "tokenizer_config.json"; fs::exists(config, ec))
    if (auto r = t->apply_tokenizer_config(config.string()); !r) return r.error();
  return Tokenizer(std::move(*t));
}

}  // namespace qs
