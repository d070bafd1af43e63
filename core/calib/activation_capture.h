#pragma once
// Activation capture: runs the model over calibration sequences and, at the
// input of every linear layer (one per distinct input: q/k/v share the
// attention input, gate/up the MLP input), accumulates what the activation
// views and the quantization methods need:
//   per channel: abs-max, mean |x|, mean x²;
//   a histogram of |x| in quarter-octave bins (bins by float exponent and the
//   top two mantissa bits, so binning is exact and costs a shift);
//   the |x| of the first `heatmap_tokens` tokens (channel × token map);
//   the Hessian H = XᵀX / n (optional).
//
// Memory, beyond the F32 weights and one sequence's forward scratch:
//   per input of `cols` channels: 4·cols² bytes for H (when enabled),
//   4·heatmap_tokens·cols bytes for the map, ~20·cols bytes of channel sums
//   and 1.3 KiB of histogram; estimate_capture_bytes() gives the total.
//
// Precision: channel sums are F64. H is accumulated in F32: each sequence adds
// its XᵀX (one SGEMM, F32 sums of at most seq_len products) onto the running
// total, so the rounding grows with the number of sequences S, not tokens: a
// relative error of at most ~S·2⁻²⁴ (1e-5 for 128 sequences), far below
// what GPTQ's dampening adds.
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "calib/forward_runner.h"
#include "calib/llama_forward.h"
#include "model/layer.h"
#include "util/op_context.h"
#include "util/result.h"

namespace qs {

class Backend;

// Histogram layout: bin i covers |x| in [2^(lo + i/4)…) for quarter-octave
// edges 2^e·(1 + k/4), k = 0…3, e from kActHistLog2Min to kActHistLog2Max - 1.
inline constexpr int kActHistLog2Min = -24, kActHistLog2Max = 16, kActHistBinsPerOctave = 4;
inline constexpr int kActHistBins = (kActHistLog2Max - kActHistLog2Min) * kActHistBinsPerOctave;
// The lower edge of bin i.
double activation_hist_edge(int i);

// The four distinct linear-layer inputs of a block, as LlamaRunner::LinearInput.
const char* linear_input_name(LlamaRunner::LinearInput input);  // "attention", "attention_output", "mlp", "mlp_down"
// Which layer roles read an input ("q,k,v", "o", "gate,up", "down").
const char* linear_input_roles(LlamaRunner::LinearInput input);

struct CaptureOptions {
  bool hessians = true;
  int heatmap_tokens = 128;  // tokens kept for the channel × token map (the first ones run)
  // Where H is summed: a device's backend keeps each running sum in its memory
  // (Backend::hessian_accumulator); an H it cannot hold, and every H of the
  // CPU's backend (or none), is summed here by the same F32 SGEMM.
  Backend* hessian_backend = nullptr;
};

struct InputStats {
  int block = 0;
  LlamaRunner::LinearInput input = LlamaRunner::LinearInput::Attention;
  std::int64_t cols = 0, tokens = 0;
  std::vector<float> abs_max, mean_abs, mean_sq;      // [cols]
  std::vector<std::int64_t> histogram;                // [kActHistBins]
  std::int64_t underflow = 0, overflow = 0, nonfinite = 0;  // |x| < 2^lo (zeros too), >= 2^hi, NaN/Inf
  std::int64_t heatmap_tokens = 0;
  std::vector<float> heatmap;                         // [heatmap_tokens, cols]: |x|
  std::vector<float> hessian;                         // [cols, cols] X^T X / tokens; empty when not captured
};

struct ActivationCapture {
  std::vector<InputStats> inputs;  // block by block, LinearInput order within a block
  std::int64_t tokens = 0;         // tokens run (rows behind each input's statistics)
  int sequences = 0, seq_len = 0;
  double seconds = 0;              // forward + accumulation

  const InputStats* find(int block, LlamaRunner::LinearInput input) const;
  // The input a layer of `role` in `block` reads (linear_input_of); nullptr
  // for roles without one (embeddings, head, other) or blocks not captured.
  const InputStats* find_for(LayerRole role, int block) const;
  // The H of that input: nullptr where there is none or it was not captured.
  const std::vector<float>* hessian_for(LayerRole role, int block) const;
};

// Bytes the capture holds for `model` (H, map, sums; not the model or forward scratch).
std::uint64_t estimate_capture_bytes(const LlamaConfig& c, const CaptureOptions& options);

// Calibration sequences from a token stream: `count` windows of `len` tokens
// whose start offsets are drawn uniformly from [0, tokens - len] with
// splitmix64(seed) (with replacement: windows may overlap when the text is
// short); each window's first token is replaced by `bos` (>= 0), since each
// sequence runs from position 0 as in the perplexity protocol.
Result<std::vector<std::vector<std::int32_t>>> draw_calibration_sequences(std::span<const std::int32_t> tokens, int count,
                                                                          int len, std::uint64_t seed, std::int32_t bos);

// Runs every sequence (each from an empty cache) and accumulates the statistics.
Result<ActivationCapture> capture_activations(const LlamaModel& model, const std::vector<std::vector<std::int32_t>>& sequences,
                                              const CaptureOptions& options, OpContext& ctx = OpContext::none());
// The same on any forward runner (CPU or a device: the statistics are
// accumulated on the host from the linear inputs it reports). `c` is the
// runner's model's config; the runner's cache must hold the longest sequence.
Result<ActivationCapture> capture_activations(ForwardRunner& runner, const LlamaConfig& c,
                                              const std::vector<std::vector<std::int32_t>>& sequences,
                                              const CaptureOptions& options, OpContext& ctx = OpContext::none());
// The first min(max_count, tokens / len) consecutive windows of `len` tokens,
// each's first token replaced by `bos` (>= 0): llama-imatrix's chunks.
Result<std::vector<std::vector<std::int32_t>>> consecutive_calibration_chunks(std::span<const std::int32_t> tokens,
                                                                              int max_count, int len, std::int32_t bos);

// Tokens in the longest sequence (the cache a runner needs for them).
int longest_calibration_sequence(const std::vector<std::vector<std::int32_t>>& sequences);

}  // namespace qs
