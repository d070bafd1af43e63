#pragma once
// A calibration run from files to statistics: reads the calibration text(s),
// tokenizes them with the model's tokenizer (each file with BOS when the model
// adds one; the files' ids are concatenated), draws the sequences
// (draw_calibration_sequences: seeded, uniform window starts) and captures the
// activations (activation_capture.h). What the CLI's `calibrate` and the app's
// Calibrate dialog run.
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

Result<CalibrationRun> calibrate(const Model& model, const CalibrationSettings& settings, OpContext& ctx = OpContext::none());

}  // namespace qs
