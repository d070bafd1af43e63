#include "calib/calibrate.h"

#include <algorithm>
#include <chrono>
#include <limits>

#include "calib/device.h"
#include "calib/forward_runner.h"
#include "calib/llama_forward.h"
#include "calib/tokenizer.h"
#include "util/read_text_file.h"

namespace qs {

CalibrationSettings text_calibration_request(const std::string& text_file, int max_tokens) {
  CalibrationSettings s;
  s.text_files = {text_file};
  s.seq_len = kTextCalibrationWindow;
  s.sequences = max_tokens > 0 ? std::max(1, max_tokens / kTextCalibrationWindow) : std::numeric_limits<int>::max();
  s.consecutive = true;
  s.capture.hessians = true;
  s.capture.heatmap_tokens = 0;
  return s;
}

Result<CalibrationRun> calibrate(const Model& model, const CalibrationSettings& settings, OpContext& ctx) {
  if (settings.text_files.empty()) return Error::invalid("calibration: no text file given");
  const auto t0 = std::chrono::steady_clock::now();
  auto tok = Tokenizer::for_model(model);
  if (!tok) return tok.error();
  std::vector<std::int32_t> ids;
  for (const std::string& f : settings.text_files) {
    auto text = read_text_file(f, kMaxCalibrationTextBytes);
    if (!text) return text.error();
    const auto part = tok->encode(*text, tok->add_bos());
    ids.insert(ids.end(), part.begin(), part.end());
  }
  const std::int32_t bos = tok->add_bos() ? tok->bos_id() : -1;
  auto sequences = settings.consecutive ? consecutive_calibration_chunks(ids, settings.sequences, settings.seq_len, bos)
                                        : draw_calibration_sequences(ids, settings.sequences, settings.seq_len, settings.seed, bos);
  if (!sequences) return sequences.error();
  if (ctx.cancelled()) return Error::cancelled();
  // Loading reports no progress of its own, so the caller sees one 0 → 1 sweep (the capture).
  auto lm = LlamaModel::load(model);
  if (!lm) return lm.error();
  auto choice = make_forward_runner(*lm, std::max(1, longest_calibration_sequence(*sequences)), settings.backend);
  if (!choice) return choice.error();
  CalibrationRun run;
  run.settings = settings;
  run.settings.capture.hessian_backend = nullptr;
  run.text_tokens = static_cast<std::int64_t>(ids.size());
  run.forward_runner = choice->runner->description();
  run.runner_fallback = choice->fallback_reason;
  run.load_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  auto cap = capture_activations(*choice->runner, lm->config(), *sequences, settings.capture, ctx);
  if (!cap) return cap.error();
  run.capture = std::move(*cap);
  return run;
}

}  // namespace qs
