#pragma once
// What `perplexity` and `eval` start from: the model loaded for the forward
// pass and the evaluation text's token ids, with the chunking that goes with
// the tokenizer (BOS first when it adds one).
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "calib/llama_forward.h"
#include "calib/perplexity.h"
#include "model/model.h"

namespace qs::cli {

struct EvalInputs {
  std::unique_ptr<Model> model;      // where the forward pass's weights come from
  std::unique_ptr<LlamaModel> lm;
  std::vector<std::int32_t> ids;     // the whole text
  qs::PerplexityOptions chunking;    // n_ctx, max_chunks, bos
};

// Prints "quantscope-cli: <why>" on stderr and sets `exit_code` when something
// cannot be read or loaded: 3 for a model or tokenizer QuantScope does not
// support, 2 for anything else.
std::optional<EvalInputs> load_eval_inputs(const std::string& model_path, const std::string& text_path, int ctx,
                                           int chunks, int& exit_code);

// The CLI's way to fail: the message on stderr, then the exit code.
int cli_fail(const std::string& message, int code);

}  // namespace qs::cli
