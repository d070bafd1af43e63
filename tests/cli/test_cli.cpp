// quantscope-cli end to end: run the binary, check its output and exit codes.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <nlohmann/json.hpp>

#include "calib/calibration_file.h"
#include "calib/layer_input_stats.h"
#include "cli_run.h"
#include "demo/demo_model.h"
#include "io/open_model.h"
#include "io/quantized_h5.h"
#include "model/convert.h"
#include "quant/layer_method.h"

namespace {

using qs::test::Cli;
using qs::test::CliRun;
using qs::test::run;
using qs::test::run_env;

TEST_F(Cli, InspectJsonListsLayersWithStatsAndPlantedOutliers) {
  const CliRun r = run("inspect --json --backend cpu " + dir_.string());
  ASSERT_EQ(r.code, 0) << r.out;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["architecture"]["model_type"], "llama");
  EXPECT_EQ(j["architecture"]["num_layers"], 6);
  EXPECT_EQ(j["tensor_count"], 57);
  ASSERT_EQ(j["layers"].size(), 44u);
  const auto truth = qs::demo_truth({});
  int q_layers = 0;
  for (const auto& l : j["layers"]) {
    EXPECT_TRUE(l.contains("min") && l.contains("max") && l.contains("std")) << l["name"];
    EXPECT_LT(l["min"].get<double>(), l["max"].get<double>());
    if (l["role"] == "q") {
      ++q_layers;
      EXPECT_EQ(l["outlier_in_channels"].get<std::vector<int>>(), truth.hidden_outlier_channels);
      EXPECT_EQ(l["shape"], nlohmann::json::array({256, 256}));
      EXPECT_EQ(l["dtype"], "F16");
    }
  }
  EXPECT_EQ(q_layers, 6);
}

TEST_F(Cli, InspectTextShowsTheArchitectureAndTable) {
  const CliRun r = run("inspect --backend cpu " + dir_.string());
  ASSERT_EQ(r.code, 0);
  EXPECT_NE(r.out.find("hidden 256, intermediate 688, layers 6, heads 8 (kv 4)"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("model.layers.5.mlp.down_proj"), std::string::npos);
  EXPECT_NE(r.out.find("outliers"), std::string::npos);
}

TEST_F(Cli, HeadersOnlyModeSkipsStatistics) {
  const CliRun r = run("inspect --json --no-stats " + dir_.string());
  ASSERT_EQ(r.code, 0);
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_FALSE(j["layers"][0].contains("min"));
}

TEST_F(Cli, BadFileExitsNonZeroWithAMessageNamingIt) {
  const auto bad = dir_ / "broken.safetensors";
  std::ofstream(bad) << "\x10\0\0\0\0\0\0\0{\"a\":";
  const CliRun r = run("inspect " + bad.string(), true);
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.out.find(bad.string()), std::string::npos) << r.out;
  const CliRun none = run("inspect /no/such/model", true);
  EXPECT_EQ(none.code, 2);
  EXPECT_NE(none.out.find("no such file"), std::string::npos);
}

TEST_F(Cli, UnavailableCudaIsAClearErrorNotACrash) {
  const CliRun r = run("inspect --backend cuda " + dir_.string(), true);
  if (r.code == 0) GTEST_SKIP() << "a CUDA device is present";
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.out.find("CUDA"), std::string::npos) << r.out;
}

TEST_F(Cli, InspectsEveryFormatOfTheSharedModels) {
  const std::string shared = QS_SHARED_DIR;
  if (!std::filesystem::exists(shared + "/models")) GTEST_SKIP() << "../shared/models is absent (fresh clone)";
  struct Case {
    std::string path, format, first_layer;
    std::size_t layers;
  } cases[] = {
      {shared + "/models/stories260K/hf", "Hugging Face directory", "model.embed_tokens", 37},
      {shared + "/models/stories260K/gguf/stories260K-Q4_K_M.gguf", "GGUF", "token_embd", 37},
      {shared + "/models/keras-mnist-cnn/mnist1.h5", "Keras HDF5", "conv2d_1", 4},
      {shared + "/models/tinygrad-mnist-mlp/model.safetensors", "safetensors", "l1", 2},
  };
  for (const auto& c : cases) {
    const CliRun r = run("inspect --json --backend cpu " + c.path);
    ASSERT_EQ(r.code, 0) << c.path;
    const auto j = nlohmann::json::parse(r.out);
    EXPECT_EQ(j["format"], c.format);
    ASSERT_EQ(j["layers"].size(), c.layers) << c.path;
    EXPECT_EQ(j["layers"][0]["name"], c.first_layer);
    for (const auto& l : j["layers"]) EXPECT_TRUE(l.contains("std")) << l["name"];
  }
}

TEST_F(Cli, MeasureReportsEveryFormatAndSkipsShapesItCannotTake) {
  const CliRun r = run("measure --json -f q8_0,int4-g128 " + dir_.string());
  ASSERT_EQ(r.code, 0) << r.out;
  const auto j = nlohmann::json::parse(r.out);
  ASSERT_EQ(j["layers"].size(), 44u);
  // down_proj rows are 688 wide: not whole 32-blocks nor 128-groups.
  EXPECT_EQ(j["totals"]["q8_0"]["layers_measured"], 38);
  EXPECT_EQ(j["totals"]["q8_0"]["layers_skipped"], 6);
  EXPECT_DOUBLE_EQ(j["totals"]["q8_0"]["bits_per_weight"].get<double>(), 8.5);
  EXPECT_DOUBLE_EQ(j["totals"]["int4-g128"]["bits_per_weight"].get<double>(), 4.25);
  EXPECT_GT(j["totals"]["q8_0"]["sqnr_db"].get<double>(), j["totals"]["int4-g128"]["sqnr_db"].get<double>() + 10);
  const CliRun bad = run("measure -f q9_9 " + dir_.string(), true);
  EXPECT_EQ(bad.code, 2);
  EXPECT_NE(bad.out.find("unknown format \"q9_9\""), std::string::npos) << bad.out;
}

TEST_F(Cli, GptqExportWithCalibrationRunsGptqWithActOrder) {
  const std::string shared = QS_SHARED_DIR;
  if (!std::filesystem::exists(shared + "/models")) GTEST_SKIP() << "../shared/models is absent (fresh clone)";
  const std::string base = shared + "/models/stories260K/";
  const auto out = dir_ / "gptq-act";
  const CliRun r = run("export --json -f gptq --group 32 --act-order --calib " + base + "eval/tiny_stories_eval.txt --calib-tokens 512 -o " +
                       out.string() + " " + base + "hf");
  ASSERT_EQ(r.code, 0) << r.out;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["method"], "gptq act-order");
  EXPECT_EQ(j["checkpoint_format"], "gptq");
  EXPECT_EQ(j["calibration_tokens"], 512);
  EXPECT_EQ(j["verified"], true);
  int quantized = 0;
  for (const auto& l : j["layers"]) {
    if (!l["quantized"]) continue;
    ++quantized;
    EXPECT_EQ(l["format"], "int4-g32-sym");
    EXPECT_GT(l["sqnr_db"].get<double>(), 10.0) << l["name"];
    EXPECT_NEAR(l["readback_sqnr_db"].get<double>(), l["sqnr_db"].get<double>(), 1e-6) << l["name"];
  }
  EXPECT_EQ(quantized, 20);  // q, k, v, o of 5 blocks; the 172-wide MLP does not fit 4-bit packing
  std::ifstream config(out / "config.json");
  const auto qc = nlohmann::json::parse(config)["quantization_config"];
  EXPECT_EQ(qc["desc_act"], true);
  EXPECT_EQ(qc["meta"]["method"], "gptq");

  const CliRun bad = run("export -f gptq --act-order -o " + (dir_ / "no-calib").string() + " " + base + "hf", true);
  EXPECT_EQ(bad.code, 2);  // a refused request (README "Exit codes")
  EXPECT_NE(bad.out.find("need calibration"), std::string::npos) << bad.out;
  EXPECT_FALSE(std::filesystem::exists(dir_ / "no-calib"));
}

// A plan is never written over a file of the model it is for, nor over a FIFO
// (the write policy of every writer): exit 2, the file untouched.
// A file may declare a tensor far larger than memory (here a sparse 32 GiB
// safetensors file that takes no disk): refused before anything is allocated,
// naming the file, the tensor and the budget; QS_MEMORY_BUDGET lowers it.
TEST_F(Cli, DeclaredSizesBeyondTheMemoryBudgetAreRefused) {
  const std::filesystem::path big = dir_ / "sparse.safetensors";
  std::string header = R"({"w.weight":{"dtype":"F32","shape":[131072,65536],"data_offsets":[0,34359738368]}})";
  header.append((8 - header.size() % 8) % 8, ' ');
  std::string bytes(8, '\0');
  const std::uint64_t n = header.size();
  std::memcpy(bytes.data(), &n, 8);
  {
    std::ofstream(big, std::ios::binary) << bytes << header;
  }
  std::filesystem::resize_file(big, 8 + header.size() + (std::uint64_t{1} << 35));
  struct Removed {
    std::filesystem::path p;
    ~Removed() { std::filesystem::remove(p); }
  } removed{big};
  // (A budget set below any machine's memory: on a large one the default would let it through.)
  CliRun r = run_env("QS_MEMORY_BUDGET=16G", "measure -f int8-ch " + big.string());
  EXPECT_EQ(r.code, 2) << r.out;
  EXPECT_NE(r.out.find("sparse.safetensors: w.weight as F32 with its dequantized copy needs 65536 MiB, more than the memory budget of 16384 MiB"),
            std::string::npos) << r.out;
  r = run("measure -f q8_0 " + dir_.string(), true);
  EXPECT_EQ(r.code, 0) << r.out;
  const CliRun tight = run_env("QS_MEMORY_BUDGET=1M", "measure -f q8_0 " + dir_.string());
  EXPECT_EQ(tight.code, 2) << tight.out;
  EXPECT_NE(tight.out.find("more than the memory budget of 1 MiB (QS_MEMORY_BUDGET)"), std::string::npos) << tight.out;
}

TEST_F(Cli, PlanNeverReplacesTheModelOrANonRegularFile) {
  const auto weights = dir_ / "model.safetensors";
  const std::string before = qs::test::file_bytes(weights);
  ASSERT_GT(before.size(), 1000u);
  for (const auto& target : {weights, dir_ / "config.json"}) {
    const CliRun r = run("plan --preset q8_0 -o " + target.string() + " " + dir_.string(), true);
    EXPECT_EQ(r.code, 2) << r.out;
    EXPECT_NE(r.out.find("is a file of the source model"), std::string::npos) << r.out;
  }
  EXPECT_TRUE(qs::test::file_bytes(weights) == before);
  const auto fifo = dir_.parent_path() / ("qs-plan-fifo-" + std::to_string(::getpid()));
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  struct Removed {
    std::filesystem::path p;
    ~Removed() { std::filesystem::remove(p); }
  } removed{fifo};
  const CliRun r = run("plan --preset q8_0 -o " + fifo.string() + " " + dir_.string(), true);
  EXPECT_EQ(r.code, 2) << r.out;
  EXPECT_NE(r.out.find("not a regular file (a FIFO)"), std::string::npos) << r.out;
  EXPECT_TRUE(std::filesystem::is_fifo(fifo));
}

TEST_F(Cli, PlanFromABudgetIsWrittenAndMeasured) {
  const auto plan = dir_ / "plan.json";
  // The demo model has no tokenizer.model (no GGUF account): the budget is over its tensors as
  // stored, embeddings and norms included, which cost at least 6.7569 bits/weight with these candidates.
  const CliRun r = run("plan --json --budget 7.5 --candidates q4_0,q5_k,q8_0 -o " + plan.string() + " " + dir_.string());
  ASSERT_EQ(r.code, 0) << r.out;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_LE(j["bits_per_weight"].get<double>(), 7.5);
  EXPECT_GT(j["bits_per_weight"].get<double>(), 7.0);  // the budget is used, not wasted
  EXPECT_EQ(j["layers"].size(), 44u);
  ASSERT_TRUE(std::filesystem::exists(plan));
  const CliRun m = run("measure --json --plan " + plan.string() + " " + dir_.string());
  ASSERT_EQ(m.code, 0) << m.out;
  const auto mj = nlohmann::json::parse(m.out);
  EXPECT_EQ(mj["layers"].size(), 44u);
  // The plan's bits/weight is over every tensor: the layers as measured (those no candidate fits
  // kept in F16), the rest (embeddings, norms) as stored — recomputed from inspect and measure.
  for (const auto& l : mj["layers"]) ASSERT_TRUE(l.contains("bits_per_weight")) << l.dump();
  const auto ij = nlohmann::json::parse(run("inspect --json --no-stats " + dir_.string()).out);
  double bits = 8.0 * ij["weight_bytes"].get<double>();
  const double weights = ij["parameters"].get<double>();
  for (std::size_t i = 0; i < mj["layers"].size(); ++i) {
    const auto& l = mj["layers"][i];
    ASSERT_EQ(ij["layers"][i]["dtype"], "F16");
    const double n = ij["layers"][i]["params"].get<double>();
    bits += (l["bits_per_weight"].get<double>() - 16.0) * n;
  }
  EXPECT_NEAR(bits / weights, j["bits_per_weight"].get<double>(), 1e-9);
  const CliRun bad = run("plan --preset q9 " + dir_.string(), true);
  EXPECT_EQ(bad.code, 2);
  EXPECT_NE(bad.out.find("unknown preset"), std::string::npos) << bad.out;
}

TEST_F(Cli, DemoCommandWritesAModelThatInspects) {
  const auto out = dir_ / "demo2";
  const CliRun w = run("demo --layers 2 --hidden 64 --intermediate 96 -o " + out.string());
  ASSERT_EQ(w.code, 0);
  const CliRun r = run("inspect --json " + out.string());
  ASSERT_EQ(r.code, 0);
  EXPECT_EQ(nlohmann::json::parse(r.out)["layers"].size(), 2u * 7 + 2);
}

// calibrate -o naming the model's own weights is refused before any work, and the weights stay.
TEST_F(Cli, CalibrateRefusesToReplaceTheModel) {
  const auto model = dir_ / "m";
  ASSERT_EQ(run("demo --layers 1 --hidden 64 --intermediate 96 -o " + model.string()).code, 0);
  const auto weights = model / "model.safetensors";
  ASSERT_TRUE(std::filesystem::exists(weights));
  const auto size = std::filesystem::file_size(weights);
  const auto text = dir_ / "t.txt";
  std::ofstream(text) << "Once upon a time there was a small model.";
  const CliRun r = run("calibrate --seqs 1 --ctx 8 -o " + weights.string() + " --text " + text.string() + " " + model.string(), true);
  EXPECT_EQ(r.code, 2) << r.out;
  EXPECT_NE(r.out.find("is a file of the source model"), std::string::npos) << r.out;
  EXPECT_EQ(std::filesystem::file_size(weights), size);
}

TEST_F(Cli, CalibrateWritesTheFileAndSummarisesEachInput) {
  const std::string shared = QS_SHARED_DIR;
  if (!std::filesystem::exists(shared + "/models")) GTEST_SKIP() << "../shared/models is absent (fresh clone)";
  const std::string text = shared + "/models/stories260K/eval/tiny_stories_eval.txt";
  const auto out = dir_ / "stories.qscalib.h5";
  const CliRun r = run("calibrate --json --seqs 4 --ctx 64 --seed 9 -o " + out.string() + " --text " + text + " " + shared +
                       "/models/stories260K/hf");
  ASSERT_EQ(r.code, 0) << r.out;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["tokens"], 256);
  EXPECT_EQ(j["text_tokens"], 2066);
  EXPECT_EQ(j["inputs"].size(), 20u);
  EXPECT_EQ(j["inputs"][3]["input"], "mlp_down");
  EXPECT_EQ(j["inputs"][3]["cols"], 172);
  EXPECT_EQ(j["inputs"][3]["top_channels"].size(), 8u);
  EXPECT_GE(j["inputs"][3]["top_channels"][0]["abs_max"].get<double>(), j["inputs"][3]["top_channels"][1]["abs_max"].get<double>());
  EXPECT_EQ(j["inputs"][3]["abs_max"], j["inputs"][3]["top_channels"][0]["abs_max"]);
  EXPECT_GT(j["peak_rss_mib"].get<double>(), 1.0);
  EXPECT_GT(j["tokens_per_second"].get<double>(), 0.0);
  EXPECT_EQ(j["output_bytes"].get<std::uint64_t>(), std::filesystem::file_size(out));
  const CliRun t = run("calibrate --seqs 2 --ctx 32 -o " + (dir_ / "b.h5").string() + " --text " + text + " " + shared +
                       "/models/stories260K/hf");
  ASSERT_EQ(t.code, 0) << t.out;
  EXPECT_NE(t.out.find("top channels"), std::string::npos) << t.out;
  EXPECT_NE(t.out.find("peak RSS"), std::string::npos) << t.out;
  EXPECT_NE(t.out.find("tokens/s"), std::string::npos) << t.out;
  // Without -o the file goes next to the model: a read-only model folder is refused before any work.
  const CliRun ro = run("calibrate --seqs 1 --ctx 32 --text " + text + " " + shared + "/models/stories260K/hf", true);
  EXPECT_EQ(ro.code, 2);
  EXPECT_NE(ro.out.find("read-only"), std::string::npos) << ro.out;
  EXPECT_FALSE(std::filesystem::exists(shared + "/models/stories260K/hf/quantscope.qscalib.h5"));
  const CliRun bad = run("calibrate -o " + (dir_ / "c.h5").string() + " --text /nonexistent.txt " + shared + "/models/stories260K/hf", true);
  EXPECT_EQ(bad.code, 2);
  EXPECT_NE(bad.out.find("/nonexistent.txt"), std::string::npos) << bad.out;
}

// eval: llama.cpp's perplexity for F32; a q4_k_m plan in memory = llama-quantize's Q4_K_M file.
TEST_F(Cli, EvalGivesPerplexityAndKldOfAPlan) {
  const std::string shared = QS_SHARED_DIR;
  if (!std::filesystem::exists(shared + "/models")) GTEST_SKIP() << "../shared/models is absent (fresh clone)";
  const std::string gguf = shared + "/models/stories260K/gguf/";
  const std::string text = " --text " + shared + "/models/stories260K/eval/tiny_stories_eval.txt ";
  const CliRun plain = run("eval" + text + gguf + "stories260K-f32.gguf");
  ASSERT_EQ(plain.code, 0) << plain.out;
  const auto at = plain.out.find("perplexity: ");
  ASSERT_NE(at, std::string::npos) << plain.out;
  EXPECT_NEAR(std::stod(plain.out.substr(at + 12)), 4.6578, 4.6578 * 0.001);

  const auto plan = dir_ / "q4km.json";
  ASSERT_EQ(run("plan --preset q4_k_m -o " + plan.string() + " " + gguf + "stories260K-f32.gguf").code, 0);
  const CliRun q = run("eval --json --plan " + plan.string() + text + gguf + "stories260K-f32.gguf");
  ASSERT_EQ(q.code, 0) << q.out;
  const CliRun file = run("eval --json" + text + gguf + "stories260K-Q4_K_M.gguf");
  ASSERT_EQ(file.code, 0) << file.out;
  const auto jq = nlohmann::json::parse(q.out), jf = nlohmann::json::parse(file.out);
  EXPECT_NEAR(jq["perplexity"].get<double>(), jf["perplexity"].get<double>(), 1e-4);
  EXPECT_NEAR(jq["perplexity"].get<double>(), 4.8044, 4.8044 * 0.01);
  EXPECT_NEAR(jq["reference_perplexity"].get<double>(), 4.6578, 4.6578 * 0.001);
  EXPECT_GT(jq["mean_kld"].get<double>(), 0.0);
  EXPECT_EQ(jq["layers"].size(), 37u);
  const CliRun text_mode = run("eval --plan " + plan.string() + text + gguf + "stories260K-f32.gguf");
  ASSERT_EQ(text_mode.code, 0);
  EXPECT_NE(text_mode.out.find("kld: "), std::string::npos) << text_mode.out;
  EXPECT_NE(text_mode.out.find("29 x Q5_0"), std::string::npos) << text_mode.out;

  const CliRun bad = run("eval --plan /nonexistent.json" + text + gguf + "stories260K-f32.gguf", true);
  EXPECT_EQ(bad.code, 2);
  EXPECT_NE(bad.out.find("/nonexistent.json"), std::string::npos) << bad.out;
}

// eval --plan --calib-file: GPTQ layers fake-quantized with the file's Hessians.
// Calibrated on the first half of the eval text, scored on the second half:
// GPTQ Q4_0 is closer to the F32 model than RTN Q4_0 (KLD and perplexity);
// without the file the plan is refused, saying what is missing.
// The fake-quant export applies a plan's GPTQ layers with a calibration file:
// the written F16 checkpoint scores the perplexity the in-memory evaluation
// of the same plan gives (F16 rounding apart); without calibration it is refused.
TEST_F(Cli, FakeQuantExportAppliesGptqWithACalibrationFile) {
  const std::string shared = QS_SHARED_DIR;
  if (!std::filesystem::exists(shared + "/models")) GTEST_SKIP() << "../shared/models is absent (fresh clone)";
  const std::string model = shared + "/models/stories260K/hf";
  const std::string text = shared + "/models/stories260K/eval/tiny_stories_eval.txt";
  const auto calib = dir_ / "hf.qscalib.h5";
  ASSERT_EQ(run("calibrate --seqs 16 --ctx 128 -o " + calib.string() + " --text " + text + " " + model).code, 0);
  const auto plan = dir_ / "gptq32.json";
  std::ofstream(plan) << R"({"version":1,"default":{"format":"int4-g32","method":"gptq"}})";
  const auto out = dir_ / "fq";
  const CliRun refused = run("export -f fakequant --plan " + plan.string() + " -o " + out.string() + " " + model, true);
  EXPECT_NE(refused.code, 0);
  EXPECT_NE(refused.out.find("needs the layer input's Hessian: give calibration"), std::string::npos) << refused.out;
  EXPECT_FALSE(std::filesystem::exists(out));
  const CliRun ex = run("export --json -f fakequant --plan " + plan.string() + " --calib-file " + calib.string() + " -o " +
                        out.string() + " " + model);
  ASSERT_EQ(ex.code, 0) << ex.out;
  EXPECT_TRUE(nlohmann::json::parse(ex.out)["verified"].get<bool>());
  const CliRun on_file = run("eval --json --text " + text + " " + out.string());
  const CliRun in_memory = run("eval --json --plan " + plan.string() + " --calib-file " + calib.string() + " --text " + text + " " + model);
  ASSERT_EQ(on_file.code, 0) << on_file.out;
  ASSERT_EQ(in_memory.code, 0) << in_memory.out;
  const double a = nlohmann::json::parse(on_file.out)["perplexity"].get<double>();
  const double b = nlohmann::json::parse(in_memory.out)["perplexity"].get<double>();
  std::printf("  gptq int4-g32: exported F16 checkpoint ppl %.4f, in-memory plan %.4f\n", a, b);
  EXPECT_NEAR(a, b, 0.002 * b);
}

// Calibration goes where a format uses it and is refused where it would be
// ignored; the HDF5 checkpoint's outlier keeping ranks by the calibration file.
// One pipeline: --calib T --calib-tokens 512 is the request `calibrate --text T
// --consecutive --ctx 256 --seqs 2` makes, so the GGUF and GPTQ exports given
// either are the same files, byte for byte.
TEST_F(Cli, ExportCalibrationOptionsGoWhereTheyAreUsed) {
  const std::string shared = QS_SHARED_DIR;
  if (!std::filesystem::exists(shared + "/models")) GTEST_SKIP() << "../shared/models is absent (fresh clone)";
  const std::string model = shared + "/models/stories260K/hf";
  const std::string text = shared + "/models/stories260K/eval/tiny_stories_eval.txt";
  const auto calib = dir_ / "o.qscalib.h5";
  ASSERT_EQ(run("calibrate --seqs 8 --ctx 128 -o " + calib.string() + " --text " + text + " " + model).code, 0);
  const auto plan = dir_ / "outliers.json";
  std::ofstream(plan) << R"({"version":1,"default":{"format":"int4-g32","method":"outliers","params":{"fraction":0.02}}})";
  const CliRun ftype = run("export -t Q4_K_M --calib-file " + calib.string() + " -o " + (dir_ / "g.gguf").string() + " " + model, true);
  EXPECT_EQ(ftype.code, 2);
  EXPECT_NE(ftype.out.find("a file type's quantizers take no calibration"), std::string::npos) << ftype.out;
  const CliRun both = run("export -f fakequant --plan " + plan.string() + " --calib " + text + " --calib-file " + calib.string() +
                          " -o " + (dir_ / "b").string() + " " + model, true);
  EXPECT_EQ(both.code, 2);
  const CliRun tokens = run("export -f gptq --calib-file " + calib.string() + " --calib-tokens 512 -o " + (dir_ / "k").string() +
                            " " + model, true);
  EXPECT_EQ(tokens.code, 2);
  EXPECT_NE(tokens.out.find("--calib-tokens"), std::string::npos) << tokens.out;
  EXPECT_FALSE(std::filesystem::exists(dir_ / "g.gguf") || std::filesystem::exists(dir_ / "b") ||
               std::filesystem::exists(dir_ / "k"));

  const auto consecutive = dir_ / "c512.qscalib.h5";
  ASSERT_EQ(run("calibrate --consecutive --seqs 2 --ctx 256 -o " + consecutive.string() + " --text " + text + " " + model).code, 0);
  const auto gptq_plan = dir_ / "gptq-q4_0.json";
  std::ofstream(gptq_plan) << R"({"version":1,"default":{"format":"q4_0","method":"gptq"}})";
  const std::string from_text = " --calib " + text + " --calib-tokens 512 ", from_file = " --calib-file " + consecutive.string() + " ";
  ASSERT_EQ(run("export --plan " + gptq_plan.string() + from_text + "-o " + (dir_ / "t.gguf").string() + " " + model).code, 0);
  ASSERT_EQ(run("export --plan " + gptq_plan.string() + from_file + "-o " + (dir_ / "f.gguf").string() + " " + model).code, 0);
  const std::string gguf_t = qs::test::file_bytes(dir_ / "t.gguf");
  EXPECT_GT(gguf_t.size(), 200000u);
  EXPECT_TRUE(gguf_t == qs::test::file_bytes(dir_ / "f.gguf"));
  ASSERT_EQ(run("export -f gptq --group 32" + from_text + "-o " + (dir_ / "gt").string() + " " + model).code, 0);
  ASSERT_EQ(run("export -f gptq --group 32" + from_file + "-o " + (dir_ / "gf").string() + " " + model).code, 0);
  EXPECT_TRUE(qs::test::file_bytes(dir_ / "gt" / "model.safetensors") ==
              qs::test::file_bytes(dir_ / "gf" / "model.safetensors"));
  // and the text's file is not the same file as the drawn sequences' (the request matters).
  ASSERT_EQ(run("export -f gptq --group 32 --calib-file " + calib.string() + " -o " + (dir_ / "gd").string() + " " + model).code, 0);
  EXPECT_FALSE(qs::test::file_bytes(dir_ / "gd" / "model.safetensors") ==
               qs::test::file_bytes(dir_ / "gf" / "model.safetensors"));
  const auto plain = dir_ / "plain.qs.h5", ranked = dir_ / "ranked.qs.h5";
  ASSERT_EQ(run("export -f hdf5 --plan " + plan.string() + " -o " + plain.string() + " " + model).code, 0);
  ASSERT_EQ(run("export -f hdf5 --plan " + plan.string() + " --calib-file " + calib.string() + " -o " + ranked.string() + " " + model).code, 0);
  // Each file keeps the weights keep_outliers picks with (ranked) and without
  // (plain) the calibration's statistics, and the two choices differ.
  auto src = qs::open_model(model);
  auto cal = qs::read_calibration_file(calib.string(), &*src);
  ASSERT_TRUE(src.ok() && cal.ok());
  int differing = 0, checked = 0;
  for (const auto& [path, with_calib] : {std::pair{plain, false}, std::pair{ranked, true}}) {
    auto file = qs::read_quantized_h5(path.string());
    ASSERT_TRUE(file.ok()) << file.error().message;
    for (const qs::Layer& l : src->layers) {
      const qs::TensorInfo& t = src->tensors[l.weight];
      const auto it = std::find_if(file->tensors.begin(), file->tensors.end(), [&](const auto& x) { return x.name == t.name; });
      ASSERT_NE(it, file->tensors.end());
      if (it->outliers != "weights") continue;  // rows that int4-g32 cannot take are kept whole
      std::vector<float> w(t.numel());
      ASSERT_TRUE(qs::tensor_to_f32(t, w.data()).ok());
      const qs::LayerInputStats st = with_calib ? qs::layer_input_stats(l, t.cols(), &cal->run.capture) : qs::LayerInputStats{};
      auto kept = qs::keep_outliers(*qs::parse_quant_choice("int4-g32"), {"int4-g32", "outliers", {{"fraction", 0.02}}}, w.data(),
                                    t.rows(), t.cols(), st);
      ASSERT_TRUE(kept.ok());
      auto stored = qs::read_quantized_h5_stored(*file, *it);
      ASSERT_TRUE(stored.ok());
      EXPECT_EQ(stored->outlier_rows, kept->row) << t.name;
      EXPECT_EQ(stored->outlier_cols, kept->col) << t.name;
      ++checked;
      if (with_calib && st.h) {
        auto unranked = qs::keep_outliers(*qs::parse_quant_choice("int4-g32"), {"int4-g32", "outliers", {{"fraction", 0.02}}},
                                          w.data(), t.rows(), t.cols(), {});
        differing += unranked->col != kept->col || unranked->row != kept->row;
      }
    }
  }
  EXPECT_GT(checked, 20);
  EXPECT_GT(differing, 0);
}

TEST_F(Cli, EvalAppliesGptqWithACalibrationFile) {
  const std::string shared = QS_SHARED_DIR;
  if (!std::filesystem::exists(shared + "/models")) GTEST_SKIP() << "../shared/models is absent (fresh clone)";
  const std::string model = shared + "/models/stories260K/gguf/stories260K-f32.gguf";
  std::ifstream in(shared + "/models/stories260K/eval/tiny_stories_eval.txt", std::ios::binary);
  const std::string all((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const std::size_t cut = all.find("Mia felt scared.");
  ASSERT_NE(cut, std::string::npos);
  const auto cal = dir_ / "cal.txt", held = dir_ / "held.txt";
  std::ofstream(cal) << all.substr(0, cut);
  std::ofstream(held) << all.substr(cut);
  const auto calib = dir_ / "e.qscalib.h5";
  ASSERT_EQ(run("calibrate --seqs 32 --ctx 128 -o " + calib.string() + " --text " + cal.string() + " " + model).code, 0);
  double ppl[2], kld[2];
  int k = 0;
  for (const char* method : {"rtn", "gptq"}) {
    const auto plan = dir_ / (std::string(method) + ".json");
    std::ofstream(plan) << R"({"version":1,"default":{"format":"q4_0","method":")" << method << R"("}})";
    const CliRun r = run("eval --json --plan " + plan.string() + " --calib-file " + calib.string() + " --text " + held.string() +
                         " " + model);
    ASSERT_EQ(r.code, 0) << r.out;
    const auto j = nlohmann::json::parse(r.out);
    ppl[k] = j["perplexity"].get<double>();
    kld[k] = j["mean_kld"].get<double>();
    ++k;
  }
  std::printf("  held-out: rtn ppl %.4f kld %.4f, gptq ppl %.4f kld %.4f\n", ppl[0], kld[0], ppl[1], kld[1]);
  EXPECT_LT(kld[1], 0.9 * kld[0]);
  EXPECT_LT(ppl[1], ppl[0]);
  const CliRun refused = run("eval --plan " + (dir_ / "gptq.json").string() + " --text " + held.string() + " " + model, true);
  EXPECT_NE(refused.code, 0);
  EXPECT_NE(refused.out.find("give a calibration file"), std::string::npos) << refused.out;
}

// measure --plan --calib-file: the output error of every block layer from the file's Hessians.
TEST_F(Cli, MeasurePlanWithCalibrationFileAddsOutputError) {
  const std::string shared = QS_SHARED_DIR;
  if (!std::filesystem::exists(shared + "/models")) GTEST_SKIP() << "../shared/models is absent (fresh clone)";
  const std::string model = shared + "/models/stories260K/gguf/stories260K-f32.gguf";
  const auto calib = dir_ / "m.qscalib.h5";
  ASSERT_EQ(run("calibrate --seqs 8 --ctx 128 -o " + calib.string() + " --text " + shared +
                "/models/stories260K/eval/tiny_stories_eval.txt " + model).code, 0);
  std::map<std::string, double> err[2];
  int k = 0;
  for (const char* preset : {"q8_0", "q4_0"}) {
    const auto plan = dir_ / (std::string(preset) + ".json");
    ASSERT_EQ(run("plan --preset " + std::string(preset) + " -o " + plan.string() + " " + model).code, 0);
    const CliRun r = run("measure --json --plan " + plan.string() + " --calib-file " + calib.string() + " " + model);
    ASSERT_EQ(r.code, 0) << r.out;
    const auto j = nlohmann::json::parse(r.out);
    for (const auto& l : j["layers"])
      if (l.contains("rel_output_error")) err[k][l["name"]] = l["rel_output_error"].get<double>();
    ++k;
  }
  // Every linear layer of the 5 blocks; the 172-wide down rows are measured as the GGUF file
  // stores them, at llama.cpp's fallback F16 for both presets.
  ASSERT_EQ(err[0].size(), 35u);
  for (const auto& [name, e8] : err[0]) {
    ASSERT_TRUE(err[1].count(name)) << name;
    EXPECT_GT(e8, 0.0) << name;
    if (name.find("down") != std::string::npos) {
      EXPECT_EQ(e8, err[1][name]) << name;
      EXPECT_LT(e8, 1e-6) << name;
      continue;
    }
    EXPECT_LT(e8, err[1][name]) << name;
    EXPECT_LT(err[1][name], 0.2) << name;
  }
  // A calibration file of another model (the HF directory: other tensor names) is refused.
  const CliRun other = run("measure --plan " + (dir_ / "q8_0.json").string() + " --calib-file " + calib.string() + " " + shared +
                           "/models/stories260K/hf", true);
  EXPECT_EQ(other.code, 2);
  EXPECT_NE(other.out.find("another model"), std::string::npos) << other.out;
}

// measure --plan applies every method the plan names, with the calibration
// file's statistics: GPTQ's and AWQ's output error below RTN's on the same grid.
TEST_F(Cli, MeasurePlanAppliesEveryMethod) {
  const std::string shared = QS_SHARED_DIR;
  if (!std::filesystem::exists(shared + "/models")) GTEST_SKIP() << "../shared/models is absent (fresh clone)";
  const std::string model = shared + "/models/stories260K/gguf/stories260K-f32.gguf";
  const auto calib = dir_ / "e.qscalib.h5";
  ASSERT_EQ(run("calibrate --seqs 8 --ctx 128 -o " + calib.string() + " --text " + shared +
                "/models/stories260K/eval/tiny_stories_eval.txt " + model).code, 0);
  std::map<std::string, double> mean_error;
  for (const char* method : {"rtn", "clip", "gptq", "awq", "outliers", "smoothquant"}) {
    const auto plan = dir_ / (std::string(method) + ".json");
    // int4-g32, and per channel on the 172-wide down rows (no group of 32 divides them).
    std::ofstream(plan) << R"({"version":1,"default":{"format":"int4-g32","method":")" << method
                        << R"("},"overrides":[{"match":{"role":"down"},"format":"int4-ch"}]})";
    const CliRun r = run("measure --json --plan " + plan.string() + " --calib-file " + calib.string() + " " + model);
    ASSERT_EQ(r.code, 0) << method << ": " << r.out;
    const auto j = nlohmann::json::parse(r.out);
    double sum = 0;
    int n = 0;
    for (const auto& l : j["layers"]) {
      ASSERT_FALSE(l.contains("skipped")) << method << ": " << l.dump();
      if (!l.contains("rel_output_error")) continue;  // the embedding and the head read no captured input
      sum += l["rel_output_error"].get<double>();
      ++n;
    }
    ASSERT_EQ(n, 35) << method;
    mean_error[method] = sum / n;
    std::printf("  int4-g32 %-11s mean relative output error %.5f\n", method, mean_error[method]);
  }
  EXPECT_LT(mean_error["gptq"], 0.8 * mean_error["rtn"]);
  EXPECT_LT(mean_error["awq"], mean_error["rtn"]);
  EXPECT_LT(mean_error["clip"], mean_error["rtn"]);
  EXPECT_LT(mean_error["outliers"], mean_error["rtn"]);
  EXPECT_EQ(mean_error["smoothquant"], mean_error["rtn"]);  // its weight side is the format on W
}

// export -f gptq --plan follows the plan: its grid and method, its kept layers
// excluded; the same file as the flags that say the same; what a GPTQ
// checkpoint cannot hold (mixed grids), a plan with flags, a gptq plan without
// calibration, and an export that would quantize nothing are refused.
TEST_F(Cli, GptqExportFollowsThePlan) {
  const std::string shared = QS_SHARED_DIR;
  if (!std::filesystem::exists(shared + "/models")) GTEST_SKIP() << "../shared/models is absent (fresh clone)";
  const std::string model = shared + "/models/stories260K/hf";
  const auto write = [&](const std::string& name, const std::string& json) {
    std::ofstream(dir_ / name) << json;
    return (dir_ / name).string();
  };
  const std::string uniform = write("g32.json", R"({"version":1,"default":{"format":"int4-g32-sym","method":"rtn"}})");
  ASSERT_EQ(run("export -f gptq --plan " + uniform + " -o " + (dir_ / "by-plan").string() + " " + model).code, 0);
  ASSERT_EQ(run("export -f gptq --bits 4 --group 32 -o " + (dir_ / "by-flags").string() + " " + model).code, 0);
  const std::string by_plan = qs::test::file_bytes(dir_ / "by-plan" / "model.safetensors");
  EXPECT_GT(by_plan.size(), 100000u);
  EXPECT_TRUE(by_plan == qs::test::file_bytes(dir_ / "by-flags" / "model.safetensors"));

  const std::string keep_v = write("keep-v.json", R"({"version":1,"default":{"format":"int4-g32-sym","method":"rtn"},
      "overrides":[{"match":{"role":"v"},"format":"f16"}]})");
  const CliRun kept = run("export --json -f gptq --plan " + keep_v + " -o " + (dir_ / "keep-v").string() + " " + model);
  ASSERT_EQ(kept.code, 0) << kept.out;
  int quantized = 0, kept_v = 0;
  const auto kj = nlohmann::json::parse(kept.out);  // (a temporary's member would die before the loop)
  // The file's account: int4-g32 (4.5 bits) on 15 of the 64x64 attention layers, the rest F16.
  ASSERT_TRUE(kj.contains("bits_per_weight")) << kept.out;
  EXPECT_GT(kj["bits_per_weight"].get<double>(), 4.5);
  EXPECT_LT(kj["bits_per_weight"].get<double>(), 16.0);
  for (const auto& l : kj["layers"]) {
    quantized += l["quantized"].get<bool>();
    if (l["name"].get<std::string>().find("v_proj") != std::string::npos) {
      EXPECT_FALSE(l["quantized"].get<bool>());
      kept_v += l["reason"] == "kept by the plan";
    }
  }
  EXPECT_EQ(quantized, 15);  // q, k, o of 5 blocks (the 172-wide MLP never fits 4-bit packing)
  EXPECT_EQ(kept_v, 5);

  const std::string mixed = write("mixed.json", R"({"version":1,"default":{"format":"int4-g32-sym","method":"rtn"},
      "overrides":[{"match":{"role":"q"},"format":"int8-g32-sym"}]})");
  CliRun r = run("export -f gptq --plan " + mixed + " -o " + (dir_ / "mixed").string() + " " + model, true);
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.out.find("one grid and method"), std::string::npos) << r.out;
  r = run("export -f gptq --plan " + uniform + " --bits 8 -o " + (dir_ / "flags").string() + " " + model, true);
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.out.find("--plan sets the GPTQ grid"), std::string::npos) << r.out;
  const std::string gptq = write("gptq.json", R"({"version":1,"default":{"format":"int4-g32","method":"gptq"}})");
  r = run("export -f gptq --plan " + gptq + " -o " + (dir_ / "nocalib").string() + " " + model, true);
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.out.find("needs calibration"), std::string::npos) << r.out;
  const std::string awq = write("awq.json", R"({"version":1,"default":{"format":"int4-g32","method":"awq"}})");
  r = run("export -f gptq --plan " + awq + " -o " + (dir_ / "awq").string() + " " + model, true);
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.out.find("not applied by gptq"), std::string::npos) << r.out;
  // Groups of 128 fit no layer of stories260K (64 and 172 inputs): refused, nothing written.
  r = run("export -f gptq --group 128 -o " + (dir_ / "none").string() + " " + model, true);
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.out.find("nothing would be quantized"), std::string::npos) << r.out;
  for (const char* d : {"mixed", "flags", "nocalib", "awq", "none"}) EXPECT_FALSE(std::filesystem::exists(dir_ / d)) << d;
}

// plan --target gptq: the account of the GPTQ checkpoint a preset makes, model.safetensors
// to the byte (RTN writes the same bytes' worth as GPTQ); budgets and unbuilt targets refused.
TEST_F(Cli, PlanTargetGptqIsTheCheckpointItMakes) {
  const CliRun p = run("plan --json --preset gptq-w4g128 --target gptq " + dir_.string());
  ASSERT_EQ(p.code, 0) << p.out;
  const auto pj = nlohmann::json::parse(p.out);
  EXPECT_EQ(pj["target"], "gptq");
  const auto out = dir_ / "target-gptq";
  ASSERT_EQ(run("export -f gptq --bits 4 --group 128 --asym -o " + out.string() + " " + dir_.string()).code, 0);
  EXPECT_EQ(pj["bytes"].get<std::uint64_t>(), std::filesystem::file_size(out / "model.safetensors"));
  EXPECT_GT(pj["bits_per_weight"].get<double>(), 4.0);
  EXPECT_LT(pj["bits_per_weight"].get<double>(), 16.0);
  CliRun r = run("plan --budget 6 --target gptq " + dir_.string(), true);
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.out.find("one grid"), std::string::npos) << r.out;
  r = run("plan --preset q8_0 --target hdf5 " + dir_.string(), true);
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.out.find("not built yet"), std::string::npos) << r.out;
}

// Methods as allocation candidates: with a calibration file the allocation may
// choose q4_0 by GPTQ or AWQ where that lowers the output error, and meets the
// same budget with a smaller summed relative output error than formats alone.
TEST_F(Cli, BudgetAllocationTakesMethodsAsCandidates) {
  const std::string shared = QS_SHARED_DIR;
  if (!std::filesystem::exists(shared + "/models")) GTEST_SKIP() << "../shared/models is absent (fresh clone)";
  const std::string model = shared + "/models/stories260K/gguf/stories260K-f32.gguf";
  const auto calib = dir_ / "alloc.qscalib.h5";
  ASSERT_EQ(run("calibrate --seqs 8 --ctx 128 -o " + calib.string() + " --text " + shared +
                "/models/stories260K/eval/tiny_stories_eval.txt " + model).code, 0);
  const auto allocate = [&](const std::string& candidates) {
    const CliRun r = run("plan --json --budget 7.2 --candidates '" + candidates + "' --calib-file " + calib.string() + " " + model);
    EXPECT_EQ(r.code, 0) << r.out;
    return nlohmann::json::parse(r.code == 0 ? r.out : "{}");
  };
  const auto formats = allocate("q4_0,q5_0,q8_0");
  const auto methods = allocate("q4_0,q4_0+gptq,q5_0,q5_0+clip,q8_0");
  ASSERT_TRUE(formats.contains("squared_error") && methods.contains("squared_error"));
  std::printf("  budget 7.2 bits/weight: summed relative output error %.5f with formats, %.5f with methods\n",
              formats["squared_error"].get<double>(), methods["squared_error"].get<double>());
  EXPECT_LT(methods["squared_error"].get<double>(), 0.9 * formats["squared_error"].get<double>());
  EXPECT_LE(methods["bits_per_weight"].get<double>(), 7.2 + 1e-9);
  int gptq = 0;
  for (const auto& l : methods["layers"]) gptq += l["method"] == "gptq";
  EXPECT_GT(gptq, 0) << methods.dump();
  EXPECT_EQ(methods["target"], "gguf");  // GGUF applies gptq and clip: the budget is over its file
  // gptq candidates without a calibration file are refused by name.
  const CliRun r = run("plan --budget 7.2 --candidates q4_0+gptq " + model, true);
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.out.find("needs calibration statistics"), std::string::npos) << r.out;
}

// plan --budget allocates over every weight the GGUF file holds, and the file
// exported from the plan has exactly the bytes and bits/weight plan predicted.
TEST_F(Cli, BudgetPlanIsTheFileItExports) {
  const std::string shared = QS_SHARED_DIR;
  if (!std::filesystem::exists(shared + "/models")) GTEST_SKIP() << "../shared/models is absent (fresh clone)";
  const std::string model = shared + "/models/stories260K/hf";
  for (const double budget : {6.75, 7.0, 8.0}) {
    const auto plan = dir_ / "b.json";
    const CliRun p = run("plan --json --budget " + std::to_string(budget) + " --candidates q4_0,q4_k,q5_0,q5_k,q6_k,q8_0 -o " +
                         plan.string() + " " + model);
    ASSERT_EQ(p.code, 0) << p.out;
    const auto pj = nlohmann::json::parse(p.out);
    ASSERT_EQ(pj["target"], "gguf");
    const auto out = dir_ / "b.gguf";
    const CliRun e = run("export --json --plan " + plan.string() + " -o " + out.string() + " " + model);
    ASSERT_EQ(e.code, 0) << e.out;
    const auto ej = nlohmann::json::parse(e.out);
    std::printf("  budget %.1f: predicted %llu bytes, %.4f bits/weight; file %llu bytes, %.4f bits/weight\n", budget,
                pj["bytes"].get<unsigned long long>(), pj["bits_per_weight"].get<double>(),
                ej["bytes"].get<unsigned long long>(), ej["bits_per_weight"].get<double>());
    EXPECT_EQ(pj["bytes"].get<std::uint64_t>(), ej["bytes"].get<std::uint64_t>());
    EXPECT_EQ(std::filesystem::file_size(out), ej["bytes"].get<std::uint64_t>());
    EXPECT_DOUBLE_EQ(pj["bits_per_weight"].get<double>(), ej["bits_per_weight"].get<double>());
    EXPECT_LE(ej["bits_per_weight"].get<double>(), budget + 1e-9);
    std::filesystem::remove(out);
  }
  // Below what the file can be (norms in F32, 172-wide rows in F16): exit 2 naming the smallest
  // budget (6.7279 with these candidates on stories260K).
  const CliRun low = run("plan --budget 5 --candidates q4_0,q4_k,q5_0,q5_k,q6_k,q8_0 " + model, true);
  EXPECT_EQ(low.code, 2);
  EXPECT_NE(low.out.find("smallest budget these candidates can meet is 6.7279"), std::string::npos) << low.out;
}

}  // namespace

// --backend for the forward pass: the CPU on request; a device that cannot run
// falls back to the CPU with the reason on stderr (same perplexity); an
// unknown name is refused.
TEST_F(Cli, PerplexityBackendChoiceAndFallback) {
  const std::string shared = QS_SHARED_DIR;
  if (!std::filesystem::exists(shared + "/models")) GTEST_SKIP() << "../shared/models is absent (fresh clone)";
  const std::string args = " --chunks 2 --text " + shared + "/models/stories260K/eval/tiny_stories_eval.txt " + shared +
                           "/models/stories260K/gguf/stories260K-f32.gguf";
  const CliRun cpu = run("perplexity --json --backend cpu" + args);
  ASSERT_EQ(cpu.code, 0) << cpu.out;
  const auto jc = nlohmann::json::parse(cpu.out);
  EXPECT_EQ(jc["backend"].get<std::string>().rfind("CPU (", 0), 0u) << jc["backend"];
  const CliRun cuda = run("perplexity --backend cuda" + args, true);
  ASSERT_EQ(cuda.code, 0) << cuda.out;
  if (cuda.out.find("CUDA (") == std::string::npos) {  // no usable device here
    EXPECT_NE(cuda.out.find("quantscope-cli: forward pass on the CPU: "), std::string::npos) << cuda.out;
  }
  char want[64];
  std::snprintf(want, sizeof want, "perplexity: %.4f", jc["perplexity"].get<double>());
  EXPECT_NE(cuda.out.find(want), std::string::npos) << cuda.out;
  const CliRun bad = run("eval --backend tpu" + args, true);
  EXPECT_EQ(bad.code, 2);
  EXPECT_NE(bad.out.find("unknown backend \"tpu\""), std::string::npos) << bad.out;
  // calibrate takes the same choice and says where its forward pass ran.
  const std::string out = (std::filesystem::path(::testing::TempDir()) / "backend.qscalib.h5").string();
  const std::string cal = " --seqs 2 --ctx 32 -o " + out + " --text " + shared + "/models/stories260K/eval/tiny_stories_eval.txt " +
                          shared + "/models/stories260K/gguf/stories260K-f32.gguf";
  const CliRun ccpu = run("calibrate --json --backend cpu" + cal);
  ASSERT_EQ(ccpu.code, 0) << ccpu.out;
  EXPECT_EQ(nlohmann::json::parse(ccpu.out)["backend"].get<std::string>().rfind("CPU (", 0), 0u) << ccpu.out;
  const CliRun cbad = run("calibrate --backend tpu" + cal, true);
  EXPECT_EQ(cbad.code, 2);
  EXPECT_NE(cbad.out.find("unknown backend \"tpu\""), std::string::npos) << cbad.out;
  std::filesystem::remove(out);
}
