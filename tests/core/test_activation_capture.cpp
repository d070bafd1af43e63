// Activation capture and the HDF5 calibration file: statistics against sums
// computed here from the inputs a plain observer sees, an export's text
// request, the sequence draw, and the file's round trip and refusals.
#include <gtest/gtest.h>
#include <hdf5.h>

#include <cmath>
#include <filesystem>
#include <memory>
#include <set>
#include <stdexcept>

#include "calib/activation_capture.h"
#include "calib/calibrate.h"
#include "calib/calibration_file.h"
#include "calib/device.h"
#include "calib/forward_runner.h"
#include "calib/tokenizer.h"
#include "calib/llama_forward.h"
#include "io/open_model.h"
#include "synthetic_calibration.h"
#include "test_device.h"
#include "test_files.h"

namespace {

using Input = qs::LlamaRunner::LinearInput;

struct Small {
  qs::test::TempDir dir;
  qs::Model model;
  std::unique_ptr<qs::LlamaModel> lm;
  Small(int layers = 2, int hidden = 64, int ffn = 96) {
    qs::test::write_small_demo(dir.path() / "m", layers, hidden, ffn);
    auto m = qs::open_model((dir.path() / "m").string());
    if (!m) throw std::runtime_error(m.error().message);
    model = std::move(*m);
    auto l = qs::LlamaModel::load(model);
    if (!l) throw std::runtime_error(l.error().message);
    lm = std::make_unique<qs::LlamaModel>(std::move(*l));
  }
};

std::vector<std::vector<std::int32_t>> some_sequences(int count, int len, int vocab) {
  std::vector<std::vector<std::int32_t>> out(static_cast<std::size_t>(count));
  for (int s = 0; s < count; ++s)
    for (int i = 0; i < len; ++i) out[static_cast<std::size_t>(s)].push_back((s * 131 + i * 53 + 7) % vocab);
  return out;
}

// The bin of |x| from its logarithm: octave floor(log2 a), quarter of the octave by the mantissa.
int reference_bin(double a) {
  const int e = static_cast<int>(std::floor(std::log2(a)));
  const int k = static_cast<int>(std::floor((a / std::ldexp(1.0, e) - 1.0) * 4));
  return (e - qs::kActHistLog2Min) * 4 + k;
}

// Every statistic of two inputs, against direct sums over the rows a plain observer records.
TEST(ActivationCapture, MatchesDirectSumsOverObservedInputs) {
  Small s;
  const auto seqs = some_sequences(3, 40, s.lm->config().vocab);
  qs::CaptureOptions opt;
  opt.heatmap_tokens = 50;  // spans the first two sequences
  auto cap = qs::capture_activations(*s.lm, seqs, opt);
  ASSERT_TRUE(cap.ok()) << cap.error().message;
  EXPECT_EQ(cap->tokens, 120);
  EXPECT_EQ(cap->inputs.size(), 8u);

  for (const auto& [layer, input] : {std::pair{1, Input::Mlp}, std::pair{0, Input::MlpDown}, std::pair{1, Input::AttentionOutput}}) {
    std::vector<float> rows_seen;
    std::int64_t cols = 0;
    qs::LlamaRunner runner(*s.lm);
    runner.set_observer([&](int l, Input in, const float* x, std::int64_t rows, std::int64_t c) {
      if (l != layer || in != input) return;
      cols = c;
      rows_seen.insert(rows_seen.end(), x, x + rows * c);
    });
    qs::LlamaCache cache(s.lm->config(), 40);
    std::vector<float> logits;
    for (const auto& q : seqs) {
      cache.clear();
      ASSERT_TRUE(runner.forward(cache, q, logits).ok());
    }
    const qs::InputStats* st = cap->find(layer, input);
    ASSERT_NE(st, nullptr);
    ASSERT_EQ(st->cols, cols);
    const std::int64_t n = static_cast<std::int64_t>(rows_seen.size()) / cols;
    ASSERT_EQ(st->tokens, n);
    std::vector<std::int64_t> hist(qs::kActHistBins, 0);
    std::int64_t under = 0;
    for (std::int64_t j = 0; j < cols; ++j) {
      double mx = 0, sa = 0, sq = 0;
      for (std::int64_t r = 0; r < n; ++r) {
        const double a = std::fabs(rows_seen[static_cast<std::size_t>(r * cols + j)]);
        mx = std::max(mx, a);
        sa += a;
        sq += a * a;
        if (a < std::ldexp(1.0, qs::kActHistLog2Min)) ++under;
        else ++hist[static_cast<std::size_t>(reference_bin(a))];
      }
      EXPECT_EQ(st->abs_max[static_cast<std::size_t>(j)], static_cast<float>(mx));
      EXPECT_NEAR(st->mean_abs[static_cast<std::size_t>(j)], sa / n, 1e-6 * (sa / n));
      EXPECT_NEAR(st->mean_sq[static_cast<std::size_t>(j)], sq / n, 1e-6 * (sq / n));
    }
    EXPECT_EQ(st->histogram, hist);
    EXPECT_EQ(st->underflow, under);
    EXPECT_EQ(st->overflow, 0);
    EXPECT_EQ(st->nonfinite, 0);
    // The map holds |x| of the first 50 tokens run.
    ASSERT_EQ(st->heatmap_tokens, 50);
    for (std::int64_t i = 0; i < 50 * cols; ++i)
      ASSERT_EQ(st->heatmap[static_cast<std::size_t>(i)], std::fabs(rows_seen[static_cast<std::size_t>(i)])) << i;
    // H = X^T X / n in double.
    double worst = 0, scale = 0;
    for (std::int64_t a = 0; a < cols; ++a)
      for (std::int64_t b = 0; b < cols; ++b) {
        double h = 0;
        for (std::int64_t r = 0; r < n; ++r)
          h += static_cast<double>(rows_seen[static_cast<std::size_t>(r * cols + a)]) * rows_seen[static_cast<std::size_t>(r * cols + b)];
        h /= static_cast<double>(n);
        scale = std::max(scale, std::fabs(h));
        worst = std::max(worst, std::fabs(h - st->hessian[static_cast<std::size_t>(a * cols + b)]));
      }
    EXPECT_LT(worst, 1e-5 * scale) << "layer " << layer << " input " << qs::linear_input_name(input);
  }
}

TEST(ActivationCapture, HistogramEdgesAreQuarterOctaves) {
  EXPECT_EQ(qs::activation_hist_edge(0), std::ldexp(1.0, qs::kActHistLog2Min));
  EXPECT_EQ(qs::activation_hist_edge(-qs::kActHistLog2Min * 4), 1.0);
  EXPECT_EQ(qs::activation_hist_edge(-qs::kActHistLog2Min * 4 + 1), 1.25);
  EXPECT_EQ(qs::activation_hist_edge(-qs::kActHistLog2Min * 4 + 7), 3.5);
  EXPECT_EQ(reference_bin(1.3), -qs::kActHistLog2Min * 4 + 1);
}

// Without Hessians and without a map the capture still gives the channel statistics.
TEST(ActivationCapture, OptionalPartsAndCancel) {
  Small s;
  const auto seqs = some_sequences(2, 16, s.lm->config().vocab);
  qs::CaptureOptions opt;
  opt.hessians = false;
  opt.heatmap_tokens = 0;
  auto cap = qs::capture_activations(*s.lm, seqs, opt);
  ASSERT_TRUE(cap.ok()) << cap.error().message;
  for (const auto& in : cap->inputs) {
    EXPECT_TRUE(in.hessian.empty());
    EXPECT_TRUE(in.heatmap.empty());
    EXPECT_EQ(in.tokens, 32);
  }
  qs::OpContext ctx;
  ctx.cancel();
  auto c = qs::capture_activations(*s.lm, seqs, opt, ctx);
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.error().code, qs::ErrorCode::Cancelled);
  const qs::LlamaConfig& cfg = s.lm->config();
  qs::CaptureOptions full;
  const std::uint64_t h = static_cast<std::uint64_t>(cfg.hidden), f = static_cast<std::uint64_t>(cfg.ffn),
                      qd = static_cast<std::uint64_t>(cfg.heads * cfg.head_dim);
  EXPECT_GE(qs::estimate_capture_bytes(cfg, full), 2 * 4 * (2 * h * h + qd * qd + f * f));
}

TEST(ActivationCapture, SequencesAreSeededWindowsStartingWithBos) {
  std::vector<std::int32_t> tokens(1000);
  for (std::size_t i = 0; i < tokens.size(); ++i) tokens[i] = static_cast<std::int32_t>(i + 10);
  auto a = qs::draw_calibration_sequences(tokens, 20, 64, 7, 1);
  auto b = qs::draw_calibration_sequences(tokens, 20, 64, 7, 1);
  auto c = qs::draw_calibration_sequences(tokens, 20, 64, 8, 1);
  ASSERT_TRUE(a.ok() && b.ok() && c.ok());
  EXPECT_EQ(*a, *b);
  EXPECT_NE(*a, *c);
  std::set<std::int32_t> starts;
  for (const auto& s : *a) {
    ASSERT_EQ(s.size(), 64u);
    EXPECT_EQ(s[0], 1);
    for (std::size_t i = 2; i < s.size(); ++i) EXPECT_EQ(s[i], s[i - 1] + 1);  // a window of the text
    EXPECT_LE(s.back(), 1009);
    starts.insert(s[1]);
  }
  EXPECT_GT(starts.size(), 15u);  // spread over the text
  auto short_text = qs::draw_calibration_sequences(std::span(tokens).first(30), 4, 64, 0, 1);
  ASSERT_FALSE(short_text.ok());
  EXPECT_NE(short_text.error().message.find("30 tokens"), std::string::npos) << short_text.error().message;
}

// An export's calibration text is a calibrate() request: the text's first
// tokens (BOS first) in consecutive windows of 256, each from BOS, Hessians
// only — the Hessians of exactly those chunks.
TEST(ActivationCapture, TextRequestIsConsecutiveWindowsOfTheText) {
  QS_REQUIRE_SHARED();
  auto m = qs::open_model(shared + "/models/stories260K/gguf/stories260K-f32.gguf");
  ASSERT_TRUE(m.ok()) << m.error().message;
  const std::string text = shared + "/models/stories260K/eval/tiny_stories_eval.txt";
  const qs::CalibrationSettings request = qs::text_calibration_request(text, 600);  // two whole windows
  EXPECT_TRUE(request.consecutive);
  auto run = qs::calibrate(*m, request);
  ASSERT_TRUE(run.ok()) << run.error().message;
  EXPECT_EQ(run->capture.sequences, 2);
  EXPECT_EQ(run->capture.tokens, 512);
  auto tok = qs::Tokenizer::for_model(*m);
  ASSERT_TRUE(tok.ok()) << tok.error().message;
  const auto ids = tok->encode(qs::test::read_bytes(text), true);
  auto lm = qs::LlamaModel::load(*m);
  ASSERT_TRUE(lm.ok()) << lm.error().message;
  auto ref = qs::test::hessians_of(*lm, std::span(ids).first(512), 256, tok->bos_id());
  ASSERT_TRUE(ref.ok()) << ref.error().message;
  ASSERT_EQ(run->capture.inputs.size(), ref->inputs.size());
  for (std::size_t k = 0; k < ref->inputs.size(); ++k) {
    EXPECT_TRUE(run->capture.inputs[k].heatmap.empty());
    EXPECT_FALSE(ref->inputs[k].hessian.empty());
    EXPECT_EQ(run->capture.inputs[k].hessian, ref->inputs[k].hessian) << k;
  }
}

void expect_same_capture(const qs::ActivationCapture& a, const qs::ActivationCapture& b) {
  EXPECT_EQ(a.tokens, b.tokens);
  EXPECT_EQ(a.sequences, b.sequences);
  EXPECT_EQ(a.seq_len, b.seq_len);
  ASSERT_EQ(a.inputs.size(), b.inputs.size());
  for (std::size_t i = 0; i < a.inputs.size(); ++i) {
    const qs::InputStats &x = a.inputs[i], &y = b.inputs[i];
    EXPECT_EQ(x.block, y.block);
    EXPECT_EQ(x.input, y.input);
    EXPECT_EQ(x.cols, y.cols);
    EXPECT_EQ(x.tokens, y.tokens);
    EXPECT_EQ(x.abs_max, y.abs_max);
    EXPECT_EQ(x.mean_abs, y.mean_abs);
    EXPECT_EQ(x.mean_sq, y.mean_sq);
    EXPECT_EQ(x.histogram, y.histogram);
    EXPECT_EQ(x.underflow, y.underflow);
    EXPECT_EQ(x.overflow, y.overflow);
    EXPECT_EQ(x.heatmap_tokens, y.heatmap_tokens);
    EXPECT_EQ(x.heatmap, y.heatmap);
    EXPECT_EQ(x.hessian, y.hessian);
  }
}

TEST(CalibrationFile, RoundTripAndRefusals) {
  Small s;
  qs::CalibrationRun run;
  run.settings.text_files = {"/some/calib.txt"};
  run.settings.sequences = 3;
  run.settings.seq_len = 24;
  run.settings.seed = 0xFFFFFFFFFFFFFFF0ull;  // beyond int64: kept exactly
  run.settings.capture.heatmap_tokens = 30;
  run.text_tokens = 999;
  auto cap = qs::capture_activations(*s.lm, some_sequences(3, 24, s.lm->config().vocab), run.settings.capture);
  ASSERT_TRUE(cap.ok()) << cap.error().message;
  run.capture = std::move(*cap);

  const std::string path = s.dir.file("m.qscalib.h5");
  ASSERT_TRUE(qs::write_calibration_file(path, s.model, run).ok());
  auto back = qs::read_calibration_file(path, &s.model);
  ASSERT_TRUE(back.ok()) << back.error().message;
  EXPECT_EQ(back->format_version, 1);
  EXPECT_EQ(back->model_path, s.model.path);
  EXPECT_EQ(back->model_identity, qs::model_identity(s.model));
  EXPECT_EQ(back->created.size(), 20u);  // 2025-01-02T03:04:05Z
  EXPECT_EQ(back->run.settings.text_files, run.settings.text_files);
  EXPECT_EQ(back->run.settings.sequences, 3);
  EXPECT_EQ(back->run.settings.seq_len, 24);
  EXPECT_EQ(back->run.settings.seed, run.settings.seed);
  EXPECT_EQ(back->run.settings.capture.heatmap_tokens, 30);
  EXPECT_EQ(back->run.text_tokens, 999);
  expect_same_capture(back->run.capture, run.capture);

  // Another model (other shapes) is refused, naming both.
  Small other(2, 32, 48);
  EXPECT_NE(qs::model_identity(other.model), qs::model_identity(s.model));
  auto refused = qs::read_calibration_file(path, &other.model);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.error().message.find("another model"), std::string::npos) << refused.error().message;
  EXPECT_NE(refused.error().message.find(other.model.path), std::string::npos) << refused.error().message;
  EXPECT_NE(refused.error().message.find(path), std::string::npos) << refused.error().message;

  // Truncated and garbage files: errors that name the file.
  const std::string bytes = qs::test::read_bytes(path);
  for (const std::size_t keep : {bytes.size() / 2, bytes.size() - 100, std::size_t{600}}) {
    const std::string cut = s.dir.file("cut.qscalib.h5");
    qs::test::write_bytes(cut, bytes.substr(0, keep));
    auto r = qs::read_calibration_file(cut, &s.model);
    ASSERT_FALSE(r.ok()) << keep;
    EXPECT_NE(r.error().message.find(cut), std::string::npos) << r.error().message;
  }
  // A dataset replaced by one of the same shape whose data was never written (a crafted
  // file asking for memory it does not hold): refused, naming the dataset.
  {
    const std::string hollow = s.dir.file("hollow.qscalib.h5");
    qs::test::write_bytes(hollow, bytes);
    const hid_t f = H5Fopen(hollow.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
    ASSERT_GE(f, 0);
    const std::string ds = "blocks/0/attention/abs_max";
    const hsize_t cols = static_cast<hsize_t>(run.capture.inputs.front().cols);
    ASSERT_GE(H5Ldelete(f, ds.c_str(), H5P_DEFAULT), 0);
    const hid_t space = H5Screate_simple(1, &cols, nullptr);
    const hid_t d = H5Dcreate2(f, ds.c_str(), H5T_IEEE_F32LE, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    ASSERT_GE(d, 0);
    H5Dclose(d);
    H5Sclose(space);
    H5Fclose(f);
    auto r = qs::read_calibration_file(hollow, &s.model);
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.error().message.find("abs_max does not hold its data"), std::string::npos) << r.error().message;
  }
  const std::string junk = s.dir.file("junk.qscalib.h5");
  qs::test::write_bytes(junk, "not hdf5 at all");
  auto j = qs::read_calibration_file(junk);
  ASSERT_FALSE(j.ok());
  EXPECT_NE(j.error().message.find(junk), std::string::npos);
  auto missing = qs::read_calibration_file(s.dir.file("none.h5"));
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.error().message.find("none.h5"), std::string::npos);

  // Default locations.
  EXPECT_EQ(qs::default_calibration_path(s.model), (std::filesystem::path(s.model.path) / "quantscope.qscalib.h5").string());
  qs::Model file_model;
  file_model.path = "/x/model.gguf";
  EXPECT_EQ(qs::default_calibration_path(file_model), "/x/model.gguf.qscalib.h5");
}

// The whole run from a text file on stories260K: the text's tokens, the draw, the file.
TEST(CalibrationFile, CalibrateStories260KFromText) {
  QS_REQUIRE_SHARED();
  auto m = qs::open_model(shared + "/models/stories260K/hf");
  ASSERT_TRUE(m.ok()) << m.error().message;
  qs::CalibrationSettings set;
  set.text_files = {shared + "/models/stories260K/eval/tiny_stories_eval.txt"};
  set.sequences = 6;
  set.seq_len = 128;
  set.seed = 3;
  double last_progress = 0;
  qs::OpContext ctx([&](double p) { last_progress = p; });
  auto run = qs::calibrate(*m, set, ctx);
  ASSERT_TRUE(run.ok()) << run.error().message;
  EXPECT_EQ(run->text_tokens, 2066);
  EXPECT_EQ(run->capture.tokens, 6 * 128);
  EXPECT_EQ(last_progress, 1.0);
  EXPECT_EQ(run->capture.inputs.size(), 5u * 4u);
  qs::test::TempDir dir;
  ASSERT_TRUE(qs::write_calibration_file(dir.file("s.h5"), *m, *run).ok());
  auto back = qs::read_calibration_file(dir.file("s.h5"), &*m);
  ASSERT_TRUE(back.ok()) << back.error().message;
  expect_same_capture(back->run.capture, run->capture);
  auto gguf = qs::open_model(shared + "/models/stories260K/gguf/stories260K-f32.gguf");
  ASSERT_TRUE(gguf.ok());
  EXPECT_FALSE(qs::read_calibration_file(dir.file("s.h5"), &*gguf).ok());  // GGUF names: another identity
}

// A device runner for the test: the CPU runner under another name, counting
// its forward passes, and only while `g_device_up` (other tests may ask for "auto").
bool g_device_up = false;
int g_device_forwards = 0;
class CountingRunner final : public qs::ForwardRunner {
 public:
  explicit CountingRunner(std::unique_ptr<qs::ForwardRunner> cpu) : cpu_(std::move(cpu)) {}
  std::string description() const override { return "test device"; }
  int capacity() const override { return cpu_->capacity(); }
  int position() const override { return cpu_->position(); }
  void clear() override { cpu_->clear(); }
  qs::Result<void> forward(std::span<const std::int32_t> tokens, std::vector<float>& logits, int rows) override {
    ++g_device_forwards;
    return cpu_->forward(tokens, logits, rows);
  }
  void set_observer(qs::LlamaRunner::Observer o) override { cpu_->set_observer(std::move(o)); }

 private:
  std::unique_ptr<qs::ForwardRunner> cpu_;
};

// calibrate() runs the capture on the runner its settings name (the app passes
// its compute backend), falls back to the CPU with the reason, and says which ran.
TEST(CalibrationFile, CalibrateRunsOnTheChosenForwardRunner) {
  QS_REQUIRE_SHARED();
  qs::test::register_test_device("zz-calib", &g_device_up, [](const qs::LlamaModel& m, int capacity) {
    return std::unique_ptr<qs::ForwardRunner>(std::make_unique<CountingRunner>(qs::make_cpu_forward_runner(m, capacity)));
  });
  auto m = qs::open_model(shared + "/models/stories260K/hf");
  ASSERT_TRUE(m.ok()) << m.error().message;
  qs::CalibrationSettings set;
  set.text_files = {shared + "/models/stories260K/eval/tiny_stories_eval.txt"};
  set.sequences = 3;
  set.seq_len = 64;
  auto cpu = qs::calibrate(*m, set);  // the default: the CPU
  ASSERT_TRUE(cpu.ok()) << cpu.error().message;
  EXPECT_EQ(cpu->forward_runner.rfind("CPU (", 0), 0u) << cpu->forward_runner;
  EXPECT_TRUE(cpu->runner_fallback.empty());

  set.backend = "zz-calib";
  g_device_up = true;
  g_device_forwards = 0;
  auto dev = qs::calibrate(*m, set);
  g_device_up = false;
  ASSERT_TRUE(dev.ok()) << dev.error().message;
  EXPECT_EQ(dev->forward_runner, "test device");
  EXPECT_EQ(g_device_forwards, 3);  // every sequence went through it
  expect_same_capture(dev->capture, cpu->capture);

  auto down = qs::calibrate(*m, set);
  ASSERT_TRUE(down.ok()) << down.error().message;
  EXPECT_EQ(down->forward_runner.rfind("CPU (", 0), 0u) << down->forward_runner;
  EXPECT_EQ(down->runner_fallback, "zz-calib: test device absent");
  expect_same_capture(down->capture, cpu->capture);

  set.backend = "tpu";
  auto bad = qs::calibrate(*m, set);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message.find("\"tpu\""), std::string::npos) << bad.error().message;
}

}  // namespace
