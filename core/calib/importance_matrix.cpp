#include "calib/importance_matrix.h"

#include <vector>

namespace qs {
namespace {

// The GGUF weight names that read each linear input of a block.
std::vector<const char*> readers_of(LlamaRunner::LinearInput input) {
  using In = LlamaRunner::LinearInput;
  switch (input) {
    case In::Attention: return {"attn_q", "attn_k", "attn_v"};
    case In::AttentionOutput: return {"attn_output"};
    case In::Mlp: return {"ffn_gate", "ffn_up"};
    case In::MlpDown: return {"ffn_down"};
  }
  return {};
}

}  // namespace

ImportanceMatrix importance_matrix_of(const ActivationCapture& capture, const std::string& dataset) {
  ImportanceMatrix m;
  m.chunks = capture.sequences;
  m.dataset = dataset;
  for (const InputStats& s : capture.inputs)
    for (const char* reader : readers_of(s.input))
      m.columns["blk." + std::to_string(s.block) + "." + reader + ".weight"] = s.mean_sq;
  return m;
}

}  // namespace qs
