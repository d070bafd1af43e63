// Importance matrices (io/imatrix_file.h, calib/importance_matrix.h): reading
// llama.cpp's files (the legacy binary layout and the GGUF one), writing ours
// in the layout llama-quantize reads, refusing hostile files with the file and
// the problem named, and ours from a calibration run against llama-imatrix's
// own matrix for stories260K.
#include <gtest/gtest.h>

#include <sys/stat.h>

#include <cmath>
#include <cstring>
#include <string>

#include "calib/calibrate.h"
#include "calib/importance_matrix.h"
#include "gguf_builder.h"
#include "io/gguf.h"
#include "io/imatrix_file.h"
#include "io/open_model.h"
#include "test_files.h"

namespace {

std::string i32(std::int32_t v) { return std::string(reinterpret_cast<const char*>(&v), 4); }
std::string f32(float v) { return std::string(reinterpret_cast<const char*>(&v), 4); }

// A legacy file: entries (name, ncall, values), then chunk count and dataset.
std::string legacy(const std::vector<std::tuple<std::string, int, std::vector<float>>>& entries, bool trailer = true) {
  std::string b = i32(static_cast<std::int32_t>(entries.size()));
  for (const auto& [name, ncall, v] : entries) {
    b += i32(static_cast<std::int32_t>(name.size())) + name + i32(ncall) + i32(static_cast<std::int32_t>(v.size()));
    for (float x : v) b += f32(x);
  }
  if (trailer) b += i32(4) + i32(9) + "text.txt!";
  return b;
}

TEST(ImportanceMatrixFile, ReadsTheCaseFileOneEntryPerWeightMatrix) {
  QS_REQUIRE_SHARED();
  const std::string dir = shared + "/cases/ggml-quants/";
  auto m = qs::read_imatrix(dir + "imatrix.dat");
  ASSERT_TRUE(m.ok()) << m.error().message;
  auto model = qs::read_gguf(dir + "model-f16.gguf");
  ASSERT_TRUE(model.ok());
  std::size_t matrices = 0;
  for (const auto& t : model->tensors) {
    if (t.shape.size() != 2) continue;
    ++matrices;
    const auto* v = m->find(t.name);
    ASSERT_NE(v, nullptr) << t.name;
    EXPECT_EQ(static_cast<std::int64_t>(v->size()), t.shape.back()) << t.name;  // one value per input column
    for (float x : *v) EXPECT_TRUE(std::isfinite(x) && x > 0) << t.name;
  }
  EXPECT_EQ(m->columns.size(), matrices);
}

TEST(ImportanceMatrixFile, ValuesAreDividedByTheirCallCountAsLlamaQuantizeDoes) {
  qs::test::TempDir tmp;
  qs::test::write_bytes(tmp.file("a.dat"), legacy({{"blk.0.attn_q.weight", 4, {8.0f, 2.0f, 0.0f, 1.0f}}}));
  auto m = qs::read_imatrix(tmp.file("a.dat"));
  ASSERT_TRUE(m.ok()) << m.error().message;
  EXPECT_EQ(*m->find("blk.0.attn_q.weight"), (std::vector<float>{2.0f, 0.5f, 0.0f, 0.25f}));
  EXPECT_EQ(m->dataset, "text.txt!");
  EXPECT_EQ(m->chunks, 4);
  // Older files stop after the entries.
  qs::test::write_bytes(tmp.file("b.dat"), legacy({{"w", 1, {3.0f}}}, false));
  auto old = qs::read_imatrix(tmp.file("b.dat"));
  ASSERT_TRUE(old.ok()) << old.error().message;
  EXPECT_EQ(*old->find("w"), std::vector<float>{3.0f});
}

TEST(ImportanceMatrixFile, WritesWhatItReadsBack) {
  qs::test::TempDir tmp;
  qs::ImportanceMatrix m;
  m.chunks = 8;  // a power of two: mean x 8 / 8 is exact
  m.dataset = "eval.txt";
  m.columns["blk.0.ffn_down.weight"] = {0.125f, 3.5f, 1e-7f};
  m.columns["blk.0.attn_k.weight"] = {2.0f};
  ASSERT_TRUE(qs::write_imatrix(tmp.file("m.dat"), m).ok());
  auto back = qs::read_imatrix(tmp.file("m.dat"));
  ASSERT_TRUE(back.ok()) << back.error().message;
  EXPECT_EQ(back->columns, m.columns);
  EXPECT_EQ(back->chunks, 8);
  EXPECT_EQ(back->dataset, "eval.txt");
  // Byte layout: count, then the first entry (std::map order: attn_k) as llama-imatrix writes it.
  const std::string bytes = qs::test::read_bytes(tmp.file("m.dat"));
  const std::string attn_k = "blk.0.attn_k.weight";
  EXPECT_EQ(bytes.substr(0, 4 + 4 + attn_k.size() + 12), i32(2) + i32(19) + attn_k + i32(8) + i32(1) + f32(16.0f));
  m.columns["bad"] = {NAN};
  EXPECT_FALSE(qs::write_imatrix(tmp.file("n.dat"), m).ok());
  EXPECT_FALSE(std::filesystem::exists(tmp.file("n.dat")));  // nothing half-written
}

TEST(ImportanceMatrixFile, HostileFilesAreErrorsNamingTheFile) {
  qs::test::TempDir tmp;
  const std::string good = legacy({{"blk.0.attn_q.weight", 1, {1.0f, 2.0f}}, {"blk.0.attn_k.weight", 1, {3.0f}}});
  // Every truncation (except the optional trailer cut at its start) is refused, with the file named.
  for (std::size_t n = 0; n < good.size(); ++n) {
    if (n == good.size() - 17) continue;  // entries complete, no trailer: an older file
    qs::test::write_bytes(tmp.file("t.dat"), good.substr(0, n));
    auto m = qs::read_imatrix(tmp.file("t.dat"));
    ASSERT_FALSE(m.ok()) << "accepted a file cut at byte " << n;
    EXPECT_NE(m.error().message.find("t.dat"), std::string::npos) << m.error().message;
  }
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"lying entry count", i32(1 << 30) + good.substr(4)},
      {"negative entry count", i32(-1) + good.substr(4)},
      {"huge value count", i32(1) + i32(1) + "w" + i32(1) + i32(0x7fffffff) + f32(1)},
      {"huge name length", i32(1) + i32(1 << 30) + "w"},
      {"negative value", legacy({{"w", 1, {-1.0f}}})},
      {"nan value", legacy({{"w", 1, {NAN}}})},
      {"duplicate entry", legacy({{"w", 1, {1.0f}}, {"w", 1, {1.0f}}})},
      {"trailing bytes", good + "xyz"},
  };
  for (const auto& [what, bytes] : cases) {
    qs::test::write_bytes(tmp.file("h.dat"), bytes);
    auto m = qs::read_imatrix(tmp.file("h.dat"));
    ASSERT_FALSE(m.ok()) << what;
    EXPECT_NE(m.error().message.find("h.dat"), std::string::npos) << what << ": " << m.error().message;
  }
  ASSERT_EQ(::mkfifo(tmp.file("fifo").c_str(), 0600), 0);
  auto fifo = qs::read_imatrix(tmp.file("fifo"));  // refused without opening for read (which would block)
  ASSERT_FALSE(fifo.ok());
  EXPECT_FALSE(qs::read_imatrix(tmp.file("missing.dat")).ok());
}

TEST(ImportanceMatrixFile, ReadsTheGgufLayoutAsSumsOverCounts) {
  // Newer llama-imatrix: "<name>.in_sum2" (F32 [cols]) and "<name>.counts" (F32 [1]).
  qs::test::GgufBuilder g;
  g.counts(2, 1).kv_u32("imatrix.chunk_count", 5);
  g.tensor("blk.0.attn_q.weight.in_sum2", {3, 1}, 0, 0).tensor("blk.0.attn_q.weight.counts", {1, 1}, 0, 32);
  g.align();
  g.pod(10.0f).pod(4.0f).pod(0.0f).zeros(20);
  g.pod(4.0f).zeros(28);
  qs::test::TempDir tmp;
  qs::test::write_bytes(tmp.file("m.gguf"), g.bytes());
  auto m = qs::read_imatrix(tmp.file("m.gguf"));
  ASSERT_TRUE(m.ok()) << m.error().message;
  EXPECT_EQ(*m->find("blk.0.attn_q.weight"), (std::vector<float>{2.5f, 1.0f, 0.0f}));
  EXPECT_EQ(m->chunks, 5);
}

// Ours from a calibration run on the text and chunks llama-imatrix used
// (-c 256 over tiny_stories_eval.txt, 8 chunks) against its imatrix.dat: the
// same mean x^2 per column, up to the two forward passes' float rounding.
TEST(ImportanceMatrixFromCalibration, MatchesLlamaImatrixOnStories260K) {
  QS_REQUIRE_SHARED();
  const std::string base = shared + "/models/stories260K/";
  auto theirs = qs::read_imatrix(base + "imatrix/imatrix.dat");
  ASSERT_TRUE(theirs.ok()) << theirs.error().message;
  auto model = qs::open_model(base + "gguf/stories260K-f32.gguf");
  ASSERT_TRUE(model.ok()) << model.error().message;
  qs::CalibrationSettings set;
  set.text_files = {base + "eval/tiny_stories_eval.txt"};
  set.sequences = 1000;  // all the chunks there are
  set.seq_len = 256;
  set.consecutive = true;
  set.capture.hessians = false;
  auto run = qs::calibrate(*model, set);
  ASSERT_TRUE(run.ok()) << run.error().message;
  EXPECT_EQ(run->capture.sequences, theirs->chunks);
  const qs::ImportanceMatrix ours = qs::importance_matrix_of(run->capture, "tiny_stories_eval.txt");
  std::size_t compared = 0, values = 0;
  double worst = 0, sum = 0;
  for (const auto& [name, v] : theirs->columns) {
    const auto* mine = ours.find(name);
    if (!mine) {
      ADD_FAILURE() << name << " is in llama-imatrix's matrix but not in ours";
      continue;
    }
    ASSERT_EQ(mine->size(), v.size()) << name;
    for (std::size_t i = 0; i < v.size(); ++i) {
      const double rel = std::fabs((*mine)[i] - v[i]) / std::max(1e-12, static_cast<double>(v[i]));
      worst = std::max(worst, rel);
      sum += rel;
      ++values;
    }
    ++compared;
  }
  std::printf("compared %zu matrices, %zu values; relative difference mean %.3g, worst %.3g\n", compared, values,
              sum / static_cast<double>(values), worst);
  EXPECT_EQ(compared, theirs->columns.size());
  EXPECT_LT(worst, 2e-3);  // measured 1.06e-3: the two forward passes round differently
  EXPECT_LT(sum / static_cast<double>(values), 2e-4);  // measured 6.95e-5
  for (const auto& [name, v] : ours.columns) EXPECT_TRUE(theirs->find(name)) << name << " is ours only";
}

}  // namespace
