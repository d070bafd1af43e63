#include "calib/calibrate_text.h"

#include "calib/llama_forward.h"
#include "calib/tokenizer.h"
#include "util/read_text_file.h"

namespace qs {

Result<CalibrationHessians> calibrate_on_text(const Model& model, const std::string& text_path, int max_tokens,
                                              OpContext& ctx, Backend* backend) {
  auto text = read_text_file(text_path, std::size_t{256} << 20);
  if (!text) return text.error();
  auto tok = Tokenizer::for_model(model);
  if (!tok) return tok.error();
  auto ids = tok->encode(*text, tok->add_bos());
  if (max_tokens > 0 && ids.size() > static_cast<std::size_t>(max_tokens)) ids.resize(static_cast<std::size_t>(max_tokens));
  auto llama = LlamaModel::load(model, ctx);
  if (!llama) return llama.error();
  return collect_hessians(*llama, ids, kCalibrationChunk, tok->add_bos() ? tok->bos_id() : -1, ctx, backend);
}

}  // namespace qs
