#pragma once
// A calibration run from files to statistics: reads the calibration text(s),
// tokenizes them with the model's tokenizer (each file with BOS when the model
// adds one; the files' ids are concatenated), draws the sequences
// (draw_calibration_sequences: seeded, uniform window starts; or consecutive
// windows) and captures the activations (activation_capture.h). The one
// calibration pipeline: the CLI's `calibrate`, the app's Calibrate dialog and
// every export given calibration text run it, so the same request gives the
// same Hessians wherever it is made.
#include <cstdint>
#include <string>
#include <vector>

#include "calib/activation_capture.h"
#include "model/model.h"
#include "util/op_context.h"
#include "util/result.h"

namespace qs {

struct CalibrationSettings {
  std::vector<std::string> text_files;
  int sequences = 128;
  int seq_len = 256;
  std::uint64_t seed = 0;
  // The text in consecutive windows of seq_len from its start (at most
  // `sequences` of them), as llama-imatrix and llama-perplexity read it,
  // instead of seeded random windows.
  bool consecutive = false;
  // capture.hessian_backend is the caller's for the call only (a run's copy has it null).
  CaptureOptions capture;
  // Where the forward pass runs: "cpu", "auto" or a device name ("cuda"); see
  // make_forward_runner (a device that cannot start falls back to the CPU).
  std::string backend = "cpu";
};

struct CalibrationRun {
  CalibrationSettings settings;
  ActivationCapture capture;
  std::int64_t text_tokens = 0;  // tokens of all the text(s), BOS included
  double load_seconds = 0;       // weights, tokenizer, text (and the upload to a device)
  std::string forward_runner;    // where the forward pass ran: "CPU (2 threads)", "CUDA (NVIDIA H100 …)"
  std::string runner_fallback;   // why a device asked for was not used (empty when it was, or none was asked for)
};

// Calibration text files larger than this are refused before they are read.
inline constexpr std::size_t kMaxCalibrationTextBytes = std::size_t{1} << 30;

// The request an export's calibration text (--calib) makes: the text's first
// `max_tokens` tokens (<= 0: all of it) in consecutive windows of
// kTextCalibrationWindow tokens, each from BOS, Hessians only — the same
// request as `calibrate --text TEXT --consecutive --ctx 256 --seqs N` with
// N = max_tokens / 256, hence the same numbers.
inline constexpr int kTextCalibrationWindow = 256;
CalibrationSettings text_calibration_request(const std::string& text_file, int max_tokens);

Result<CalibrationRun> calibrate(const Model& model, const CalibrationSettings& settings, OpContext& ctx = OpContext::none());

}  // namespace qs
