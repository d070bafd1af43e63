#include "eval_inputs.h"

#include <cstdio>

#include "calib/tokenizer.h"
#include "io/open_model.h"
#include "util/read_text_file.h"

namespace qs::cli {

int cli_fail(const std::string& message, int code) {
  std::fprintf(stderr, "quantscope-cli: %s\n", message.c_str());
  return code;
}

int exit_code_of(const Error& e) {
  switch (e.code) {
    case ErrorCode::Format:
    case ErrorCode::Unsupported:
    case ErrorCode::InvalidArgument:
      return 2;
    case ErrorCode::Io:
    case ErrorCode::Cancelled:
    case ErrorCode::Backend:
      break;
  }
  return 1;
}

std::optional<EvalInputs> load_eval_inputs(const std::string& model_path, const std::string& text_path, int ctx,
                                           int chunks, int& exit_code) {
  auto text = read_text_file(text_path, std::size_t{1} << 30);
  if (!text) return exit_code = cli_fail(text.error().message, 2), std::nullopt;
  auto model = open_model(model_path);
  if (!model) return exit_code = cli_fail(model.error().message, 2), std::nullopt;
  EvalInputs in;
  in.model = std::make_unique<Model>(std::move(*model));
  auto tok = Tokenizer::for_model(*in.model);
  if (!tok) return exit_code = cli_fail(tok.error().message, 2), std::nullopt;
  auto lm = LlamaModel::load(*in.model);
  if (!lm) return exit_code = cli_fail(lm.error().message, 2), std::nullopt;
  in.lm = std::make_unique<LlamaModel>(std::move(*lm));
  in.ids = tok->encode(*text, tok->add_bos());
  in.chunking.n_ctx = ctx;
  in.chunking.max_chunks = chunks;
  in.chunking.bos = tok->add_bos() ? tok->bos_id() : -1;
  return in;
}

}  // namespace qs::cli
