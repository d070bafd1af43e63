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

// Prints "quantscope-cli: <why>" on stderr and sets `exit_code` (2: the model,
// tokenizer or text is refused) when something cannot be read or loaded.
std::optional<EvalInputs> load_eval_inputs(const std::string& model_path, const std::string& text_path, int ctx,
                                           int chunks, int& exit_code);

// The CLI's way to fail: the message on stderr, then the exit code.
int cli_fail(const std::string& message, int code);

// The exit code for an error: 2 when the input is refused (damaged, lying,
// unsupported, or a request it cannot take), 1 when the work failed for
// another reason (the OS, the device, a cancel). README "Exit codes".
int exit_code_of(const Error& e);

}  // namespace qs::cli
