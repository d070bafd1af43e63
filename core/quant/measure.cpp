#include "quant/measure.h"

#include <algorithm>
#include <atomic>
#include <charconv>
#include <chrono>
#include <vector>

#include "backend/thread_pool.h"
#include "model/convert.h"
#include "quant/ggml_dequant.h"
#include "quant/ggml_quantize.h"

namespace qs {
namespace {

bool parse_int(std::string_view s, int& out) {
  const auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && p == s.data() + s.size();
}

// Live feedback measures one layer while the user waits: the F32 conversion and
// the ggml quantizers run in slices on the thread pool. Every block is
// quantized on its own, so the result does not depend on the split.
constexpr std::size_t kBlocksPerTask = 2048;

Result<void> quantize_dequantize_ggml(DType type, const float* w, std::size_t blocks, float* deq) {
  const std::size_t elems = dtype_block_elems(type), bytes = dtype_block_bytes(type);
  const std::size_t tasks = (blocks + kBlocksPerTask - 1) / kBlocksPerTask;
  std::vector<Result<void>> results(tasks);
  ThreadPool::global().parallel_for(tasks, [&](std::size_t task, unsigned) {
    const std::size_t b0 = task * kBlocksPerTask, n = std::min(blocks - b0, kBlocksPerTask);
    std::vector<std::byte> packed(n * bytes);
    results[task] = quantize_ggml_blocks(type, w + b0 * elems, n, packed.data());
    if (results[task]) dequantize_ggml_blocks(type, packed.data(), n, deq + b0 * elems);
  });
  for (auto& r : results)
    if (!r) return r;  // the first failing slice names the problem
  return {};
}

}  // namespace

Result<void> tensor_to_f32(const TensorInfo& t, float* out) {
  const std::int64_t rows = t.rows(), cols = t.cols();
  const auto bytes = t.bytes();
  const unsigned be = dtype_block_elems(t.dtype), bb = dtype_block_bytes(t.dtype);
  // Slices of whole rows keep quantized source blocks whole.
  if (be == 0 || cols % be != 0 || rows <= 1)
    return convert_to_f32(t.dtype, bytes.data(), static_cast<std::size_t>(t.numel()), out);
  const std::size_t row_bytes = static_cast<std::size_t>(cols / be) * bb;
  constexpr std::int64_t kRowsPerTask = 64;
  const std::size_t tasks = static_cast<std::size_t>((rows + kRowsPerTask - 1) / kRowsPerTask);
  std::atomic<bool> failed{false};
  ThreadPool::global().parallel_for(tasks, [&](std::size_t task, unsigned) {
    const std::int64_t r0 = static_cast<std::int64_t>(task) * kRowsPerTask;
    const std::int64_t r1 = std::min(rows, r0 + kRowsPerTask);
    auto r = convert_to_f32(t.dtype, bytes.data() + static_cast<std::size_t>(r0) * row_bytes,
                            static_cast<std::size_t>((r1 - r0) * cols), out + r0 * cols);
    if (!r) failed = true;
  });
  if (failed) return convert_to_f32(t.dtype, bytes.data(), static_cast<std::size_t>(t.numel()), out);  // for its message
  return {};
}

double QuantChoice::bits_per_weight(std::int64_t rows, std::int64_t cols) const {
  if (kind == Kind::Ggml) return 8.0 * dtype_block_bytes(ggml_type) / dtype_block_elems(ggml_type);
  if (kind == Kind::Named) return named_format_bits_per_weight(named, rows, cols);
  IntQuantized shape;
  shape.rows = rows;
  shape.cols = cols;
  shape.spec = grid;
  return shape.bits_per_weight();
}

Result<QuantChoice> parse_quant_choice(std::string_view text) {
  QuantChoice c;
  c.name = std::string(text);
  static constexpr std::pair<std::string_view, DType> kGgml[] = {
      {"q8_0", DType::Q8_0}, {"q4_0", DType::Q4_0}, {"q4_1", DType::Q4_1}, {"q5_0", DType::Q5_0},
      {"q5_1", DType::Q5_1}, {"q4_k", DType::Q4_K}, {"q5_k", DType::Q5_K}, {"q6_k", DType::Q6_K},
      {"iq4_nl", DType::IQ4_NL}};
  for (const auto& [name, t] : kGgml)
    if (text == name) {
      c.kind = QuantChoice::Kind::Ggml;
      c.ggml_type = t;
      return c;
    }
  if (const auto named = named_format_from_name(text)) {
    c.kind = QuantChoice::Kind::Named;
    c.named = *named;
    return c;
  }
  const auto bad = [&] {
    return Error::invalid("unknown format \"" + std::string(text) +
                          "\": use q8_0, q4_0, q4_1, q5_0, q5_1, q4_k, q5_k, q6_k, iq4_nl, nf4, nf4-dq, fp8-e4m3[-ch], "
                          "fp8-e5m2[-ch], mxfp4, nvfp4, f16, bf16 or int<bits>[-g<group>|-ch|-tensor][-sym]");
  };
  // int<bits> followed by -options.
  std::vector<std::string_view> parts;
  for (std::size_t start = 0;;) {
    const std::size_t dash = text.find('-', start);
    parts.push_back(text.substr(start, dash == std::string_view::npos ? std::string_view::npos : dash - start));
    if (dash == std::string_view::npos) break;
    start = dash + 1;
  }
  if (parts[0].substr(0, 3) != "int" || !parse_int(parts[0].substr(3), c.grid.bits)) return bad();
  c.grid.group_size = 128;
  c.grid.symmetric = false;
  for (std::size_t i = 1; i < parts.size(); ++i) {
    const std::string_view part = parts[i];
    if (part == "sym") c.grid.symmetric = true;
    else if (part == "ch") c.grid.group_size = 0;
    else if (part == "tensor") c.grid.group_size = -1;
    else if (part.size() > 1 && part[0] == 'g' && parse_int(part.substr(1), c.grid.group_size) && c.grid.group_size > 0) continue;
    else return bad();
  }
  if (auto r = validate_int_grid(c.grid, c.grid.group_size > 0 ? c.grid.group_size : 1); !r) return r.error();
  return c;
}

Result<void> quantize_dequantize(const TensorInfo& t, const QuantChoice& choice, std::vector<float>& w,
                                 std::vector<float>& deq, OpContext& ctx, double* milliseconds) {
  if (t.channels_last) return Error::unsupported(t.name + ": channels-last (Keras) kernels are not quantized yet");
  const std::int64_t rows = t.rows(), cols = t.cols();
  if (choice.kind == QuantChoice::Kind::Ggml && cols % dtype_block_elems(choice.ggml_type) != 0)
    return Error::unsupported(t.name + ": row length " + std::to_string(cols) + " is not a multiple of the " +
                              std::string(dtype_name(choice.ggml_type)) + " block (" +
                              std::to_string(dtype_block_elems(choice.ggml_type)) + ")");
  if (choice.kind == QuantChoice::Kind::IntGrid)
    if (auto r = validate_int_grid(choice.grid, cols); !r) return Error::unsupported(t.name + ": " + r.error().message);
  if (choice.kind == QuantChoice::Kind::Named)
    if (auto r = check_named_format_shape(choice.named, cols); !r) return Error::unsupported(t.name + ": " + r.error().message);
  w.resize(static_cast<std::size_t>(t.numel()));
  if (auto r = tensor_to_f32(t, w.data()); !r) return Error::unsupported(t.name + ": " + r.error().message);
  if (ctx.cancelled()) return Error::cancelled();

  const auto start = std::chrono::steady_clock::now();
  deq.resize(w.size());
  if (choice.kind == QuantChoice::Kind::Ggml) {
    const std::size_t blocks = w.size() / dtype_block_elems(choice.ggml_type);
    if (auto r = quantize_dequantize_ggml(choice.ggml_type, w.data(), blocks, deq.data()); !r)
      return Error::invalid(t.name + ": " + r.error().message);
  } else if (choice.kind == QuantChoice::Kind::Named) {
    if (auto r = rtn_named_format(choice.named, w.data(), rows, cols, deq.data(), &ThreadPool::global()); !r)
      return Error{r.error().code, t.name + ": " + r.error().message};
  } else {
    auto q = rtn_int(w.data(), rows, cols, choice.grid);
    if (!q) return Error::invalid(t.name + ": " + q.error().message);
    dequantize_int_into(*q, deq.data());
  }
  if (milliseconds)
    *milliseconds = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  return {};
}

Result<LayerQuantError> measure_quantization(const TensorInfo& t, const QuantChoice& choice, OpContext& ctx) {
  std::vector<float> w, deq;
  LayerQuantError out;
  if (auto r = quantize_dequantize(t, choice, w, deq, ctx, &out.milliseconds); !r) return r.error();
  const auto start = std::chrono::steady_clock::now();
  out.error = weight_error(w.data(), deq.data(), w.size());
  out.milliseconds += std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  out.bits_per_weight = choice.bits_per_weight(t.rows(), t.cols());
  return out;
}

}  // namespace qs
