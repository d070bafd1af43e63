// Prefill throughput of the CUDA forward runner on stories260K (the same
// model and chunks as BM_LlamaPrefill in bench_calib.cpp, for comparison):
// one forward of a 256- or 512-token chunk from an empty cache, logits of
// the second half copied back as perplexity does. Skips (with the reason)
// without a usable CUDA device or without ../shared. stories260K is tiny
// (hidden 64): on a GPU this measures launch and copy overhead more than
// arithmetic, which is what a perplexity run on this model pays.
#include <benchmark/benchmark.h>

#include <filesystem>
#include <memory>

#include "app/register_backends.h"
#include "calib/device.h"
#include "calib/forward_runner.h"
#include "io/open_model.h"

namespace {

const qs::LlamaModel* stories_f32(benchmark::State& state) {
  static std::unique_ptr<qs::LlamaModel> model;
  if (!model) {
    const std::string path = std::string(QS_SHARED_DIR) + "/models/stories260K/gguf/stories260K-f32.gguf";
    if (!std::filesystem::exists(path)) {
      state.SkipWithError("../shared/models/stories260K is absent");
      return nullptr;
    }
    auto m = qs::open_model(path);
    auto lm = m ? qs::LlamaModel::load(*m) : qs::Result<qs::LlamaModel>(m.error());
    if (!lm) {
      state.SkipWithError(lm.error().message.c_str());
      return nullptr;
    }
    model = std::make_unique<qs::LlamaModel>(std::move(*lm));
  }
  return model.get();
}

void BM_CudaLlamaPrefill(benchmark::State& state) {
  const qs::LlamaModel* lm = stories_f32(state);
  if (!lm) return;
  qs::register_optional_backends();
  const int n = static_cast<int>(state.range(0));
  auto choice = qs::make_forward_runner(*lm, n, "cuda");
  if (!choice || !choice->fallback_reason.empty()) {
    const std::string why = choice ? choice->fallback_reason : choice.error().message;
    state.SkipWithError(("no CUDA forward pass: " + why).c_str());
    return;
  }
  std::vector<std::int32_t> tokens(static_cast<std::size_t>(n));
  for (int i = 0; i < n; ++i) tokens[static_cast<std::size_t>(i)] = 1 + (i * 37) % 500;
  std::vector<float> logits;
  for (auto _ : state) {
    choice->runner->clear();
    if (!choice->runner->forward(tokens, logits, n / 2)) state.SkipWithError("forward failed");
    benchmark::DoNotOptimize(logits.data());
  }
  state.SetLabel(choice->runner->description());
  state.counters["tokens/s"] = benchmark::Counter(static_cast<double>(n) * static_cast<double>(state.iterations()),
                                                  benchmark::Counter::kIsRate);
}
BENCHMARK(BM_CudaLlamaPrefill)->Arg(256)->Arg(512)->Unit(benchmark::kMicrosecond)->UseRealTime();

}  // namespace
