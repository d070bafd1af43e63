#include "calib/hessians.h"

#include <memory>
#include <optional>

#include "backend/backend.h"
#include "backend/lapack.h"

namespace qs {

const std::vector<float>* CalibrationHessians::of(LayerRole role, int block) const {
  if (block < 0 || static_cast<std::size_t>(block) >= blocks.size()) return nullptr;
  const BlockHessians& b = blocks[static_cast<std::size_t>(block)];
  switch (role) {
    case LayerRole::Q: case LayerRole::K: case LayerRole::V: return &b.attention;
    case LayerRole::O: return &b.attention_output;
    case LayerRole::Gate: case LayerRole::Up: return &b.mlp;
    case LayerRole::Down: return &b.mlp_down;
    default: return nullptr;
  }
}

Result<CalibrationHessians> collect_hessians(const LlamaModel& model, std::span<const std::int32_t> tokens, int n_ctx,
                                             std::int32_t bos, OpContext& ctx, Backend* backend) {
  const LlamaConfig& c = model.config();
  if (n_ctx < 2) return Error::invalid("calibration: the context must hold at least 2 tokens");
  const std::size_t chunks = tokens.size() / static_cast<std::size_t>(n_ctx);
  if (chunks == 0)
    return Error::invalid("calibration: " + std::to_string(tokens.size()) + " tokens are fewer than one chunk of " +
                          std::to_string(n_ctx));
  CalibrationHessians out;
  out.blocks.resize(static_cast<std::size_t>(c.layers));
  const auto sq = [](std::int64_t n) { return static_cast<std::size_t>(n * n); };
  const std::int64_t h = c.hidden, qd = std::int64_t{c.heads} * c.head_dim, f = c.ffn;
  for (auto& b : out.blocks) {
    b.attention.assign(sq(h), 0.0f);
    b.attention_output.assign(sq(qd), 0.0f);
    b.mlp.assign(sq(h), 0.0f);
    b.mlp_down.assign(sq(f), 0.0f);
  }
  // With a backend: one accumulator per (block, input), made at its first
  // chunk; null where the backend could not make one (that H stays here).
  std::vector<std::unique_ptr<HessianAccumulator>> device(backend ? out.blocks.size() * 4 : 0);
  std::vector<bool> tried(device.size(), false);
  std::optional<Error> device_error;
  LlamaRunner runner(model);
  runner.set_observer([&](int layer, LlamaRunner::LinearInput input, const float* x, std::int64_t rows, std::int64_t cols) {
    BlockHessians& b = out.blocks[static_cast<std::size_t>(layer)];
    std::vector<float>& H = input == LlamaRunner::LinearInput::Attention         ? b.attention
                            : input == LlamaRunner::LinearInput::AttentionOutput ? b.attention_output
                            : input == LlamaRunner::LinearInput::Mlp             ? b.mlp
                                                                                 : b.mlp_down;
    if (backend) {
      const std::size_t k = static_cast<std::size_t>(layer) * 4 + static_cast<std::size_t>(input);
      if (!tried[k]) {
        tried[k] = true;
        if (auto acc = backend->hessian_accumulator(cols)) device[k] = std::move(*acc);
      }
      if (device[k]) {
        if (auto r = device[k]->add(x, rows); !r && !device_error) device_error = r.error();
        return;
      }
    }
    lapack::gemm(true, cols, cols, rows, 1.0f, x, cols, x, cols, 1.0f, H.data(), cols);  // H += X^T X
  });
  LlamaCache cache(c, n_ctx);
  std::vector<float> logits;
  std::vector<std::int32_t> chunk(static_cast<std::size_t>(n_ctx));
  for (std::size_t k = 0; k < chunks; ++k) {
    if (ctx.cancelled()) return Error::cancelled();
    std::copy_n(tokens.begin() + static_cast<std::ptrdiff_t>(k * static_cast<std::size_t>(n_ctx)), n_ctx, chunk.begin());
    if (bos >= 0) chunk[0] = bos;
    cache.clear();
    if (auto r = runner.forward(cache, chunk, logits, 0); !r) return r.error();
    if (device_error) return Error{device_error->code, "calibration: " + device_error->message};
    out.tokens += n_ctx;
    ctx.progress(static_cast<double>(k + 1) / static_cast<double>(chunks));
  }
  for (std::size_t k = 0; k < device.size(); ++k) {
    if (!device[k]) continue;
    BlockHessians& b = out.blocks[k / 4];
    std::vector<float>* H[] = {&b.attention, &b.attention_output, &b.mlp, &b.mlp_down};
    if (auto r = device[k]->read(H[k % 4]->data()); !r) return Error{r.error().code, "calibration: " + r.error().message};
  }
  const float inv = 1.0f / static_cast<float>(out.tokens);
  for (auto& b : out.blocks)
    for (auto* H : {&b.attention, &b.attention_output, &b.mlp, &b.mlp_down})
      for (float& v : *H) v *= inv;
  return out;
}

}  // namespace qs
