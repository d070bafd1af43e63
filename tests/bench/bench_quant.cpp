// Quantization speed: RTN onto an integer grid (quantize + dequantize + SQNR,
// the live-feedback path of the plan editor) and the ggml reference quantizers.
#include <benchmark/benchmark.h>

#include <random>
#include <vector>

#include "backend/thread_pool.h"
#include "model/dtype.h"
#include "quant/ggml_quantize.h"
#include "quant/int_grid.h"
#include "quant/metrics.h"

namespace {

const std::vector<float>& weights_4096x11008() {
  static const std::vector<float> w = [] {
    std::vector<float> v(std::size_t{4096} * 11008);
    std::mt19937 rng(7);
    std::student_t_distribution<float> t(4.0f);
    for (auto& x : v) x = 0.02f * t(rng);
    return v;
  }();
  return w;
}

void BM_RtnInt4G128(benchmark::State& state) {
  const auto& w = weights_4096x11008();
  // Buffers live across edits, as in the plan editor: the first pass pays the page faults.
  qs::IntQuantized q;
  std::vector<float> deq(w.size());
  for (auto _ : state) {
    if (!qs::rtn_int_into(q, w.data(), 4096, 11008, {4, false, 128})) state.SkipWithError("rtn failed");
    qs::dequantize_int_into(q, deq.data());
    const auto e = qs::weight_error(w.data(), deq.data(), w.size());
    benchmark::DoNotOptimize(e);
  }
  state.SetLabel("4096x11008, 4-bit asym g128: quantize + dequantize + SQNR, " +
                 std::to_string(qs::ThreadPool::global().size()) + " threads");
}
BENCHMARK(BM_RtnInt4G128)->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(3.0);

// The same figures from one fused pass (what the plan editor's live feedback calls).
void BM_RtnInt4G128Fused(benchmark::State& state) {
  const auto& w = weights_4096x11008();
  qs::IntQuantized q;
  for (auto _ : state) {
    auto e = qs::rtn_int_measure_into(q, w.data(), 4096, 11008, {4, false, 128});
    if (!e) state.SkipWithError("rtn failed");
    benchmark::DoNotOptimize(e);
  }
  state.SetLabel("4096x11008, 4-bit asym g128: fused quantize + error, " +
                 std::to_string(qs::ThreadPool::global().size()) + " threads");
}
BENCHMARK(BM_RtnInt4G128Fused)->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(3.0);

void BM_GgmlQuantize(benchmark::State& state) {
  const auto& w = weights_4096x11008();
  const auto t = static_cast<qs::DType>(state.range(0));
  std::vector<std::byte> out(*qs::dtype_bytes(t, w.size()));
  for (auto _ : state) {
    auto r = qs::quantize_ggml_blocks(t, w.data(), w.size() / qs::dtype_block_elems(t), out.data());
    benchmark::DoNotOptimize(r);
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * w.size() * 4));
  state.SetLabel(std::string(qs::dtype_name(t)) + ", 4096x11008, " + std::to_string(qs::ThreadPool::global().size()) +
                 " threads");
}
BENCHMARK(BM_GgmlQuantize)->Arg(static_cast<long>(qs::DType::Q8_0))->Arg(static_cast<long>(qs::DType::Q4_0))->Arg(static_cast<long>(qs::DType::Q4_K))->Arg(static_cast<long>(qs::DType::Q6_K))
    ->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace

#include <Eigen/Dense>

#include "quant/gptq.h"

namespace {

// GPTQ on a square or MLP-shaped layer with a realistic (correlated) Hessian.
void BM_Gptq(benchmark::State& state) {
  const std::int64_t rows = state.range(0), cols = state.range(1);
  std::vector<float> w(static_cast<std::size_t>(rows * cols));
  std::mt19937 rng(3);
  std::student_t_distribution<float> t(4.0f);
  for (auto& x : w) x = 0.02f * t(rng);
  using MatF = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  const MatF X = MatF::Random(2048, cols) + MatF::Random(2048, 1).replicate(1, cols);
  const MatF H = X.transpose() * X;
  for (auto _ : state) {
    auto r = qs::gptq(w.data(), rows, cols, H.data(), {}, qs::OpContext::none());
    if (!r) state.SkipWithError(r.error().message.c_str());
    benchmark::DoNotOptimize(r);
  }
  state.SetLabel(std::to_string(rows) + "x" + std::to_string(cols) + ", 4-bit g128, block 128, " +
                 std::to_string(qs::ThreadPool::global().size()) + " threads");
}
BENCHMARK(BM_Gptq)->Args({1024, 1024})->Args({4096, 4096})->Args({4096, 11008})->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(1);

}  // namespace
