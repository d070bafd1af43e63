// Statistics-pass throughput (GB/s of input) for F16/BF16/F32 on the CPU with
// 1 and 2+ threads and on CUDA when present, next to a plain memory copy.
#include <benchmark/benchmark.h>

#include <cstring>
#include <thread>
#include <random>
#include <vector>

#include "backend/cpu_backend.h"
#include "calib/device.h"
#include "backend/thread_pool.h"
#include "util/half.h"

namespace {

constexpr std::size_t kElems = std::size_t{64} << 20;  // 64 Mi elements: 128 MiB of F16

const std::vector<std::uint16_t>& f16_data() {
  static const std::vector<std::uint16_t> v = [] {
    std::vector<std::uint16_t> out(kElems);
    std::mt19937 rng(1);
    std::student_t_distribution<float> t(4.0f);
    for (auto& x : out) x = qs::f32_to_f16(0.02f * t(rng));
    return out;
  }();
  return v;
}
const std::vector<std::uint16_t>& bf16_data() {
  static const std::vector<std::uint16_t> v = [] {
    std::vector<std::uint16_t> out(kElems);
    const auto& h = f16_data();
    for (std::size_t i = 0; i < kElems; ++i) out[i] = qs::f32_to_bf16(qs::f16_to_f32(h[i]));
    return out;
  }();
  return v;
}
const std::vector<float>& f32_data() {
  static const std::vector<float> v = [] {
    std::vector<float> out(kElems / 2);  // 128 MiB as well
    const auto& h = f16_data();
    for (std::size_t i = 0; i < out.size(); ++i) out[i] = qs::f16_to_f32(h[i]);
    return out;
  }();
  return v;
}

qs::TensorData input(qs::DType t) {
  if (t == qs::DType::F32) {
    const auto& v = f32_data();
    return {t, reinterpret_cast<const std::byte*>(v.data()), v.size(), 1, static_cast<std::int64_t>(v.size())};
  }
  const auto& v = t == qs::DType::F16 ? f16_data() : bf16_data();
  return {t, reinterpret_cast<const std::byte*>(v.data()), v.size(), 1, static_cast<std::int64_t>(v.size())};
}

void run_stats(benchmark::State& state, qs::Backend& backend, qs::DType t) {
  const qs::TensorData d = input(t);
  const std::uint64_t bytes = d.numel * qs::dtype_bits(t) / 8;
  for (auto _ : state) {
    auto s = backend.tensor_stats(d, {}, qs::OpContext::none());
    if (!s) state.SkipWithError(s.error().message.c_str());
    benchmark::DoNotOptimize(s);
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * bytes));
}

void BM_StatsCpu(benchmark::State& state) {
  qs::ThreadPool pool(static_cast<unsigned>(state.range(1)));
  qs::CpuBackend cpu(&pool);
  run_stats(state, cpu, static_cast<qs::DType>(state.range(0)));
  state.SetLabel(std::string(qs::dtype_name(static_cast<qs::DType>(state.range(0)))) + ", " +
                 std::to_string(state.range(1)) + " thread(s)");
}
BENCHMARK(BM_StatsCpu)
    ->ArgsProduct({{static_cast<long>(qs::DType::F16), static_cast<long>(qs::DType::BF16), static_cast<long>(qs::DType::F32)},
                   {1, static_cast<long>(std::max(2u, std::thread::hardware_concurrency()))}})
    ->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_StatsCuda(benchmark::State& state) {
  auto b = qs::make_backend("cuda");
  if (!b) {
    state.SkipWithError(("no CUDA backend: " + b.error().message).c_str());
    return;
  }
  run_stats(state, **b, static_cast<qs::DType>(state.range(0)));
  state.SetLabel(std::string(qs::dtype_name(static_cast<qs::DType>(state.range(0)))) + ", " + (*b)->description() +
                 " (includes host-to-device copy)");
}
BENCHMARK(BM_StatsCuda)
    ->Arg(static_cast<long>(qs::DType::F16))->Arg(static_cast<long>(qs::DType::BF16))->Arg(static_cast<long>(qs::DType::F32))
    ->Unit(benchmark::kMillisecond)->UseRealTime();

// The machine's memory bandwidth for comparison: one thread copying 128 MiB
// (bytes counted = bytes read, as for the stats pass).
void BM_MemcpyBaseline(benchmark::State& state) {
  const auto& src = f16_data();
  std::vector<std::uint16_t> dst(src.size());
  for (auto _ : state) {
    std::memcpy(dst.data(), src.data(), src.size() * 2);
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * src.size() * 2));
}
BENCHMARK(BM_MemcpyBaseline)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace
