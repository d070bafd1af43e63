#pragma once
// Calibration from a text file: tokenize it with the model's SentencePiece
// tokenizer, run the llama forward pass over it in chunks and collect every
// block's linear-input Hessians (what a plan's method "gptq" needs). Shared by
// the CLI's and the GUI's GGUF export.
#include <string>

#include "calib/hessians.h"
#include "model/model.h"
#include "util/op_context.h"
#include "util/result.h"

namespace qs {

inline constexpr int kCalibrationChunk = 256;  // tokens per forward pass

// At most `max_tokens` tokens of the text (<= 0: all of it). `backend`: where
// the Hessians are summed (collect_hessians); null: here on the CPU.
Result<CalibrationHessians> calibrate_on_text(const Model& model, const std::string& text_path, int max_tokens,
                                              OpContext& ctx = OpContext::none(), Backend* backend = nullptr);

}  // namespace qs
