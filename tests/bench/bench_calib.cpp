// Forward-pass throughput of the CPU llama runner on stories260K (a real
// trained Llama-2-architecture model from ../shared): prefill of 256-token
// chunks (the perplexity workload) and one-token decoding with the KV cache.
// Run with 2 threads: QS_THREADS is ignored here (own pool of 2); set
// OPENBLAS_NUM_THREADS=2 for the GEMMs. With --benchmark_repetitions the
// fastest repetition's time is reported too ("_min" row; its tokens/s column
// is the minimum of the rates, so take tokens / time from that row instead).
#include <benchmark/benchmark.h>

#include <algorithm>
#include <filesystem>
#include <memory>

#include "backend/thread_pool.h"
#include "calib/llama_forward.h"
#include "io/open_model.h"

namespace {

// On a shared machine the fastest repetition is the closest to an idle one.
double fastest(const std::vector<double>& v) { return v.empty() ? 0.0 : *std::min_element(v.begin(), v.end()); }

const qs::LlamaModel* stories_model(benchmark::State& state) {
  static std::unique_ptr<qs::LlamaModel> model;
  if (!model) {
    const std::string path = std::string(QS_SHARED_DIR) + "/models/stories260K/gguf/stories260K-f32.gguf";
    if (!std::filesystem::exists(path)) {
      state.SkipWithError("../shared/models/stories260K is absent");
      return nullptr;
    }
    auto m = qs::open_model(path);
    if (!m) {
      state.SkipWithError(m.error().message.c_str());
      return nullptr;
    }
    auto lm = qs::LlamaModel::load(*m);
    if (!lm) {
      state.SkipWithError(lm.error().message.c_str());
      return nullptr;
    }
    model = std::make_unique<qs::LlamaModel>(std::move(*lm));
  }
  return model.get();
}

void BM_LlamaPrefill(benchmark::State& state) {
  const qs::LlamaModel* lm = stories_model(state);
  if (!lm) return;
  qs::ThreadPool pool(static_cast<unsigned>(state.range(1)));
  const int n = static_cast<int>(state.range(0));
  std::vector<std::int32_t> tokens(static_cast<std::size_t>(n));
  for (int i = 0; i < n; ++i) tokens[static_cast<std::size_t>(i)] = 1 + (i * 37) % 500;
  qs::LlamaRunner runner(*lm, &pool);
  qs::LlamaCache cache(lm->config(), n);
  std::vector<float> logits;
  for (auto _ : state) {
    cache.clear();
    if (!runner.forward(cache, tokens, logits, n / 2)) state.SkipWithError("forward failed");
    benchmark::DoNotOptimize(logits.data());
  }
  state.counters["tokens/s"] = benchmark::Counter(static_cast<double>(n) * static_cast<double>(state.iterations()),
                                                  benchmark::Counter::kIsRate);
}
BENCHMARK(BM_LlamaPrefill)
    ->Args({256, 1})->Args({256, 2})->Args({512, 2})
    ->Unit(benchmark::kMicrosecond)->UseRealTime()->ComputeStatistics("min", fastest);

void BM_LlamaDecode(benchmark::State& state) {
  const qs::LlamaModel* lm = stories_model(state);
  if (!lm) return;
  qs::ThreadPool pool(static_cast<unsigned>(state.range(0)));
  qs::LlamaRunner runner(*lm, &pool);
  const int steps = 200;
  qs::LlamaCache cache(lm->config(), steps);
  std::vector<float> logits;
  for (auto _ : state) {
    cache.clear();
    std::int32_t t = 1;
    for (int i = 0; i < steps; ++i) {
      if (!runner.forward(cache, std::span(&t, 1), logits)) state.SkipWithError("forward failed");
      t = static_cast<std::int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());
    }
  }
  state.counters["tokens/s"] = benchmark::Counter(static_cast<double>(steps) * static_cast<double>(state.iterations()),
                                                  benchmark::Counter::kIsRate);
}
BENCHMARK(BM_LlamaDecode)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime()->ComputeStatistics("min", fastest);

}  // namespace
