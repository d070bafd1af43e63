#pragma once
// GGUF export with one of llama.cpp's file types. From a GGUF source: the same
// metadata (tokenizer included), the same tensor order, the same per-tensor
// types and the same bytes that llama-quantize writes for that file type
// (checked byte for byte against llama-quantize's files in the tests). From a
// Hugging Face llama/mistral directory with a SentencePiece tokenizer: what
// llama.cpp's converter makes of it (gguf_source.h), then the same types.
// Streaming: one tensor in memory at a time; atomic: a temporary file renamed
// on success, so a failed or cancelled export leaves nothing behind.
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "backend/cpu_backend.h"
#include "model/model.h"
#include "quant/llama_ftype.h"
#include "util/op_context.h"
#include "util/result.h"

namespace qs {

struct Plan;
struct ActivationCapture;
struct ImportanceMatrix;

class Backend;

struct GgufExportOptions {
  LlamaFtype ftype = LlamaFtype::Q8_0;
  // With a plan, each layer gets the ggml type of its plan format ("q4_k",
  // "iq4_nl", "f16", ...; other formats are refused), with llama.cpp's fallback
  // for rows the type cannot take; other tensors are copied. general.file_type
  // then says the llama.cpp file type whose types the plan reproduces exactly
  // (its preset's, e.g. Q4_K_M), else the one of the plan's default format.
  const Plan* plan = nullptr;
  // A calibration run's capture of the source model (calib/calibrate.h): with
  // its Hessians a plan's method "gptq" runs GPTQ onto each layer's ggml grid
  // (Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K, Q5_K, Q6_K) and "clip" weights its
  // search by diag(H).
  const ActivationCapture* capture = nullptr;
  // Where GPTQ runs (Backend::gptq: a device takes what it can and hands the
  // rest to the CPU): the chosen device's backend, the CPU's by default.
  Backend* backend = cpu_backend().get();
  // Write and verify past the page cache (O_DIRECT) where the file system
  // allows it (util/atomic_file.h): same bytes, less CPU; off: plain I/O.
  bool direct_io = true;
  // llama-quantize --pure: every weight matrix in the file type's base type,
  // without its per-tensor rules (no effect with a plan).
  bool pure = false;
  // llama-quantize --imatrix, with a file type: each converted tensor the
  // matrix names is quantized with its columns' importance
  // (ggml_imatrix_quants.h); the others as without. Refused with a plan: its
  // layers are written as the plan is measured, and plans take none yet.
  const ImportanceMatrix* imatrix = nullptr;
};

struct ExportedTensor {
  std::string name;
  DType from = DType::F32, to = DType::F32;
  std::string note;  // the rule or fallback that chose `to`, if any
  double sqnr_db = INFINITY;  // of the written tensor against its source (converted tensors; copies are exact)
};

struct GgufExportReport {
  std::vector<ExportedTensor> tensors;  // in file order
  std::uint64_t bytes = 0;              // size of the written file
  std::uint64_t tensor_bytes = 0, elements = 0;  // as GgufPrediction's
  double bits_per_weight() const { return elements ? 8.0 * static_cast<double>(tensor_bytes) / static_cast<double>(elements) : 0.0; }
  // The file was read back before the rename: every tensor's name, type,
  // shape and bytes (by hash); an export that fails this fails and leaves nothing.
  bool verified = false;
};

// What export_gguf with these options writes, decided without reading a
// weight: every tensor's type and bytes, and the file's size to the byte.
struct PredictedTensor {
  std::string name, source;  // the GGUF name and the source tensor's
  DType type = DType::F32;
  std::uint64_t elements = 0, bytes = 0;
  std::string note;  // the fallback that chose `type`, if any
};
// Bits per weight, QuantScope's one account (docs/plan-format.md), as
// llama.cpp reports a model's BPW: 8 x the bytes of every tensor the file
// holds (embeddings, head, norms and fallbacks included; no header or padding)
// over the count of their elements.
struct GgufPrediction {
  std::vector<PredictedTensor> tensors;  // in file order
  std::uint64_t header_bytes = 0;        // metadata and tensor infos, padded
  std::uint64_t bytes = 0;               // the whole file
  std::uint64_t tensor_bytes = 0, elements = 0;
  double bits_per_weight() const { return elements ? 8.0 * static_cast<double>(tensor_bytes) / static_cast<double>(elements) : 0.0; }
};
// Methods are checked as the export checks them, but no calibration is needed
// (a gptq layer is predicted at its type).
Result<GgufPrediction> predict_gguf(const Model& source, const GgufExportOptions& options);

// Refuses to write over any file of the source.
Result<GgufExportReport> export_gguf(const Model& source, const std::string& out_path, const GgufExportOptions& options,
                                     OpContext& ctx);

}  // namespace qs
