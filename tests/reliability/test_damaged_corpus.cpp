// The damaged-input corpus (#17 item 7): every format QuantScope reads, from
// the real files in ../shared (and files QuantScope writes: plans, calibration
// files, HDF5 checkpoints), damaged in the ways damage.h makes, run through the
// commands that read it (inspect, measure, export, perplexity) exactly as the
// command line runs them, each in a forked child with a time limit. Every run
// must end with exit 0 (damage a reader cannot see, such as a flipped weight)
// or exit 2 with a message naming the damaged file — never a signal, a hang or
// another code — and leave nothing behind: no file changed or added in the
// work folder but the command's own output, nothing in its TMPDIR.
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <set>

#include "cli_child.h"
#include "damage.h"
#include "io/quantized_h5.h"

namespace fs = std::filesystem;
using qs::reliability::ChildRun;
using qs::reliability::run_cli_child;
using qs::reliability::run_in_child;
using qs::reliability::Variant;

namespace {

#if defined(__SANITIZE_ADDRESS__)
constexpr double kTimeLimit = 60;
#else
constexpr double kTimeLimit = 20;
#endif

std::string shared_dir() {
  const fs::path p = QS_SHARED_DIR;
  return fs::is_directory(p / "models") ? p.string() : std::string();
}

std::string read_all(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}
void write_all(const fs::path& p, const std::string& bytes) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (!out) throw std::runtime_error("cannot write " + p.string());
}

// A folder's files with their sizes and contents' hash: what "nothing changed" compares.
std::map<std::string, std::size_t> snapshot(const fs::path& dir) {
  std::map<std::string, std::size_t> out;
  for (const auto& e : fs::recursive_directory_iterator(dir)) {
    const std::string rel = fs::relative(e.path(), dir).string();
    out[rel] = e.is_regular_file() ? std::hash<std::string>{}(read_all(e.path())) : 0;
  }
  return out;
}

// One scratch folder per test: the work folder (inputs + outputs) and the
// children's TMPDIR. Removed at the end whatever happened.
class Scratch {
 public:
  Scratch() {
    root_ = fs::temp_directory_path() / ("qs-corpus-" + std::to_string(::getpid()) + "-" +
                                         ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(root_);
    fs::create_directories(root_ / "work");
    fs::create_directories(root_ / "tmp");
  }
  ~Scratch() {
    std::error_code ec;
    fs::remove_all(root_, ec);
  }
  fs::path work() const { return root_ / "work"; }
  fs::path tmp() const { return root_ / "tmp"; }

 private:
  fs::path root_;
};

struct Command {
  std::vector<std::string> args;  // "{W}" stands for the work folder
  std::string output;             // what it writes, relative to the work folder ("" for none)
  int pristine_exit = 0;          // its exit code on the undamaged input
};

struct Tally {
  int runs = 0, ok = 0, refused = 0;
  double seconds = 0;
  std::vector<std::string> failures;

  // Counts one run and says what is wrong with how it ended ("" when nothing):
  // it must exit 0, or 2 with a message naming `damaged` (a file name).
  std::string count(const ChildRun& r, const std::string& damaged) {
    ++runs;
    seconds += r.seconds;
    ok += r.exit_code == 0;
    refused += r.exit_code == 2;
    if (r.timed_out) return "ran past " + std::to_string(static_cast<int>(kTimeLimit)) + " s (killed)";
    if (r.signal) return "died of signal " + std::to_string(r.signal);
    if (r.exit_code == 2 && r.err.find(damaged) == std::string::npos)
      return "exit 2 with a message that does not name " + damaged;
    if (r.exit_code != 0 && r.exit_code != 2) return "exit " + std::to_string(r.exit_code);
    return {};
  }
  void add(const Tally& t) {
    runs += t.runs, ok += t.ok, refused += t.refused, seconds += t.seconds;
    failures.insert(failures.end(), t.failures.begin(), t.failures.end());
  }
};

std::vector<std::string> expand(const std::vector<std::string>& args, const fs::path& work) {
  std::vector<std::string> out;
  for (std::string a : args) {
    for (std::size_t p; (p = a.find("{W}")) != std::string::npos;) a.replace(p, 3, work.string());
    out.push_back(a);
  }
  return out;
}

std::string joined(const std::vector<std::string>& args) {
  std::string s;
  for (const auto& a : args) s.append(a).append(" ");
  return s;
}

// Runs `commands` on each variant of the file at `input` (relative to the work
// folder, which `lay_out` has filled), checking each run as the corpus promises.
Tally run_corpus(Scratch& scratch, const std::string& input, const std::vector<Variant>& variants,
                 const std::vector<Command>& commands) {
  Tally t;
  const fs::path work = scratch.work();
  const fs::path target = work / input;
  const std::string pristine = read_all(target);
  // The undamaged input first: each command must do what it does normally, or
  // the corpus would test nothing but a broken setup.
  for (const auto& c : commands) {
    const ChildRun r = run_cli_child(expand(c.args, work), scratch.tmp().string(), kTimeLimit * 3);
    EXPECT_EQ(r.exit_code, c.pristine_exit) << joined(c.args) << "\n" << r.err;
    if (!c.output.empty()) fs::remove_all(work / c.output);
  }
  const auto before_names = [&] {
    auto s = snapshot(work);
    s.erase(input);
    return s;
  }();
  for (const auto& v : variants) {
    write_all(target, v.bytes);
    const std::size_t damaged_hash = std::hash<std::string>{}(v.bytes);
    for (const auto& c : commands) {
      const auto args = expand(c.args, work);
      const ChildRun r = run_cli_child(args, scratch.tmp().string(), kTimeLimit);
      std::string problem = t.count(r, fs::path(input).filename().string());
      if (r.exit_code != 0 && !c.output.empty() && fs::exists(work / c.output))
        problem += (problem.empty() ? "" : "; ") + std::string("left its output after failing");
      if (!c.output.empty()) fs::remove_all(work / c.output);
      auto after = snapshot(work);
      if (after[input] != damaged_hash) problem += (problem.empty() ? "" : "; ") + std::string("changed its input");
      after.erase(input);
      if (after != before_names) problem += (problem.empty() ? "" : "; ") + std::string("changed the work folder");
      if (!fs::is_empty(scratch.tmp())) {
        problem += (problem.empty() ? "" : "; ") + std::string("left files in TMPDIR");
        for (const auto& e : fs::directory_iterator(scratch.tmp())) fs::remove_all(e.path());
      }
      if (!problem.empty()) {
        t.failures.push_back(v.what + " | " + joined(c.args) + "| " + problem + " | " + r.err.substr(0, 400));
        // Restore the folder so one failure does not cascade into every later case.
        for (const auto& e : fs::directory_iterator(work)) {
          const std::string rel = fs::relative(e.path(), work).string();
          if (!before_names.count(rel) && rel != fs::path(input).begin()->string()) fs::remove_all(e.path());
        }
      }
    }
  }
  write_all(target, pristine);
  return t;
}

void report(const std::string& what, const Tally& t, int min_runs) {
  std::printf("[corpus] %s: %d runs (%d exit 0, %d refused with exit 2) in %.1f s, %zu failures\n", what.c_str(), t.runs,
              t.ok, t.refused, t.seconds, t.failures.size());
  for (std::size_t i = 0; i < t.failures.size() && i < 40; ++i) ADD_FAILURE() << t.failures[i];
  EXPECT_TRUE(t.failures.empty()) << t.failures.size() << " failing runs";
  EXPECT_GE(t.runs, min_runs);
}

void copy_dir(const fs::path& from, const fs::path& to) {
  fs::create_directories(to);
  for (const auto& e : fs::directory_iterator(from))
    if (e.is_regular_file()) fs::copy_file(e.path(), to / e.path().filename());
}

#define REQUIRE_SHARED()                 \
  const std::string shared = shared_dir(); \
  if (shared.empty()) GTEST_SKIP() << "../shared is absent (fresh clone): the corpus is made from its real files"

std::string eval_text(const std::string& shared) { return shared + "/models/stories260K/eval/tiny_stories_eval.txt"; }

// The four commands on a llama model at {W}/<model>.
std::vector<Command> model_commands(const std::string& model, const std::string& text) {
  return {{{"inspect", "{W}/" + model}, ""},
          {{"measure", "{W}/" + model, "-f", "q4_0,q4_k"}, ""},
          {{"export", "{W}/" + model, "-o", "{W}/out.gguf", "-t", "Q4_0"}, "out.gguf"},
          {{"perplexity", "{W}/" + model, "--text", text, "--ctx", "64", "--chunks", "2"}, ""}};
}

TEST(Corpus, Gguf) {
  REQUIRE_SHARED();
  Scratch s;
  fs::copy_file(shared + "/models/stories260K/gguf/stories260K-Q4_K_M.gguf", s.work() / "model.gguf");
  const auto variants = qs::reliability::gguf_variants(read_all(s.work() / "model.gguf"), 170);
  report("GGUF (stories260K-Q4_K_M)", run_corpus(s, "model.gguf", variants, model_commands("model.gguf", eval_text(shared))),
         600);
}

TEST(Corpus, HfSafetensors) {
  REQUIRE_SHARED();
  Scratch s;
  copy_dir(shared + "/models/stories260K/hf", s.work() / "m");
  const auto variants = qs::reliability::safetensors_variants(read_all(s.work() / "m/model.safetensors"), 110);
  report("HF model.safetensors", run_corpus(s, "m/model.safetensors", variants, model_commands("m", eval_text(shared))), 400);
}

TEST(Corpus, HfConfig) {
  REQUIRE_SHARED();
  Scratch s;
  copy_dir(shared + "/models/stories260K/hf", s.work() / "m");
  const auto variants = qs::reliability::json_variants(read_all(s.work() / "m/config.json"), 70);
  report("HF config.json", run_corpus(s, "m/config.json", variants, model_commands("m", eval_text(shared))), 250);
}

// The tokenizer files are read by what tokenizes: perplexity, and the GGUF
// export's vocabulary.
std::vector<Command> tokenizer_commands(const std::string& text) {
  return {{{"export", "{W}/m", "-o", "{W}/out.gguf", "-t", "Q8_0"}, "out.gguf"},
          {{"perplexity", "{W}/m", "--text", text, "--ctx", "64", "--chunks", "2"}, ""}};
}

TEST(Corpus, HfTokenizers) {
  REQUIRE_SHARED();
  Scratch s;
  copy_dir(shared + "/models/stories260K/hf", s.work() / "m");
  Tally all;
  for (const auto& [file, budget] : std::vector<std::pair<std::string, int>>{
           {"tokenizer.json", 50}, {"tokenizer_config.json", 30}, {"special_tokens_map.json", 15}}) {
    const auto variants = qs::reliability::json_variants(read_all(s.work() / "m" / file), budget);
    all.add(run_corpus(s, "m/" + file, variants, tokenizer_commands(eval_text(shared))));
  }
  const auto model_variants = qs::reliability::binary_variants(read_all(s.work() / "m/tokenizer.model"), 60);
  all.add(run_corpus(s, "m/tokenizer.model", model_variants, tokenizer_commands(eval_text(shared))));
  report("HF tokenizer files", all, 300);
}

TEST(Corpus, KerasHdf5) {
  REQUIRE_SHARED();
  Scratch s;
  fs::copy_file(shared + "/models/keras-mnist-cnn/mnist1.h5", s.work() / "mnist.h5");
  write_all(s.work() / "plan.json", R"({"version": 1, "default": {"format": "int8-ch", "method": "rtn"}})");
  const auto variants = qs::reliability::binary_variants(read_all(s.work() / "mnist.h5"), 90);
  report("Keras HDF5 (mnist1.h5)",
         run_corpus(s, "mnist.h5", variants,
                    {{{"inspect", "{W}/mnist.h5"}, ""},
                     {{"measure", "{W}/mnist.h5", "-f", "int8-ch,q8_0"}, ""},
                     {{"export", "{W}/mnist.h5", "-f", "hdf5", "-o", "{W}/out.qs.h5", "--plan", "{W}/plan.json"},
                      "out.qs.h5"}}),
         250);
}

TEST(Corpus, TinygradSafetensors) {
  REQUIRE_SHARED();
  Scratch s;
  fs::copy_file(shared + "/models/tinygrad-mnist-mlp/model.safetensors", s.work() / "mlp.safetensors");
  const auto variants = qs::reliability::safetensors_variants(read_all(s.work() / "mlp.safetensors"), 40);
  report("tinygrad safetensors",
         run_corpus(s, "mlp.safetensors", variants,
                    {{{"inspect", "{W}/mlp.safetensors"}, ""}, {{"measure", "{W}/mlp.safetensors", "-f", "int8-ch"}, ""}}),
         80);
}

TEST(Corpus, ImportanceMatrix) {
  REQUIRE_SHARED();
  Scratch s;
  fs::copy_file(shared + "/models/stories260K/imatrix/imatrix.dat", s.work() / "imatrix.dat");
  const auto variants = qs::reliability::binary_variants(read_all(s.work() / "imatrix.dat"), 70);
  report("imatrix.dat",
         run_corpus(s, "imatrix.dat", variants,
                    {{{"export", shared + "/models/stories260K/gguf/stories260K-f32.gguf", "-o", "{W}/out.gguf", "-t",
                       "Q4_K_M", "--imatrix", "{W}/imatrix.dat"},
                      "out.gguf"}}),
         70);
}

constexpr const char* kPlan = R"({
  "version": 1,
  "preset": "corpus",
  "default": {"format": "q4_k", "method": "rtn", "params": {}},
  "overrides": [
    {"match": {"role": "down"}, "format": "q6_k"},
    {"match": {"blocks": [0, 1], "role": "v"}, "format": "q8_0", "method": "clip", "params": {"step": 0.05}},
    {"match": {"regex": "layers\\.(0|4)\\.self_attn\\.q"}, "format": "q5_0"},
    {"match": {"name": "model.layers.2.mlp.up_proj"}, "format": "f16"}
  ]
})";

TEST(Corpus, Plan) {
  REQUIRE_SHARED();
  Scratch s;
  copy_dir(shared + "/models/stories260K/hf", s.work() / "m");
  write_all(s.work() / "plan.json", kPlan);
  const auto variants = qs::reliability::json_variants(kPlan, 80);
  report("plan.json", run_corpus(s, "plan.json", variants,
                                 {{{"measure", "{W}/m", "--plan", "{W}/plan.json"}, ""},
                                  {{"export", "{W}/m", "--plan", "{W}/plan.json", "-o", "{W}/out.gguf"}, "out.gguf"}}),
         160);
}

// Files QuantScope writes and reads back: a calibration file and an HDF5
// checkpoint, made here by the commands themselves.
TEST(Corpus, CalibrationFile) {
  REQUIRE_SHARED();
  Scratch s;
  copy_dir(shared + "/models/stories260K/hf", s.work() / "m");
  const ChildRun made = run_cli_child({"calibrate", (s.work() / "m").string(), "--text", eval_text(shared), "--ctx", "64",
                                       "--seqs", "4", "-o", (s.work() / "c.h5").string()},
                                      s.tmp().string(), kTimeLimit * 3);
  ASSERT_EQ(made.exit_code, 0) << made.err;
  // measure applies AWQ too; the GGUF export takes GPTQ.
  write_all(s.work() / "plan.json",
            R"({"version": 1, "default": {"format": "q4_0", "method": "gptq"}, "overrides": [{"match": {"role": "v"}, "method": "awq"}]})");
  write_all(s.work() / "gptq.json", R"({"version": 1, "default": {"format": "q4_0", "method": "gptq"}})");
  const auto variants = qs::reliability::binary_variants(read_all(s.work() / "c.h5"), 80);
  report("calibration file",
         run_corpus(s, "c.h5", variants,
                    {{{"measure", "{W}/m", "--plan", "{W}/plan.json", "--calib-file", "{W}/c.h5"}, ""},
                     {{"export", "{W}/m", "--plan", "{W}/gptq.json", "--calib-file", "{W}/c.h5", "-o", "{W}/out.gguf"},
                      "out.gguf"}}),
         160);
}

// No command opens a QuantScope checkpoint yet (the HDF5 export reads its own
// back): its reader is run as the export's verification runs it — the header,
// then every tensor's values.
TEST(Corpus, Hdf5Checkpoint) {
  REQUIRE_SHARED();
  Scratch s;
  copy_dir(shared + "/models/stories260K/hf", s.work() / "m");
  // Each kind of stored tensor the checkpoint holds: ggml blocks, an integer grid, NF4, kept outliers.
  write_all(s.work() / "plan.json", R"({"version": 1, "default": {"format": "q4_k", "method": "rtn"}, "overrides": [
    {"match": {"role": "down"}, "format": "int4-g32"}, {"match": {"role": "v"}, "format": "nf4"},
    {"match": {"role": "o"}, "format": "int8-ch", "method": "outliers", "params": {"fraction": 0.01}}]})");
  const std::string ckpt = (s.work() / "ckpt.qs.h5").string();
  const ChildRun made = run_cli_child({"export", (s.work() / "m").string(), "-f", "hdf5", "--plan",
                                       (s.work() / "plan.json").string(), "-o", ckpt},
                                      s.tmp().string(), kTimeLimit * 3);
  ASSERT_EQ(made.exit_code, 0) << made.err;
  const std::string pristine = read_all(ckpt);
  const auto read_back = [&] {
    auto f = qs::read_quantized_h5(ckpt);
    if (!f) return std::fprintf(stderr, "%s\n", f.error().message.c_str()), 2;
    for (const auto& t : f->tensors)
      if (auto v = qs::read_quantized_h5_values(*f, t); !v) return std::fprintf(stderr, "%s\n", v.error().message.c_str()), 2;
    return 0;
  };
  ASSERT_EQ(run_in_child(read_back, s.tmp().string(), kTimeLimit).exit_code, 0);
  Tally t;
  for (const auto& v : qs::reliability::binary_variants(pristine, 160)) {
    write_all(ckpt, v.bytes);
    const ChildRun r = run_in_child(read_back, s.tmp().string(), kTimeLimit);
    if (const std::string problem = t.count(r, "ckpt.qs.h5"); !problem.empty())
      t.failures.push_back(v.what + " | " + problem + " | " + r.err.substr(0, 300));
  }
  report("HDF5 checkpoint", t, 140);
}

}  // namespace
