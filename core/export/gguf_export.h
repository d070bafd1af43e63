#pragma once
// GGUF export from a GGUF source with one of llama.cpp's file types: the same
// metadata (tokenizer included), the same tensor order, the same per-tensor
// types and the same bytes that llama-quantize writes for that file type
// (checked byte for byte against llama-quantize's files in the tests).
// Streaming: one tensor in memory at a time; atomic: a temporary file renamed
// on success, so a failed or cancelled export leaves nothing behind.
#include <cstdint>
#include <string>
#include <vector>

#include "model/model.h"
#include "quant/llama_ftype.h"
#include "util/op_context.h"
#include "util/result.h"

namespace qs {

struct GgufExportOptions {
  LlamaFtype ftype = LlamaFtype::Q8_0;
};

struct ExportedTensor {
  std::string name;
  DType from = DType::F32, to = DType::F32;
  std::string note;  // the rule or fallback that chose `to`, if any
};

struct GgufExportReport {
  std::vector<ExportedTensor> tensors;  // in file order
  std::uint64_t bytes = 0;              // size of the written file
};

// `source` must be a GGUF model (HF sources need the tokenizer conversion of
// the calibration work; they are refused with a message saying so). Refuses to
// write over the source file.
Result<GgufExportReport> export_gguf(const Model& source, const std::string& out_path, const GgufExportOptions& options,
                                     OpContext& ctx);

}  // namespace qs
