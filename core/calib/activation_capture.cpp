#include "calib/activation_capture.h"

#include <algorithm>
#include <bit>
#include <chrono>
#include <cmath>
#include <limits>
#include <memory>
#include <optional>

#include "backend/backend.h"
#include "backend/lapack.h"
#include "calib/linear_input.h"

namespace qs {

namespace {

using Input = LlamaRunner::LinearInput;
constexpr Input kInputs[] = {Input::Attention, Input::AttentionOutput, Input::Mlp, Input::MlpDown};

std::int64_t input_cols(const LlamaConfig& c, Input in) {
  switch (in) {
    case Input::Attention: case Input::Mlp: return c.hidden;
    case Input::AttentionOutput: return std::int64_t{c.heads} * c.head_dim;
    case Input::MlpDown: return c.ffn;
  }
  return 0;
}

std::uint64_t splitmix64(std::uint64_t& state) {
  std::uint64_t z = (state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

// Per-input running sums (F64 where they add many terms).
struct Accumulator {
  std::vector<double> sum_abs, sum_sq;
};

void accumulate(InputStats& s, Accumulator& acc, const float* x, std::int64_t rows, std::int64_t cols,
                const CaptureOptions& opt) {
  const auto c = static_cast<std::size_t>(cols);
  // The first rows fill the heatmap, in the order tokens are run.
  const std::int64_t want = std::max<std::int64_t>(0, opt.heatmap_tokens - s.heatmap_tokens);
  const std::int64_t take = std::min(want, rows);
  for (std::int64_t r = 0; r < take; ++r) {
    const float* row = x + r * cols;
    float* dst = s.heatmap.data() + static_cast<std::size_t>(s.heatmap_tokens + r) * c;
    for (std::size_t j = 0; j < c; ++j) dst[j] = std::fabs(row[j]);
  }
  s.heatmap_tokens += take;

  constexpr int kExpLo = 127 + kActHistLog2Min, kExpHi = 127 + kActHistLog2Max;
  std::int64_t* hist = s.histogram.data();
  float* mx = s.abs_max.data();
  double* sa = acc.sum_abs.data();
  double* sq = acc.sum_sq.data();
  std::int64_t nonfinite = 0, underflow = 0, overflow = 0;
  for (std::int64_t r = 0; r < rows; ++r) {
    const float* row = x + r * cols;
    // Channel sums first, in a loop the compiler vectorises across channels;
    // the histogram's scattered increments go in a second pass.
    for (std::size_t j = 0; j < c; ++j) {
      const float a = std::fabs(row[j]);
      mx[j] = std::max(mx[j], a);  // NaN leaves the max as it was; counted below
      sa[j] += a;
      sq[j] += static_cast<double>(a) * a;
    }
    for (std::size_t j = 0; j < c; ++j) {
      const std::uint32_t bits = std::bit_cast<std::uint32_t>(row[j]) & 0x7FFFFFFFu;
      const int e = static_cast<int>(bits >> 23);
      if (e == 255) ++nonfinite;
      else if (e < kExpLo) ++underflow;
      else if (e >= kExpHi) ++overflow;
      else ++hist[((e - kExpLo) << 2) | static_cast<int>((bits >> 21) & 3u)];
    }
  }
  s.nonfinite += nonfinite;
  s.underflow += underflow;
  s.overflow += overflow;
  s.tokens += rows;
}

}  // namespace

double activation_hist_edge(int i) {
  const int octave = kActHistLog2Min + i / kActHistBinsPerOctave;
  return std::ldexp(1.0 + static_cast<double>(i % kActHistBinsPerOctave) / kActHistBinsPerOctave, octave);
}

const char* linear_input_name(Input input) {
  switch (input) {
    case Input::Attention: return "attention";
    case Input::AttentionOutput: return "attention_output";
    case Input::Mlp: return "mlp";
    case Input::MlpDown: return "mlp_down";
  }
  return "?";
}

const char* linear_input_roles(Input input) {
  switch (input) {
    case Input::Attention: return "q,k,v";
    case Input::AttentionOutput: return "o";
    case Input::Mlp: return "gate,up";
    case Input::MlpDown: return "down";
  }
  return "?";
}

const InputStats* ActivationCapture::find(int block, Input input) const {
  for (const InputStats& s : inputs)
    if (s.block == block && s.input == input) return &s;
  return nullptr;
}

const InputStats* ActivationCapture::find_for(LayerRole role, int block) const {
  const auto input = linear_input_of(role);
  return input ? find(block, *input) : nullptr;
}

const std::vector<float>* ActivationCapture::hessian_for(LayerRole role, int block) const {
  const InputStats* s = find_for(role, block);
  return s && !s->hessian.empty() ? &s->hessian : nullptr;
}

std::uint64_t estimate_capture_bytes(const LlamaConfig& c, const CaptureOptions& options) {
  std::uint64_t per_block = 0;
  for (Input in : kInputs) {
    const auto cols = static_cast<std::uint64_t>(input_cols(c, in));
    per_block += (options.hessians ? 4 * cols * cols : 0) + 4 * static_cast<std::uint64_t>(std::max(0, options.heatmap_tokens)) * cols +
                 28 * cols + 8 * kActHistBins;
  }
  return per_block * static_cast<std::uint64_t>(std::max(0, c.layers));
}

Result<std::vector<std::vector<std::int32_t>>> draw_calibration_sequences(std::span<const std::int32_t> tokens, int count,
                                                                          int len, std::uint64_t seed, std::int32_t bos) {
  if (count < 1) return Error::invalid("calibration: the number of sequences must be at least 1");
  if (len < 2) return Error::invalid("calibration: sequences must hold at least 2 tokens");
  if (tokens.size() < static_cast<std::size_t>(len))
    return Error::invalid("calibration: the text has " + std::to_string(tokens.size()) + " tokens, fewer than one sequence of " +
                          std::to_string(len) + "; give more text or a shorter --ctx");
  const std::uint64_t starts = tokens.size() - static_cast<std::size_t>(len) + 1;
  std::uint64_t state = seed;
  std::vector<std::vector<std::int32_t>> out(static_cast<std::size_t>(count));
  for (auto& s : out) {
    const std::uint64_t at = splitmix64(state) % starts;
    s.assign(tokens.begin() + static_cast<std::ptrdiff_t>(at), tokens.begin() + static_cast<std::ptrdiff_t>(at) + len);
    if (bos >= 0) s[0] = bos;
  }
  return out;
}

Result<std::vector<std::vector<std::int32_t>>> consecutive_calibration_chunks(std::span<const std::int32_t> tokens,
                                                                              int max_count, int len, std::int32_t bos) {
  if (max_count < 1) return Error::invalid("calibration: the number of sequences must be at least 1");
  if (len < 2) return Error::invalid("calibration: sequences must hold at least 2 tokens");
  const std::size_t n = std::min(static_cast<std::size_t>(max_count), tokens.size() / static_cast<std::size_t>(len));
  if (n == 0)
    return Error::invalid("calibration: the text has " + std::to_string(tokens.size()) + " tokens, fewer than one chunk of " +
                          std::to_string(len) + "; give more text or a shorter --ctx");
  std::vector<std::vector<std::int32_t>> out(n);
  for (std::size_t i = 0; i < n; ++i) {
    const auto first = tokens.begin() + static_cast<std::ptrdiff_t>(i * static_cast<std::size_t>(len));
    out[i].assign(first, first + len);
    if (bos >= 0) out[i][0] = bos;
  }
  return out;
}

int longest_calibration_sequence(const std::vector<std::vector<std::int32_t>>& sequences) {
  std::size_t n = 0;
  for (const auto& s : sequences) n = std::max(n, s.size());
  return static_cast<int>(std::min<std::size_t>(n, static_cast<std::size_t>(std::numeric_limits<int>::max())));
}

Result<ActivationCapture> capture_activations(const LlamaModel& model, const std::vector<std::vector<std::int32_t>>& sequences,
                                              const CaptureOptions& options, OpContext& ctx) {
  if (sequences.empty()) return Error::invalid("calibration: no sequences");
  const auto runner = make_cpu_forward_runner(model, std::max(1, longest_calibration_sequence(sequences)));
  return capture_activations(*runner, model.config(), sequences, options, ctx);
}

Result<ActivationCapture> capture_activations(ForwardRunner& runner, const LlamaConfig& c,
                                              const std::vector<std::vector<std::int32_t>>& sequences,
                                              const CaptureOptions& options, OpContext& ctx) {
  if (sequences.empty()) return Error::invalid("calibration: no sequences");
  int max_len = 0;
  for (const auto& s : sequences) {
    if (s.empty()) return Error::invalid("calibration: an empty sequence");
    max_len = std::max(max_len, static_cast<int>(s.size()));
  }
  if (max_len > runner.capacity())
    return Error::invalid("calibration: sequences of " + std::to_string(max_len) + " tokens exceed the forward pass's cache of " +
                          std::to_string(runner.capacity()) + " positions");
  if (c.max_position > 0 && max_len > c.max_position)
    return Error::invalid("calibration: sequences of " + std::to_string(max_len) + " tokens exceed the model's " +
                          std::to_string(c.max_position) + " positions");
  if (options.heatmap_tokens < 0) return Error::invalid("calibration: heatmap_tokens must not be negative");

  const auto t0 = std::chrono::steady_clock::now();
  ActivationCapture out;
  std::vector<Accumulator> acc;
  for (int l = 0; l < c.layers; ++l)
    for (Input in : kInputs) {
      InputStats s;
      s.block = l;
      s.input = in;
      s.cols = input_cols(c, in);
      const auto cols = static_cast<std::size_t>(s.cols);
      s.abs_max.assign(cols, 0.0f);
      s.histogram.assign(kActHistBins, 0);
      s.heatmap.assign(static_cast<std::size_t>(options.heatmap_tokens) * cols, 0.0f);
      if (options.hessians) s.hessian.assign(cols * cols, 0.0f);
      out.inputs.push_back(std::move(s));
      acc.push_back({std::vector<double>(cols, 0.0), std::vector<double>(cols, 0.0)});
    }
  auto slot = [](int layer, Input in) { return static_cast<std::size_t>(layer) * 4 + static_cast<std::size_t>(in); };

  // With a device: one accumulator per input, made at its first chunk; null
  // where the device could not make one (that H is summed here).
  Backend* const offload = options.hessian_backend && !options.hessian_backend->is_host() ? options.hessian_backend : nullptr;
  std::vector<std::unique_ptr<HessianAccumulator>> device(offload ? out.inputs.size() : 0);
  std::vector<bool> tried(device.size(), false);
  std::optional<Error> device_error;
  runner.set_observer([&](int layer, Input in, const float* x, std::int64_t rows, std::int64_t cols) {
    const std::size_t k = slot(layer, in);
    InputStats& s = out.inputs[k];
    accumulate(s, acc[k], x, rows, cols, options);
    if (!options.hessians) return;
    if (!device.empty()) {
      if (!tried[k]) {
        tried[k] = true;
        if (auto made = offload->hessian_accumulator(cols)) device[k] = std::move(*made);
      }
      if (device[k]) {
        if (auto r = device[k]->add(x, rows); !r && !device_error) device_error = r.error();
        return;
      }
    }
    lapack::gemm(true, cols, cols, rows, 1.0f, x, cols, x, cols, 1.0f, s.hessian.data(), cols);  // H += X^T X
  });
  // The observer refers to this frame; the runner may outlive it.
  struct ObserverReset {
    ForwardRunner& r;
    ~ObserverReset() { r.set_observer(nullptr); }
  } reset{runner};
  std::vector<float> logits;
  for (std::size_t k = 0; k < sequences.size(); ++k) {
    if (ctx.cancelled()) return Error::cancelled();
    runner.clear();
    // Only the linear inputs are wanted: ask for no logits (the head is skipped).
    if (auto r = runner.forward(sequences[k], logits, 0); !r) return r.error();
    if (device_error) return Error{device_error->code, "calibration: " + device_error->message};
    out.tokens += static_cast<std::int64_t>(sequences[k].size());
    ctx.progress(static_cast<double>(k + 1) / static_cast<double>(sequences.size()));
  }
  for (std::size_t k = 0; k < device.size(); ++k)
    if (device[k])
      if (auto r = device[k]->read(out.inputs[k].hessian.data()); !r)
        return Error{r.error().code, "calibration: " + r.error().message};
  for (std::size_t k = 0; k < out.inputs.size(); ++k) {
    InputStats& s = out.inputs[k];
    const double inv = 1.0 / static_cast<double>(s.tokens);
    s.mean_abs.resize(acc[k].sum_abs.size());
    s.mean_sq.resize(acc[k].sum_sq.size());
    for (std::size_t j = 0; j < s.mean_abs.size(); ++j) {
      s.mean_abs[j] = static_cast<float>(acc[k].sum_abs[j] * inv);
      s.mean_sq[j] = static_cast<float>(acc[k].sum_sq[j] * inv);
    }
    s.heatmap.resize(static_cast<std::size_t>(s.heatmap_tokens * s.cols));
    const float invf = 1.0f / static_cast<float>(s.tokens);  // one F32 scale of the F32 sum
    for (float& v : s.hessian) v *= invf;
  }
  out.sequences = static_cast<int>(sequences.size());
  out.seq_len = max_len;
  out.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return out;
}

}  // namespace qs
