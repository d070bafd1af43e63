// quantscope-cli and llama.cpp's GGUF tools: export byte-identical to
// llama-quantize (with and without an importance matrix), calibrate
// --imatrix against llama-imatrix, compare against llama-perplexity.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <nlohmann/json.hpp>

#include "cli_run.h"
#include "io/gguf.h"
#include "io/imatrix_file.h"

namespace {

using qs::test::Cli;
using qs::test::CliRun;
using qs::test::run;

TEST_F(Cli, ExportWritesWhatLlamaQuantizeWritesAndRefusesBadTypes) {
  const std::string shared = QS_SHARED_DIR;
  if (!std::filesystem::exists(shared + "/models")) GTEST_SKIP() << "../shared/models is absent (fresh clone)";
  const std::string gguf = shared + "/models/stories260K/gguf/";
  const auto out = dir_ / "q6.gguf";
  const CliRun r = run("export --json -t q6_k -o " + out.string() + " " + gguf + "stories260K-f32.gguf");
  ASSERT_EQ(r.code, 0) << r.out;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["file_type"], "Q6_K");
  EXPECT_EQ(j["verified"], true);
  EXPECT_EQ(j["bytes"].get<std::uint64_t>(), std::filesystem::file_size(out));
  EXPECT_EQ(std::filesystem::file_size(out), std::filesystem::file_size(gguf + "stories260K-Q6_K.gguf"));
  int q8 = 0, f16 = 0;
  for (const auto& t : j["tensors"]) {
    q8 += t["to"] == "Q8_0";
    f16 += t["to"] == "F16";
  }
  EXPECT_EQ(q8, 32);  // ../shared/models/README.md: what llama-quantize wrote for Q6_K
  EXPECT_EQ(f16, 5);
  const CliRun bad = run("export -t q9_k -o " + (dir_ / "x.gguf").string() + " " + gguf + "stories260K-f32.gguf", true);
  EXPECT_EQ(bad.code, 2);
  EXPECT_NE(bad.out.find("unknown file type 'q9_k'"), std::string::npos) << bad.out;
  EXPECT_FALSE(std::filesystem::exists(dir_ / "x.gguf"));
}

// llama-quantize --imatrix, file for file: run where llama.cpp ran (the
// matrix named "imatrix.dat", as it records it in the file's metadata), the
// whole file is byte-identical, header included.
TEST_F(Cli, ExportWithAnImportanceMatrixWritesLlamaQuantizesFile) {
  const std::string shared = QS_SHARED_DIR;
  if (!std::filesystem::exists(shared + "/models")) GTEST_SKIP() << "../shared/models is absent (fresh clone)";
  const std::string dir = shared + "/models/stories260K/imatrix";
  for (const std::string type : {"Q2_K", "Q3_K_M", "Q4_K_M"}) {
    const auto out = dir_ / ("imx-" + type + ".gguf");
    const std::string cmd = "cd " + dir + " && " + std::string(QS_CLI_PATH) + " export --json -t " + type +
                            " --imatrix imatrix.dat -o " + out.string() + " ../gguf/stories260K-f32.gguf";
    FILE* p = popen(cmd.c_str(), "r");
    ASSERT_NE(p, nullptr);
    std::string text;
    char buf[4096];
    std::size_t n;
    while ((n = fread(buf, 1, sizeof buf, p)) > 0) text.append(buf, n);
    ASSERT_EQ(pclose(p), 0) << text;
    const auto j = nlohmann::json::parse(text);
    int weighted = 0;
    for (const auto& t : j["tensors"]) weighted += t["note"].get<std::string>().find("importance matrix") != std::string::npos;
    EXPECT_GT(weighted, 0) << type;
    std::ifstream a(out, std::ios::binary), b(dir + "/stories260K-imx-" + type + ".gguf", std::ios::binary);
    const std::string ours((std::istreambuf_iterator<char>(a)), {}), theirs((std::istreambuf_iterator<char>(b)), {});
    EXPECT_EQ(ours.size(), theirs.size()) << type;
    EXPECT_TRUE(ours == theirs) << type << ": not llama-quantize's file";
  }
  // A matrix that is not one is refused with the file named, before anything is written.
  const auto bogus = dir_ / "bogus.dat";
  std::ofstream(bogus) << "not an importance matrix";
  const CliRun bad = run("export -t q4_k_m --imatrix " + bogus.string() + " -o " + (dir_ / "y.gguf").string() + " " +
                             shared + "/models/stories260K/gguf/stories260K-f32.gguf", true);
  EXPECT_EQ(bad.code, 2);
  EXPECT_NE(bad.out.find("bogus.dat"), std::string::npos) << bad.out;
  EXPECT_FALSE(std::filesystem::exists(dir_ / "y.gguf"));
  // With a plan it is refused: the plan's layers are written as `measure --plan` measures them.
  const auto plan = dir_ / "q4km-plan.json";
  ASSERT_EQ(run("plan --preset q4_k_m -o " + plan.string() + " " + shared + "/models/stories260K/gguf/stories260K-f32.gguf").code, 0);
  const CliRun planned = run("export --plan " + plan.string() + " --imatrix " + dir + "/imatrix.dat -o " +
                                 (dir_ / "p.gguf").string() + " " + shared + "/models/stories260K/gguf/stories260K-f32.gguf",
                             true);
  EXPECT_EQ(planned.code, 2);
  EXPECT_NE(planned.out.find("plans do not take an importance matrix yet"), std::string::npos) << planned.out;
  EXPECT_FALSE(std::filesystem::exists(dir_ / "p.gguf"));
  const CliRun gptq = run("export -f gptq --imatrix " + bogus.string() + " -o " + (dir_ / "g").string() + " " + dir_.string(), true);
  EXPECT_EQ(gptq.code, 2);
  EXPECT_NE(gptq.out.find("--imatrix are for -f gguf"), std::string::npos) << gptq.out;
}

// calibrate --imatrix: llama-imatrix's chunks of the text, its layout; the
// matrix names what llama-imatrix's names (35 matrices on stories260K), no
// calibration file is written beside the model, and the export takes it.
TEST_F(Cli, CalibrateWritesAnImportanceMatrixTheExportTakes) {
  const std::string shared = QS_SHARED_DIR;
  if (!std::filesystem::exists(shared + "/models")) GTEST_SKIP() << "../shared/models is absent (fresh clone)";
  const std::string base = shared + "/models/stories260K/";
  const auto dat = dir_ / "ours.dat";
  const CliRun r = run("calibrate --json --ctx 256 --seqs 1000 --backend cpu --text " + base + "eval/tiny_stories_eval.txt" +
                       " --imatrix " + dat.string() + " " + base + "gguf/stories260K-f32.gguf");
  ASSERT_EQ(r.code, 0) << r.out;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["imatrix_entries"], 35);
  EXPECT_EQ(j["output"], "");
  EXPECT_EQ(j["sequences"], 8);  // llama-imatrix -c 256 made 8 chunks of this text
  auto ours = qs::read_imatrix(dat.string());
  auto theirs = qs::read_imatrix(base + "imatrix/imatrix.dat");
  ASSERT_TRUE(ours.ok() && theirs.ok());
  EXPECT_EQ(ours->columns.size(), theirs->columns.size());
  EXPECT_EQ(ours->chunks, theirs->chunks);
  for (const auto& [name, v] : theirs->columns) {
    ASSERT_TRUE(ours->find(name)) << name;
    EXPECT_EQ(ours->find(name)->size(), v.size()) << name;
  }
  const auto out = dir_ / "ours-q4km.gguf";
  const CliRun e = run("export --json -t q4_k_m --imatrix " + dat.string() + " -o " + out.string() + " " + base +
                       "gguf/stories260K-f32.gguf");
  ASSERT_EQ(e.code, 0) << e.out;
  // llama-quantize's tensor types, and the matrix recorded as llama-quantize records it.
  auto mine = qs::read_gguf(out.string());
  auto ref = qs::read_gguf(base + "imatrix/stories260K-imx-Q4_K_M.gguf");
  ASSERT_TRUE(mine.ok() && ref.ok());
  ASSERT_EQ(mine->tensors.size(), ref->tensors.size());
  for (std::size_t i = 0; i < ref->tensors.size(); ++i) EXPECT_EQ(mine->tensors[i].dtype, ref->tensors[i].dtype) << ref->tensors[i].name;
  ASSERT_NE(mine->find("quantize.imatrix.entries_count"), nullptr);
  EXPECT_EQ(mine->find("quantize.imatrix.entries_count")->as_int(), 35);
  EXPECT_EQ(mine->find("quantize.imatrix.chunks_count")->as_int(), 8);
  EXPECT_EQ(*mine->find("quantize.imatrix.file")->as_string(), dat.string());
}

// compare: llama-quantize's files against the F32 model on the text of
// ../shared/models/stories260K/imatrix/README.md; the perplexities are the
// ones llama-perplexity printed for those files (README), within 0.1 %.
TEST_F(Cli, CompareGivesEachFilesSizePerplexityAndKld) {
  const std::string shared = QS_SHARED_DIR;
  if (!std::filesystem::exists(shared + "/models")) GTEST_SKIP() << "../shared/models is absent (fresh clone)";
  const std::string s = shared + "/models/stories260K/";
  const CliRun r = run("compare --json --backend cpu --text " + s + "eval/tiny_stories_eval.txt " + s +
                       "gguf/stories260K-f32.gguf " + s + "imatrix/stories260K-imx-Q4_K_M.gguf " + s +
                       "imatrix/stories260K-imx-Q2_K.gguf " + s + "gguf/stories260K-Q4_K_M.gguf " + s +
                       "imatrix/stories260K-imx-Q3_K_M.gguf");
  ASSERT_EQ(r.code, 0) << r.out;
  const auto j = nlohmann::json::parse(r.out);
  ASSERT_EQ(j["files"].size(), 4u);
  // llama-perplexity -c 256 (imatrix/README.md and ../README.md).
  const std::map<std::string, double> llama = {{"stories260K-imx-Q4_K_M.gguf", 4.7787}, {"stories260K-imx-Q3_K_M.gguf", 4.8487},
                                               {"stories260K-imx-Q2_K.gguf", 4.8359}, {"stories260K-Q4_K_M.gguf", 4.8044}};
  std::uint64_t last = 0;
  std::map<std::string, double> kld;
  for (const auto& f : j["files"]) {
    const std::string name = std::filesystem::path(f["file"].get<std::string>()).filename().string();
    EXPECT_GE(f["bytes"].get<std::uint64_t>(), last) << "rows are sorted by size";
    last = f["bytes"].get<std::uint64_t>();
    EXPECT_EQ(last, std::filesystem::file_size(f["file"].get<std::string>()));
    EXPECT_NEAR(f["perplexity"].get<double>(), llama.at(name), 1e-3 * llama.at(name)) << name;
    kld[name] = f["mean_kld"].get<double>();
    EXPECT_GT(f["same_top_token"].get<double>(), 0.85) << name;
    EXPECT_LT(f["same_top_token"].get<double>(), 1.0) << name;
  }
  // More bits, less divergence; the importance matrix helps at equal size.
  EXPECT_LT(kld["stories260K-imx-Q4_K_M.gguf"], kld["stories260K-Q4_K_M.gguf"]);
  EXPECT_LT(kld["stories260K-Q4_K_M.gguf"], kld["stories260K-imx-Q3_K_M.gguf"]);
  EXPECT_LT(kld["stories260K-imx-Q3_K_M.gguf"], kld["stories260K-imx-Q2_K.gguf"]);
  EXPECT_NEAR(j["reference_perplexity"].get<double>(), 4.6576, 1e-3 * 4.6576);  // ../shared/models/README.md, f32
}

}  // namespace
