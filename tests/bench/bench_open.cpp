// Time to open a checkpoint as a function of its size. Opening reads headers
// only, so the time must follow the header (tensor count), not the bytes.
// Files are sparse: a 64 GiB checkpoint costs no disk.
#include <benchmark/benchmark.h>
#include <fcntl.h>
#include <unistd.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>

#include "gguf_builder.h"
#include "io/open_model.h"

namespace {

// A llama-shaped header (7 linear layers + 2 norms per block) scaled so that the
// data area is `bytes` long; returns the path.
std::string make_sparse_checkpoint(std::uint64_t bytes, int blocks) {
  const std::string path = (std::filesystem::temp_directory_path() /
                            ("qs-bench-open-" + std::to_string(bytes) + "-" + std::to_string(blocks) + ".safetensors"))
                               .string();
  if (std::filesystem::exists(path)) return path;
  const std::uint64_t per_tensor = bytes / (static_cast<std::uint64_t>(blocks) * 9);
  const std::uint64_t cols = 4096, rows = std::max<std::uint64_t>(1, per_tensor / (cols * 2));
  nlohmann::ordered_json h;
  h["__metadata__"] = {{"format", "pt"}};
  std::uint64_t off = 0;
  for (int b = 0; b < blocks; ++b)
    for (const char* n : {"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj", "mlp.gate_proj",
                          "mlp.up_proj", "mlp.down_proj", "input_layernorm", "post_attention_layernorm"}) {
      const std::uint64_t sz = rows * cols * 2;
      h["model.layers." + std::to_string(b) + "." + n + ".weight"] = {
          {"dtype", "F16"}, {"shape", {rows, cols}}, {"data_offsets", {off, off + sz}}};
      off += sz;
    }
  std::string text = h.dump();
  text.append((8 - text.size() % 8) % 8, ' ');
  const int fd = ::open(path.c_str(), O_CREAT | O_TRUNC | O_WRONLY, 0644);
  std::uint64_t n = text.size();
  if (::write(fd, &n, 8) != 8 || ::write(fd, text.data(), text.size()) != static_cast<ssize_t>(text.size())) std::abort();
  if (::ftruncate(fd, static_cast<off_t>(8 + text.size() + off)) != 0) std::abort();
  ::close(fd);
  return path;
}

void BM_OpenCheckpoint(benchmark::State& state) {
  const std::uint64_t bytes = static_cast<std::uint64_t>(state.range(0)) << 20;
  const int blocks = static_cast<int>(state.range(1));
  const std::string path = make_sparse_checkpoint(bytes, blocks);
  for (auto _ : state) {
    auto m = qs::open_model(path);
    if (!m) state.SkipWithError(m.error().message.c_str());
    benchmark::DoNotOptimize(m);
  }
  state.counters["file_GiB"] = static_cast<double>(std::filesystem::file_size(path)) / (1u << 30);
  state.counters["tensors"] = blocks * 9;
}
// Same tensor count (32 blocks), data from 64 MiB to 64 GiB; then more tensors at the same size.
BENCHMARK(BM_OpenCheckpoint)
    ->Args({64, 32})->Args({1024, 32})->Args({16384, 32})->Args({65536, 32})
    ->Args({16384, 80})
    ->Unit(benchmark::kMicrosecond);

}  // namespace

namespace {

// A llama-shaped GGUF header (Q4_K tensors) over a sparse data area of `bytes`.
std::string make_sparse_gguf(std::uint64_t bytes, int blocks) {
  const std::string path = (std::filesystem::temp_directory_path() /
                            ("qs-bench-open-" + std::to_string(bytes) + "-" + std::to_string(blocks) + ".gguf"))
                               .string();
  if (std::filesystem::exists(path)) return path;
  const std::uint64_t per_tensor = bytes / (static_cast<std::uint64_t>(blocks) * 7);
  const std::uint64_t cols = 4096, rows = std::max<std::uint64_t>(1, per_tensor / (cols / 256 * 144));
  const std::uint64_t tensor_bytes = rows * cols / 256 * 144;  // Q4_K: 144 bytes per 256; a multiple of 32
  qs::test::GgufBuilder g;
  g.counts(blocks * 7, 1).kv_str("general.architecture", "llama");
  std::uint64_t off = 0;
  for (int b = 0; b < blocks; ++b)
    for (const char* n : {"attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down"}) {
      g.tensor("blk." + std::to_string(b) + "." + n + ".weight", {static_cast<std::int64_t>(cols), static_cast<std::int64_t>(rows)}, 12, off);
      off += tensor_bytes;
    }
  g.align();
  const int fd = ::open(path.c_str(), O_CREAT | O_TRUNC | O_WRONLY, 0644);
  if (::write(fd, g.bytes().data(), g.bytes().size()) != static_cast<ssize_t>(g.bytes().size())) std::abort();
  if (::ftruncate(fd, static_cast<off_t>(g.bytes().size() + off)) != 0) std::abort();
  ::close(fd);
  return path;
}

void BM_OpenGguf(benchmark::State& state) {
  const std::string path = make_sparse_gguf(static_cast<std::uint64_t>(state.range(0)) << 20, 32);
  for (auto _ : state) {
    auto m = qs::open_model(path);
    if (!m) state.SkipWithError(m.error().message.c_str());
    benchmark::DoNotOptimize(m);
  }
  state.counters["file_GiB"] = static_cast<double>(std::filesystem::file_size(path)) / (1u << 30);
}
BENCHMARK(BM_OpenGguf)->Arg(64)->Arg(16384)->Arg(65536)->Unit(benchmark::kMicrosecond);

// The real files in ../shared/models, one per format.
void BM_OpenSharedModel(benchmark::State& state) {
  static const char* files[] = {"stories260K/hf", "stories260K/gguf/stories260K-Q4_K_M.gguf",
                                "keras-mnist-cnn/mnist1.h5", "tinygrad-mnist-mlp/model.safetensors"};
  const std::string path = std::string(QS_SHARED_DIR) + "/models/" + files[state.range(0)];
  if (!std::filesystem::exists(path)) {
    state.SkipWithError("../shared/models is absent");
    return;
  }
  for (auto _ : state) {
    auto m = qs::open_model(path);
    if (!m) state.SkipWithError(m.error().message.c_str());
    benchmark::DoNotOptimize(m);
  }
  state.SetLabel(files[state.range(0)]);
}
BENCHMARK(BM_OpenSharedModel)->DenseRange(0, 3)->Unit(benchmark::kMicrosecond);

}  // namespace
