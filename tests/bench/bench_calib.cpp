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
#include <random>

#include "backend/thread_pool.h"
#include "backend/lapack.h"
#include "calib/activation_capture.h"
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

// Activation capture on stories260K: 8 sequences of 256 tokens through the
// forward pass with every statistic accumulated (arg 1: Hessians on), against
// the plain prefill above. tokens/s counts tokens run.
void BM_ActivationCapture(benchmark::State& state) {
  const qs::LlamaModel* lm = stories_model(state);
  if (!lm) return;
  std::vector<std::vector<std::int32_t>> seqs(8, std::vector<std::int32_t>(256));
  for (std::size_t s = 0; s < seqs.size(); ++s)
    for (std::size_t i = 0; i < 256; ++i) seqs[s][i] = static_cast<std::int32_t>(1 + (s * 131 + i * 37) % 500);
  qs::CaptureOptions opt;
  opt.hessians = state.range(0) != 0;
  for (auto _ : state) {
    auto cap = qs::capture_activations(*lm, seqs, opt);
    if (!cap) state.SkipWithError(cap.error().message.c_str());
    benchmark::DoNotOptimize(cap->inputs.data());
  }
  state.counters["tokens/s"] = benchmark::Counter(8.0 * 256.0 * static_cast<double>(state.iterations()),
                                                  benchmark::Counter::kIsRate);
}
BENCHMARK(BM_ActivationCapture)->Arg(0)->Arg(1)->Unit(benchmark::kMillisecond)->UseRealTime()->ComputeStatistics("min", fastest);

// The cost of one Hessian update H += XᵀX for a 256-token sequence at real
// model widths (4096: Llama-7B hidden; 11008: its FFN), as the capture runs it
// (one SGEMM, OpenBLAS threads as set by OPENBLAS_NUM_THREADS).
void BM_HessianAccumulate(benchmark::State& state) {
  const std::int64_t cols = state.range(0), rows = 256;
  std::vector<float> x(static_cast<std::size_t>(rows * cols)), h(static_cast<std::size_t>(cols * cols), 0.0f);
  std::mt19937 rng(1);
  std::normal_distribution<float> g;
  for (float& v : x) v = g(rng);
  for (auto _ : state) {
    qs::lapack::gemm(true, cols, cols, rows, 1.0f, x.data(), cols, x.data(), cols, 1.0f, h.data(), cols);
    benchmark::DoNotOptimize(h.data());
  }
  state.counters["GFLOP/s"] = benchmark::Counter(2.0 * static_cast<double>(rows) * static_cast<double>(cols * cols) *
                                                     static_cast<double>(state.iterations()) * 1e-9,
                                                 benchmark::Counter::kIsRate);
  state.counters["tokens/s"] = benchmark::Counter(static_cast<double>(rows) * static_cast<double>(state.iterations()),
                                                  benchmark::Counter::kIsRate);
}
BENCHMARK(BM_HessianAccumulate)->Arg(64)->Arg(1024)->Arg(4096)->Unit(benchmark::kMillisecond)->UseRealTime()
    ->ComputeStatistics("min", fastest);

}  // namespace
