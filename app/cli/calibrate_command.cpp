#include "calibrate_command.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <numeric>

#include <sys/resource.h>

#include "backend/thread_pool.h"
#include "calib/calibrate.h"
#include "calib/importance_matrix.h"
#include "calib/calibration_file.h"
#include "io/open_model.h"
#include "model/model_files.h"
#include "stats/outliers.h"
#include "util/atomic_file.h"

namespace qs::cli {
namespace {

double peak_rss_mib() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return static_cast<double>(ru.ru_maxrss) / 1024.0;  // Linux: KiB
}

struct InputSummary {
  float max_abs = 0, median_abs_max = 0;
  double mean_abs = 0, rms = 0;
  std::vector<std::size_t> outliers;  // abs-max > 6 x median
  std::vector<std::size_t> top;       // all channels by abs-max, descending
};

InputSummary summarize(const InputStats& s) {
  InputSummary out;
  out.max_abs = s.abs_max.empty() ? 0.0f : *std::max_element(s.abs_max.begin(), s.abs_max.end());
  out.median_abs_max = static_cast<float>(median_of(s.abs_max));
  double ms = 0;
  for (std::size_t j = 0; j < s.mean_abs.size(); ++j) {
    out.mean_abs += s.mean_abs[j];
    ms += s.mean_sq[j];
  }
  const double n = static_cast<double>(std::max<std::size_t>(1, s.mean_abs.size()));
  out.mean_abs /= n;
  out.rms = std::sqrt(ms / n);
  out.outliers = outlier_channels(s.abs_max);
  out.top.resize(s.abs_max.size());
  std::iota(out.top.begin(), out.top.end(), std::size_t{0});
  std::stable_sort(out.top.begin(), out.top.end(), [&](std::size_t a, std::size_t b) { return s.abs_max[a] > s.abs_max[b]; });
  return out;
}

}  // namespace

int run_calibrate(const CalibrateOptions& opt) {
  auto fail = [](const std::string& message, int code) {
    std::fprintf(stderr, "quantscope-cli: %s\n", message.c_str());
    return code;
  };
  auto model = open_model(opt.path);
  if (!model) return fail(model.error().message, 2);
  CalibrationSettings set;
  set.text_files = opt.texts;
  set.sequences = opt.sequences;
  set.seq_len = opt.ctx;
  set.seed = opt.seed;
  // llama-imatrix's chunks with --imatrix, so that its matrix and ours describe the same text.
  set.consecutive = opt.consecutive || !opt.imatrix.empty();
  // With --imatrix alone only the importance matrix is written: no Hessians, no calibration file.
  const bool want_file = opt.imatrix.empty() || !opt.out.empty();
  set.capture.hessians = !opt.no_hessians && want_file;
  set.capture.heatmap_tokens = opt.heatmap_tokens;
  set.backend = opt.backend;
  const std::string out_path = opt.out.empty() ? default_calibration_path(*model) : opt.out;
  if (opt.out.empty() && want_file) {
    // A folder marked read-only (shared model stores) is left alone even where
    // the user could write it anyway (root).
    namespace fs = std::filesystem;
    std::error_code pec;
    const fs::perms p = fs::status(fs::path(out_path).parent_path(), pec).permissions();
    if (!pec && (p & (fs::perms::owner_write | fs::perms::group_write | fs::perms::others_write)) == fs::perms::none)
      return fail(fs::path(out_path).parent_path().string() + " is read-only: choose where the calibration file goes with -o", 2);
  }
  // Before any work: the files must not replace the model (the write would rename over it).
  // Nor over a device or FIFO (the write would fail only after the whole run).
  if (want_file)
    if (auto r = check_replaceable(out_path); !r) return fail(r.error().message, 2);
  if (auto r = refuse_model_file(*model, out_path); !r) return fail(r.error().message, 2);
  if (!opt.imatrix.empty()) {
    if (auto r = check_replaceable(opt.imatrix); !r) return fail(r.error().message, 2);
    if (auto r = refuse_model_file(*model, opt.imatrix); !r) return fail(r.error().message, 2);
  }
  int last_pct = -1;
  OpContext ctx([&](double p) {
    const int pct = static_cast<int>(p * 100);
    if (!opt.json && pct / 10 != last_pct / 10) std::fprintf(stderr, "\rcalibrating: %3d %%", pct);
    last_pct = pct;
  });
  const auto t0 = std::chrono::steady_clock::now();
  auto run = calibrate(*model, set, ctx);
  if (!opt.json) std::fprintf(stderr, "\n");
  if (!run) return fail(run.error().message, run.error().code == ErrorCode::Unsupported ? 3 : 2);
  if (!run->runner_fallback.empty())
    std::fprintf(stderr, "quantscope-cli: forward pass on the CPU: %s\n", run->runner_fallback.c_str());
  const auto t1 = std::chrono::steady_clock::now();
  if (want_file)
    if (auto r = write_calibration_file(out_path, *model, *run); !r)
      return fail(r.error().message + (opt.out.empty() ? " (choose another place with -o)" : ""), 2);
  std::size_t imatrix_entries = 0;
  if (!opt.imatrix.empty()) {
    std::string dataset;
    for (const std::string& t : opt.texts) dataset += (dataset.empty() ? "" : ",") + t;
    const ImportanceMatrix m = importance_matrix_of(run->capture, dataset);
    if (auto r = write_imatrix(opt.imatrix, m); !r) return fail(r.error().message, 2);
    imatrix_entries = m.columns.size();
  }
  const double write_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t1).count();
  const double total_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::error_code ec;
  const auto file_bytes = want_file ? std::filesystem::file_size(out_path, ec) : 0;
  const ActivationCapture& cap = run->capture;
  const double tok_s = cap.seconds > 0 ? static_cast<double>(cap.tokens) / cap.seconds : 0.0;
  const double rss = peak_rss_mib();
  std::uint64_t held = 0;
  for (const InputStats& s : cap.inputs)
    held += 4 * (s.hessian.size() + s.heatmap.size() + 3 * s.abs_max.size()) + 8 * s.histogram.size();

  if (opt.json) {
    nlohmann::ordered_json inputs = nlohmann::ordered_json::array();
    for (const InputStats& s : cap.inputs) {
      const InputSummary sum = summarize(s);
      nlohmann::ordered_json top = nlohmann::ordered_json::array();
      for (std::size_t k = 0; k < std::min<std::size_t>(sum.top.size(), 8); ++k)
        top.push_back({{"channel", sum.top[k]}, {"abs_max", s.abs_max[sum.top[k]]},
                       {"times_median", sum.median_abs_max > 0 ? s.abs_max[sum.top[k]] / sum.median_abs_max : 0.0f}});
      inputs.push_back({{"block", s.block}, {"input", linear_input_name(s.input)}, {"roles", linear_input_roles(s.input)},
                        {"cols", s.cols}, {"tokens", s.tokens}, {"abs_max", sum.max_abs},
                        {"median_channel_abs_max", sum.median_abs_max}, {"mean_abs", sum.mean_abs}, {"rms", sum.rms},
                        {"outlier_channels", sum.outliers}, {"top_channels", top}});
    }
    nlohmann::ordered_json j = {{"model", model->path},
                                {"texts", opt.texts},
                                {"text_tokens", run->text_tokens},
                                {"sequences", cap.sequences},
                                {"seq_len", cap.seq_len},
                                {"seed", opt.seed},
                                {"tokens", cap.tokens},
                                {"hessians", !opt.no_hessians},
                                {"heatmap_tokens", opt.heatmap_tokens},
                                {"output", want_file ? out_path : ""},
                                {"imatrix", opt.imatrix},
                                {"imatrix_entries", imatrix_entries},
                                {"output_bytes", ec ? 0 : file_bytes},
                                {"capture_bytes", held},
                                {"seconds", cap.seconds},
                                {"load_seconds", run->load_seconds},
                                {"write_seconds", write_s},
                                {"tokens_per_second", tok_s},
                                {"threads", ThreadPool::global().size()},
                                {"backend", run->forward_runner},
                                {"peak_rss_mib", rss},
                                {"inputs", inputs}};
    std::printf("%s\n", j.dump(2).c_str());
    return 0;
  }
  std::printf("model: %s\n", model->path.c_str());
  std::printf("text: %lld tokens from %zu file(s); %d sequences of %d tokens drawn with seed %llu (%lld tokens run)\n",
              static_cast<long long>(run->text_tokens), opt.texts.size(), cap.sequences, cap.seq_len,
              static_cast<unsigned long long>(opt.seed), static_cast<long long>(cap.tokens));
  std::printf("\n%5s  %-16s %-7s %6s %10s %10s %10s %8s  %s\n", "block", "input", "layers", "cols", "max|x|", "med ch max",
              "mean|x|", "outliers", "top channels: index (abs-max, x median)");
  for (const InputStats& s : cap.inputs) {
    const InputSummary sum = summarize(s);
    std::string top;
    for (std::size_t k = 0; k < std::min<std::size_t>(sum.top.size(), 3); ++k) {
      const float v = s.abs_max[sum.top[k]];
      char buf[64];
      std::snprintf(buf, sizeof buf, "%s%zu (%.3g, %.1fx)", k ? ", " : "", sum.top[k], static_cast<double>(v),
                    sum.median_abs_max > 0 ? static_cast<double>(v / sum.median_abs_max) : 0.0);
      top += buf;
    }
    std::printf("%5d  %-16s %-7s %6lld %10.4g %10.4g %10.4g %8zu  %s\n", s.block, linear_input_name(s.input),
                linear_input_roles(s.input), static_cast<long long>(s.cols), static_cast<double>(sum.max_abs),
                static_cast<double>(sum.median_abs_max), sum.mean_abs, sum.outliers.size(), top.c_str());
  }
  std::printf("\noutliers: channels whose abs-max exceeds 6 x the median channel abs-max (LLM.int8() rule)\n");
  std::printf("time: %.3f s forward + statistics (%.0f tokens/s, forward on %s), %.3f s load, %.3f s write, %.3f s total\n",
              cap.seconds, tok_s, run->forward_runner.c_str(), run->load_seconds, write_s, total_s);
  std::printf("memory: %.1f MiB of statistics%s, peak RSS %.1f MiB\n", static_cast<double>(held) / (1 << 20),
              opt.no_hessians ? "" : " (Hessians included)", rss);
  if (want_file)
    std::printf("written: %s (%.1f MiB)\n", out_path.c_str(), ec ? 0.0 : static_cast<double>(file_bytes) / (1 << 20));
  if (!opt.imatrix.empty())
    std::printf("written: %s (importance matrix of %zu weights, llama.cpp's imatrix.dat layout)\n", opt.imatrix.c_str(),
                imatrix_entries);
  return 0;
}

}  // namespace qs::cli
