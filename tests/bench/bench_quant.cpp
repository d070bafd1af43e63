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
#include "quant/format_table.h"
#include "quant/named_format.h"

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
BENCHMARK(BM_GgmlQuantize)->Arg(static_cast<long>(qs::DType::Q8_0))->Arg(static_cast<long>(qs::DType::Q4_0))->Arg(static_cast<long>(qs::DType::Q4_K))->Arg(static_cast<long>(qs::DType::Q6_K))->Arg(static_cast<long>(qs::DType::IQ4_NL))
    ->Unit(benchmark::kMillisecond)->UseRealTime();

// With an importance matrix (llama-quantize --imatrix, export --imatrix): rows over the pool, a
// log-normal importance per column (the spread of real ones). 1024 x 4096: the i-quants' lattice
// searches cost ~10x the K-quants' per value. The lattice is built before timing (once per process).
void BM_GgmlQuantizeImatrix(benchmark::State& state) {
  constexpr std::int64_t rows = 1024, cols = 4096;
  const auto& all = weights_4096x11008();
  const std::vector<float> w(all.begin(), all.begin() + rows * cols);
  std::vector<float> importance(cols);
  std::mt19937 rng(11);
  std::lognormal_distribution<float> spread(0.0f, 1.5f);
  for (float& v : importance) v = spread(rng);
  const auto t = static_cast<qs::DType>(state.range(0));
  std::vector<std::byte> out(*qs::dtype_bytes(t, w.size()));
  if (!qs::quantize_ggml_rows(t, w.data(), 1, cols, importance.data(), out.data())) state.SkipWithError("quantize failed");
  for (auto _ : state) {
    auto r = qs::quantize_ggml_rows(t, w.data(), rows, cols, importance.data(), out.data());
    benchmark::DoNotOptimize(r);
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * w.size() * 4));
  state.SetLabel(std::string(qs::dtype_name(t)) + ", 1024x4096 with importance, " +
                 std::to_string(qs::ThreadPool::global().size()) + " threads");
}
BENCHMARK(BM_GgmlQuantizeImatrix)
    ->Arg(static_cast<long>(qs::DType::Q4_K))->Arg(static_cast<long>(qs::DType::Q2_K))
    ->Arg(static_cast<long>(qs::DType::IQ4_XS))->Arg(static_cast<long>(qs::DType::IQ3_XXS))
    ->Arg(static_cast<long>(qs::DType::IQ2_XS))->Arg(static_cast<long>(qs::DType::IQ2_XXS))
    ->Arg(static_cast<long>(qs::DType::IQ1_S))
    ->Unit(benchmark::kMillisecond)->UseRealTime();

// NF4, FP8, MXFP4, NVFP4, BF16: RTN quantize + dequantize (what measure runs per layer).
void BM_NamedFormat(benchmark::State& state) {
  const auto& w = weights_4096x11008();
  const auto f = static_cast<qs::NamedFormat>(state.range(0));
  std::vector<float> deq(w.size());
  for (auto _ : state) {
    if (!qs::rtn_named_format(f, w.data(), 4096, 11008, deq.data())) state.SkipWithError("quantize failed");
    benchmark::DoNotOptimize(deq.data());
  }
  state.SetLabel(qs::QuantChoice::named_format(f).name + ", 4096x11008, quantize + dequantize, " +
                 std::to_string(qs::ThreadPool::global().size()) + " threads");
}
BENCHMARK(BM_NamedFormat)
    ->Arg(static_cast<long>(qs::NamedFormat::Nf4))->Arg(static_cast<long>(qs::NamedFormat::Nf4Dq))
    ->Arg(static_cast<long>(qs::NamedFormat::Fp8E4M3))->Arg(static_cast<long>(qs::NamedFormat::Fp8E4M3Ch))
    ->Arg(static_cast<long>(qs::NamedFormat::Mxfp4))->Arg(static_cast<long>(qs::NamedFormat::Nvfp4))
    ->Arg(static_cast<long>(qs::NamedFormat::BF16))
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
BENCHMARK(BM_Gptq)
    ->Args({1024, 1024})
    ->Args({4096, 4096})
    ->Args({4096, 11008})
    ->Unit(benchmark::kMillisecond)
    ->MeasureProcessCPUTime()  // CPU: all threads, spinning ones included
    ->UseRealTime()
    ->Iterations(1);

}  // namespace

#include <chrono>

#include "backend/lapack.h"
#include "quant/activation_stats.h"
#include "quant/awq.h"
#include "quant/clip_search.h"

namespace {

// A 4096x4096 layer with 4096 calibration tokens shaped like the gptq1024 case:
// Student-t weights; activations = noise + a rank-64 component, per-channel
// scales and 0.5 % outlier channels x50. Statistics computed once, untimed.
struct AwqLayer {
  static constexpr std::int64_t n = 4096, tokens = 4096;
  std::vector<float> w;
  qs::ActivationStats st;
  static const AwqLayer& get() {
    static const AwqLayer l = [] {
      AwqLayer k;
      std::mt19937 rng(11);
      std::student_t_distribution<float> t(4.0f);
      std::normal_distribution<float> nd(0.0f, 1.0f);
      k.w.resize(static_cast<std::size_t>(n * n));
      for (auto& v : k.w) v = 0.014f * t(rng);
      std::vector<float> x(static_cast<std::size_t>(tokens * n)), tt(static_cast<std::size_t>(tokens * 64)),
          m(static_cast<std::size_t>(64 * n)), scale(static_cast<std::size_t>(n));
      for (auto& v : x) v = nd(rng);
      for (auto& v : tt) v = nd(rng);
      for (auto& v : m) v = nd(rng) / 8.0f;
      for (auto& v : scale) v = std::exp(0.5f * nd(rng));
      for (std::int64_t c = 0; c < n; c += 200) scale[static_cast<std::size_t>(c)] *= 50.0f;
      qs::lapack::gemm(false, tokens, n, 64, 1.0f, tt.data(), 64, m.data(), n, 1.0f, x.data(), n);
      for (std::int64_t i = 0; i < tokens * n; ++i) x[static_cast<std::size_t>(i)] *= scale[static_cast<std::size_t>(i % n)];
      k.st = qs::activation_stats(x.data(), tokens, n);
      return k;
    }();
    return l;
  }
};

void BM_Awq(benchmark::State& state) {
  const AwqLayer& l = AwqLayer::get();
  qs::AwqSpec spec;
  spec.target = qs::QuantTarget::int_grid({4, false, 128});
  spec.clip = state.range(0) != 0;
  spec.output_error = false;  // measured by the caller when wanted: one more 4096^3 GEMM
  double alpha = 0, search_ms = 0;
  for (auto _ : state) {
    // Progress reaches 0.6 when the alpha search ends: split the time there.
    const auto t0 = std::chrono::steady_clock::now();
    std::chrono::steady_clock::time_point t_search{};
    qs::OpContext ctx([&](double f) {
      if (f >= 0.6 && t_search == std::chrono::steady_clock::time_point{}) t_search = std::chrono::steady_clock::now();
    });
    auto r = qs::awq(l.w.data(), l.n, l.n, l.st.h.data(), l.st.mean_abs.data(), spec, ctx);
    if (!r) state.SkipWithError(r.error().message.c_str());
    else alpha = r->alpha;
    search_ms += std::chrono::duration<double, std::milli>(t_search - t0).count();
    benchmark::DoNotOptimize(r);
  }
  state.counters["alpha_search_ms"] = search_ms / static_cast<double>(state.iterations());
  state.SetLabel("4096x4096, 4096 calibration tokens (H, mean |x| given), int4 g128, 20 alphas on 64 rows" +
                 std::string(spec.clip ? " + clip search (10 ratios, all rows)" : "") + ", alpha " +
                 std::to_string(alpha).substr(0, 4) + ", " + std::to_string(qs::ThreadPool::global().size()) + " threads");
}
BENCHMARK(BM_Awq)->Arg(0)->Arg(1)->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(3);

void BM_ActivationStats(benchmark::State& state) {
  const AwqLayer& l = AwqLayer::get();
  std::vector<float> x(static_cast<std::size_t>(l.tokens * l.n));
  std::mt19937 rng(1);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  for (auto& v : x) v = nd(rng);
  for (auto _ : state) benchmark::DoNotOptimize(qs::activation_stats(x.data(), l.tokens, l.n));
  state.SetLabel("H = X^T X / n, mean and max |x|: 4096 tokens x 4096 channels");
}
BENCHMARK(BM_ActivationStats)->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(2);

void BM_ClipSearch(benchmark::State& state) {
  const auto& w = weights_4096x11008();
  qs::ClipSearchSpec spec;  // int4 g128, 51 ratios 1.00 .. 0.50
  for (auto _ : state) {
    auto r = qs::clip_search(w.data(), 4096, 11008, spec);
    if (!r) state.SkipWithError(r.error().message.c_str());
    benchmark::DoNotOptimize(r);
  }
  state.SetLabel("4096x11008, int4 g128, 51 ratios (1.00 .. 0.50), + RTN error for comparison");
}
BENCHMARK(BM_ClipSearch)->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(2);

}  // namespace
