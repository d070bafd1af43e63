#pragma once
// What a GGUF export writes, before types are chosen: the metadata and the
// tensors under their GGUF names, each pointing at its source bytes. From a
// GGUF model that is the file itself; from a Hugging Face llama-family model
// it is what llama.cpp's converter makes of it (names, Q/K row order,
// architecture keys, the SentencePiece vocabulary).
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "io/gguf.h"
#include "model/model.h"
#include "util/result.h"

namespace qs {

struct GgufSourceTensor {
  std::string name;                 // GGUF name, e.g. "blk.0.attn_q.weight"
  std::vector<std::int64_t> shape;  // our order (rows first)
  const TensorInfo* info = nullptr;  // the source bytes (owned by the Model)
  DType natural = DType::F32;       // the type a plain conversion writes (1-D tensors: F32)
  // > 0: the rows are heads of this many, reordered from the HF rotate-half
  // layout to GGUF's interleaved one (q_proj: attention heads, k_proj: KV heads).
  std::int64_t permute_heads = 0;
};

struct GgufSource {
  std::vector<std::pair<std::string, GgufValue>> metadata;
  std::uint64_t alignment = 32;
  std::vector<GgufSourceTensor> tensors;
  std::vector<std::shared_ptr<const void>> keepalive;  // storage that metadata arrays view
};

Result<GgufSource> gguf_source_of_gguf(const Model& model);
// Llama-family HF directory with a SentencePiece tokenizer.model.
Result<GgufSource> gguf_source_of_hf(const Model& model);
Result<GgufSource> gguf_source_of(const Model& model);

// The rows of one tensor [rows, cols] in GGUF order: within each of `heads`
// heads the HF layout holds the two rotary halves one after the other, GGUF
// interleaves them (llama.cpp's converter, LlamaModel.permute).
void permute_rope_rows(const float* in, float* out, std::int64_t rows, std::int64_t cols, std::int64_t heads);

}  // namespace qs
