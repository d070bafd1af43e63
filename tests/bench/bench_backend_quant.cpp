// The Backend's quantization ops side by side, CPU vs CUDA (the CUDA rows skip
// with the reason when there is no device): RTN onto int4-g128 fused with the
// error (the live-feedback path) on 4096x11008, GPTQ 4-bit g128 on 4096x4096
// and 4096x11008, and H += X^T X over 16 chunks of 512 tokens of 4096 channels.
// Device figures include the host<->device copies.
#include <benchmark/benchmark.h>

#include <Eigen/Dense>
#include <random>
#include <vector>

#include "calib/device.h"
#include "util/half.h"

namespace {

std::shared_ptr<qs::Backend> backend_or_skip(benchmark::State& state, bool cuda) {
  auto b = qs::make_backend(cuda ? "cuda" : "cpu");
  if (!b) {
    state.SkipWithError((std::string("no CUDA backend: ") + b.error().message).c_str());
    return nullptr;
  }
  return *b;
}

const std::vector<float>& weights(std::int64_t rows, std::int64_t cols) {
  static std::vector<float> w;
  if (w.size() != static_cast<std::size_t>(rows * cols)) {
    w.resize(static_cast<std::size_t>(rows * cols));
    std::mt19937 rng(7);
    std::student_t_distribution<float> t(4.0f);
    for (auto& x : w) x = 0.02f * t(rng);
  }
  return w;
}

// range(0): 1 = CUDA; range(1): dtype (F32 or F16 input).
void BM_BackendRtnInt4G128(benchmark::State& state) {
  auto b = backend_or_skip(state, state.range(0) == 1);
  if (!b) return;
  const auto dt = static_cast<qs::DType>(state.range(1));
  const auto& w = weights(4096, 11008);
  std::vector<std::uint16_t> h;
  if (dt == qs::DType::F16) {
    h.resize(w.size());
    for (std::size_t i = 0; i < w.size(); ++i) h[i] = qs::f32_to_f16(w[i]);
  }
  const void* p = dt == qs::DType::F16 ? static_cast<const void*>(h.data()) : w.data();
  const qs::TensorData d{dt, static_cast<const std::byte*>(p), w.size(), 4096, 11008};
  qs::IntQuantized q;  // reused across runs, as the plan editor does
  for (auto _ : state) {
    auto e = b->rtn_int(d, {4, false, 128}, q, nullptr, qs::OpContext::none());
    if (!e) state.SkipWithError(e.error().message.c_str());
    benchmark::DoNotOptimize(e);
  }
  state.SetLabel(std::string("4096x11008 ") + std::string(qs::dtype_name(dt)) + ", int4 g128 fused quantize + error, " +
                 b->description());
}
BENCHMARK(BM_BackendRtnInt4G128)
    ->ArgsProduct({{0, 1}, {static_cast<long>(qs::DType::F32), static_cast<long>(qs::DType::F16)}})
    ->Unit(benchmark::kMillisecond)->UseRealTime();

// range(0): 1 = CUDA; range(1), range(2): rows, cols.
void BM_BackendGptq(benchmark::State& state) {
  auto b = backend_or_skip(state, state.range(0) == 1);
  if (!b) return;
  const std::int64_t rows = state.range(1), cols = state.range(2);
  const auto& w = weights(rows, cols);
  using MatF = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  const MatF X = MatF::Random(2048, cols) + MatF::Random(2048, 1).replicate(1, cols);
  const MatF H = X.transpose() * X;
  for (auto _ : state) {
    auto r = b->gptq(w.data(), rows, cols, H.data(), {}, qs::OpContext::none());
    if (!r) state.SkipWithError(r.error().message.c_str());
    benchmark::DoNotOptimize(r);
  }
  state.SetLabel(std::to_string(rows) + "x" + std::to_string(cols) + ", 4-bit g128, block 128, " + b->description());
}
BENCHMARK(BM_BackendGptq)
    ->ArgsProduct({{0, 1}, {4096}, {4096, 11008}})
    ->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(1);

void BM_BackendHessian(benchmark::State& state) {
  auto b = backend_or_skip(state, state.range(0) == 1);
  if (!b) return;
  constexpr std::int64_t cols = 4096, tokens = 512, chunks = 16;
  const auto& x = weights(tokens, cols);
  std::vector<float> h(static_cast<std::size_t>(cols * cols));
  for (auto _ : state) {
    auto acc = b->hessian_accumulator(cols);
    if (!acc) {
      state.SkipWithError(acc.error().message.c_str());
      break;
    }
    for (int k = 0; k < chunks; ++k)
      if (!(*acc)->add(x.data(), tokens)) state.SkipWithError("add failed");
    if (!(*acc)->read(h.data())) state.SkipWithError("read failed");
    benchmark::DoNotOptimize(h.data());
  }
  state.SetLabel("H += X^T X, 4096 channels, 16 chunks of 512 tokens, read back once, " + b->description());
}
BENCHMARK(BM_BackendHessian)->Arg(0)->Arg(1)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace
