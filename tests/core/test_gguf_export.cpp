// GGUF export against llama-quantize itself: from the F32 stories260K file,
// each file type must give the very file llama.cpp (b4748) wrote, byte for
// byte; plus the per-tensor type rules on a 32-block model, and the refusals.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <span>
#include <filesystem>
#include <map>
#include <set>
#include <unistd.h>

#include "demo/demo_model.h"
#include "export/gguf_export.h"
#include "export/gguf_source.h"
#include "export/gguf_writer.h"
#include "export/spm_vocab.h"
#include "io/gguf.h"
#include "io/open_model.h"
#include "model/convert.h"
#include "quant/ggml_quantize.h"
#include "quant/llama_ftype.h"
#include "quant/plan.h"
#include "test_files.h"
#include "util/atomic_file.h"
#include "util/disk_space.h"
#include "util/half.h"

namespace {

namespace fs = std::filesystem;

fs::path fresh_dir(const std::string& name) {
  const fs::path dir = fs::temp_directory_path() / ("qs_export_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

struct FileType {
  const char* ftype;
  const char* file;
};

class LlamaQuantizeFiles : public ::testing::TestWithParam<FileType> {};

TEST_P(LlamaQuantizeFiles, ExportIsByteIdenticalToLlamaQuantize) {
  QS_REQUIRE_SHARED();
  const auto ftype = qs::parse_llama_ftype(GetParam().ftype);
  ASSERT_TRUE(ftype);
  if (!qs::ggml_quantize_supported(qs::DType::IQ4_NL) && (*ftype == qs::LlamaFtype::Q3_K_M || *ftype == qs::LlamaFtype::Q2_K))
    GTEST_SKIP() << "this file type falls back to IQ4_NL on stories260K, and the IQ4_NL quantizer is not built";
  const std::string gguf = shared + "/models/stories260K/gguf/";
  auto model = qs::open_model(gguf + "stories260K-f32.gguf");
  ASSERT_TRUE(model.ok()) << model.error().message;
  const fs::path dir = fresh_dir(GetParam().ftype);
  const std::string out = (dir / "out.gguf").string();
  auto report = qs::export_gguf(*model, out, {*ftype}, qs::OpContext::none());
  ASSERT_TRUE(report.ok()) << report.error().message;

  const std::string ours = qs::test::read_bytes(out);
  const std::string theirs = qs::test::read_bytes(gguf + GetParam().file);
  EXPECT_EQ(report->bytes, ours.size());
  ASSERT_EQ(ours.size(), theirs.size());
  std::size_t first_diff = ours.size();
  for (std::size_t i = 0; i < ours.size() && first_diff == ours.size(); ++i)
    if (ours[i] != theirs[i]) first_diff = i;
  EXPECT_EQ(first_diff, ours.size()) << "first differing byte at " << first_diff;

  // Our reader takes it back, with the types the report states.
  auto back = qs::read_gguf(out);
  ASSERT_TRUE(back.ok()) << back.error().message;
  ASSERT_EQ(back->tensors.size(), report->tensors.size());
  for (std::size_t i = 0; i < back->tensors.size(); ++i) {
    EXPECT_EQ(back->tensors[i].name, report->tensors[i].name);
    EXPECT_EQ(back->tensors[i].dtype, report->tensors[i].to);
  }
  const auto* ft = back->find("general.file_type");
  ASSERT_NE(ft, nullptr);
  EXPECT_EQ(ft->as_int(), static_cast<std::int64_t>(*ftype));
  fs::remove_all(dir);
}

// The C-written llama-quantize outputs (docs: ../shared/models/README.md).
INSTANTIATE_TEST_SUITE_P(Stories260K, LlamaQuantizeFiles,
                         ::testing::Values(FileType{"Q6_K", "stories260K-Q6_K.gguf"},
                                           FileType{"Q5_K_M", "stories260K-Q5_K_M.gguf"},
                                           FileType{"Q4_K_M", "stories260K-Q4_K_M.gguf"},
                                           FileType{"Q3_K_M", "stories260K-Q3_K_M.gguf"},
                                           FileType{"Q2_K", "stories260K-Q2_K.gguf"}),
                         [](const ::testing::TestParamInfo<FileType>& p) { return std::string(p.param.ftype); });

// A Llama-7B-shaped tensor list (32 blocks, 4096 wide, 11008 FFN): Q4_K_M
// gives attn_v and ffn_down Q6_K in the first and last eighth and every third
// block between (llama.cpp's use_more_bits), the output Q6_K, the rest Q4_K.
TEST(LlamaFtype, Q4KMGivesMoreBitsWhereLlamaCppDoes) {
  std::vector<qs::FtypeTensor> tensors;
  tensors.push_back({"output.weight", {32000, 4096}, qs::DType::F16});
  tensors.push_back({"output_norm.weight", {4096}, qs::DType::F32});
  tensors.push_back({"token_embd.weight", {32000, 4096}, qs::DType::F16});
  for (int b = 0; b < 32; ++b) {
    const std::string p = "blk." + std::to_string(b) + ".";
    tensors.push_back({p + "attn_norm.weight", {4096}, qs::DType::F32});
    tensors.push_back({p + "attn_q.weight", {4096, 4096}, qs::DType::F16});
    tensors.push_back({p + "attn_v.weight", {4096, 4096}, qs::DType::F16});
    tensors.push_back({p + "ffn_down.weight", {4096, 11008}, qs::DType::F16});
  }
  std::sort(tensors.begin(), tensors.end(), [](const auto& a, const auto& b) { return qs::llama_quantize_order(a.name, b.name); });
  const auto choices = qs::llama_ftype_choices(tensors, qs::LlamaFtype::Q4_K_M, {32, 32, 32});
  ASSERT_EQ(choices.size(), tensors.size());
  const std::set<int> more = {0, 1, 2, 3, 6, 9, 12, 15, 18, 21, 24, 27, 28, 29, 30, 31};
  std::map<std::string, qs::DType> got;
  for (std::size_t i = 0; i < tensors.size(); ++i) got[tensors[i].name] = choices[i].type;
  EXPECT_EQ(got["output.weight"], qs::DType::Q6_K);
  EXPECT_EQ(got["token_embd.weight"], qs::DType::Q4_K);
  EXPECT_EQ(got["output_norm.weight"], qs::DType::F32);
  for (int b = 0; b < 32; ++b) {
    const std::string p = "blk." + std::to_string(b) + ".";
    const auto want = more.count(b) ? qs::DType::Q6_K : qs::DType::Q4_K;
    EXPECT_EQ(got[p + "attn_v.weight"], want) << "block " << b;
    EXPECT_EQ(got[p + "attn_q.weight"], qs::DType::Q4_K) << "block " << b;
    EXPECT_EQ(got[p + "attn_norm.weight"], qs::DType::F32) << "block " << b;
  }
  for (int b = 0; b < 32; ++b) {
    const std::string name = "blk." + std::to_string(b) + ".ffn_down.weight";  // 11008 = 43 x 256: no fallback
    EXPECT_EQ(got[name], more.count(b) ? qs::DType::Q6_K : qs::DType::Q4_K) << name;
  }
  // Rows that are not whole super-blocks fall back: Q4_K -> Q5_0, Q6_K -> Q8_0, then F16.
  const std::vector<qs::FtypeTensor> odd = {{"blk.0.attn_q.weight", {64, 4000}, qs::DType::F32},
                                            {"blk.0.attn_v.weight", {64, 4000}, qs::DType::F32},
                                            {"blk.0.ffn_down.weight", {64, 172}, qs::DType::F32}};
  const auto fb = qs::llama_ftype_choices(odd, qs::LlamaFtype::Q4_K_M, {1, 8, 8});
  EXPECT_EQ(fb[0].type, qs::DType::Q5_0);
  EXPECT_EQ(fb[1].type, qs::DType::Q8_0);  // block 0 of 1 gets more bits: Q6_K, then its fallback
  EXPECT_EQ(fb[2].type, qs::DType::F16);
  EXPECT_NE(fb[2].note.find("not whole Q6_K blocks"), std::string::npos) << fb[2].note;
  // llama.cpp's order: tensors outside blocks first, then block by block, names sorted.
  EXPECT_EQ(tensors[0].name, "output.weight");
  EXPECT_EQ(tensors[3].name, "blk.0.attn_norm.weight");
  EXPECT_EQ(tensors.back().name, "blk.31.ffn_down.weight");
}

TEST(LlamaFtype, NamesParseCaseInsensitivelyWithLlamaQuantizeAliases) {
  EXPECT_EQ(qs::parse_llama_ftype("q4_k_m"), qs::LlamaFtype::Q4_K_M);
  EXPECT_EQ(qs::parse_llama_ftype("Q4_K"), qs::LlamaFtype::Q4_K_M);
  EXPECT_EQ(qs::parse_llama_ftype("f16"), qs::LlamaFtype::F16);
  EXPECT_FALSE(qs::parse_llama_ftype("q4_k_x"));
  EXPECT_EQ(static_cast<int>(qs::LlamaFtype::Q6_K), 18);  // the general.file_type number llama.cpp writes
}

TEST(GgufExport, RefusesTheSourceAndLeavesNothingOnFailure) {
  QS_REQUIRE_SHARED();
  // Work on a copy so that the refusal is about identity, not permissions.
  const fs::path dir = fresh_dir("refuse");
  const fs::path src = dir / "model.gguf";
  fs::copy_file(shared + "/models/stories260K/gguf/stories260K-f32.gguf", src);
  auto model = qs::open_model(src.string());
  ASSERT_TRUE(model.ok()) << model.error().message;
  const auto size_before = fs::file_size(src);
  auto same = qs::export_gguf(*model, src.string(), {qs::LlamaFtype::Q8_0}, qs::OpContext::none());
  ASSERT_FALSE(same.ok());
  EXPECT_NE(same.error().message.find("is the source model"), std::string::npos) << same.error().message;
  EXPECT_EQ(fs::file_size(src), size_before);

  // A cancelled export leaves no file and no temporary behind.
  qs::OpContext cancelled;
  cancelled.cancel();
  auto r = qs::export_gguf(*model, (dir / "out.gguf").string(), {qs::LlamaFtype::Q8_0}, cancelled);
  ASSERT_FALSE(r.ok());
  std::size_t entries = 0;
  for ([[maybe_unused]] const auto& e : fs::directory_iterator(dir)) ++entries;
  EXPECT_EQ(entries, 1u) << "only the source may remain in " << dir;
  fs::remove_all(dir);
}

// From the HF directory (Q/K rows in the rotate-half layout, SentencePiece
// tokenizer.model) to GGUF: every tensor byte-identical to what llama.cpp's
// converter wrote (stories260K-f32.gguf), the vocabulary and architecture keys
// equal; and Q4_K_M from HF equals llama-quantize's Q4_K_M tensor for tensor.
TEST(GgufExport, HfDirectoryConvertsLikeLlamaCpp) {
  QS_REQUIRE_SHARED();
  const std::string base = shared + "/models/stories260K/";
  auto hf = qs::open_model(base + "hf");
  ASSERT_TRUE(hf.ok()) << hf.error().message;
  const fs::path dir = fresh_dir("hf");
  for (const auto& [ftype, reference] : {std::pair{qs::LlamaFtype::F32, "stories260K-f32.gguf"},
                                         std::pair{qs::LlamaFtype::Q4_K_M, "stories260K-Q4_K_M.gguf"}}) {
    const std::string out = (dir / "out.gguf").string();
    auto report = qs::export_gguf(*hf, out, {ftype}, qs::OpContext::none());
    ASSERT_TRUE(report.ok()) << report.error().message;
    auto ours = qs::read_gguf(out);
    auto theirs = qs::read_gguf(base + "gguf/" + reference);
    ASSERT_TRUE(ours.ok()) << ours.error().message;
    ASSERT_TRUE(theirs.ok());
    ASSERT_EQ(ours->tensors.size(), theirs->tensors.size());
    for (const auto& t : theirs->tensors) {
      const auto it = std::find_if(ours->tensors.begin(), ours->tensors.end(), [&](const auto& o) { return o.name == t.name; });
      ASSERT_NE(it, ours->tensors.end()) << t.name;
      EXPECT_EQ(it->dtype, t.dtype) << t.name;
      EXPECT_EQ(it->shape, t.shape) << t.name;
      const auto a = it->bytes(), b = t.bytes();
      EXPECT_TRUE(a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin())) << t.name << ": bytes differ";
    }
    for (const char* key : {"general.architecture", "llama.block_count", "llama.context_length", "llama.embedding_length",
                            "llama.feed_forward_length", "llama.attention.head_count", "llama.attention.head_count_kv",
                            "llama.rope.dimension_count", "llama.attention.layer_norm_rms_epsilon", "tokenizer.ggml.model",
                            "tokenizer.ggml.tokens", "tokenizer.ggml.scores", "tokenizer.ggml.token_type",
                            "tokenizer.ggml.bos_token_id", "tokenizer.ggml.eos_token_id", "tokenizer.ggml.unknown_token_id"}) {
      const auto* mine = ours->find(key);
      const auto* ref = theirs->find(key);
      ASSERT_NE(mine, nullptr) << key;
      ASSERT_NE(ref, nullptr) << key;
      EXPECT_EQ(mine->to_display_string(1u << 20), ref->to_display_string(1u << 20)) << key;
    }
  }
  fs::remove_all(dir);
}

TEST(GgufExport, HfWithoutASentencePieceTokenizerIsRefusedWithTheReason) {
  const fs::path dir = fresh_dir("demo");
  qs::DemoSpec spec;
  spec.layers = 1;
  spec.hidden = 64;
  spec.intermediate = 96;
  ASSERT_TRUE(qs::write_demo_model((dir / "demo").string(), spec).ok());
  auto model = qs::open_model((dir / "demo").string());
  ASSERT_TRUE(model.ok()) << model.error().message;
  auto r = qs::export_gguf(*model, (dir / "out.gguf").string(), {qs::LlamaFtype::Q8_0}, qs::OpContext::none());
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("tokenizer.model"), std::string::npos) << r.error().message;
  EXPECT_FALSE(fs::exists(dir / "out.gguf"));
  fs::remove_all(dir);
}

// A plan drives the types: the q4_k_m preset plan gives the tensors of
// llama-quantize's Q4_K_M file; a plan format with no GGUF type is refused.
TEST(GgufExport, PlanDrivenExportMatchesTheFileTypeExport) {
  QS_REQUIRE_SHARED();
  const std::string gguf = shared + "/models/stories260K/gguf/";
  auto model = qs::open_model(gguf + "stories260K-f32.gguf");
  ASSERT_TRUE(model.ok()) << model.error().message;
  auto plan = qs::plan_preset("q4_k_m", *model);
  ASSERT_TRUE(plan.ok()) << plan.error().message;
  const fs::path dir = fresh_dir("plan");
  qs::GgufExportOptions opt;
  opt.plan = &*plan;
  auto report = qs::export_gguf(*model, (dir / "p.gguf").string(), opt, qs::OpContext::none());
  ASSERT_TRUE(report.ok()) << report.error().message;
  auto ours = qs::read_gguf((dir / "p.gguf").string());
  auto theirs = qs::read_gguf(gguf + "stories260K-Q4_K_M.gguf");
  ASSERT_TRUE(ours.ok() && theirs.ok());
  ASSERT_EQ(ours->tensors.size(), theirs->tensors.size());
  for (std::size_t i = 0; i < ours->tensors.size(); ++i) {
    const auto& a = ours->tensors[i];
    const auto& b = theirs->tensors[i];
    EXPECT_EQ(a.name, b.name);
    EXPECT_EQ(a.dtype, b.dtype) << a.name;
    EXPECT_TRUE(std::equal(a.bytes().begin(), a.bytes().end(), b.bytes().begin(), b.bytes().end())) << a.name;
  }
  qs::Plan grid;
  grid.base.format = "int4-g128";
  opt.plan = &grid;
  auto refused = qs::export_gguf(*model, (dir / "g.gguf").string(), opt, qs::OpContext::none());
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.error().message.find("has no GGUF type"), std::string::npos) << refused.error().message;
  EXPECT_FALSE(fs::exists(dir / "g.gguf"));
  fs::remove_all(dir);
}

// llama.cpp prints general.file_type as the model's type: a plan from the
// q4_k_m preset must say Q4_K_M (15), as llama-quantize's file does, so the
// whole file is byte-identical to it (it said Q4_K_S, 14, "Q4_K - Small" in
// llama-cli, before). A plan that no longer gives llama-quantize's types for
// Q4_K_M is labelled by its default format again.
TEST(GgufExport, PlanFromAFileTypePresetIsLabelledWithThatFileType) {
  QS_REQUIRE_SHARED();
  const std::string gguf = shared + "/models/stories260K/gguf/";
  auto model = qs::open_model(gguf + "stories260K-f32.gguf");
  ASSERT_TRUE(model.ok()) << model.error().message;
  auto plan = qs::plan_preset("q4_k_m", *model);
  ASSERT_TRUE(plan.ok()) << plan.error().message;
  const fs::path dir = fresh_dir("plan_label");
  qs::GgufExportOptions opt;
  opt.plan = &*plan;
  const std::string out = (dir / "p.gguf").string();
  auto report = qs::export_gguf(*model, out, opt, qs::OpContext::none());
  ASSERT_TRUE(report.ok()) << report.error().message;
  auto back = qs::read_gguf(out);
  ASSERT_TRUE(back.ok()) << back.error().message;
  const auto* ft = back->find("general.file_type");
  ASSERT_NE(ft, nullptr);
  EXPECT_EQ(ft->as_int(), 15);  // LLAMA_FTYPE_MOSTLY_Q4_K_M
  EXPECT_TRUE(qs::test::read_bytes(out) == qs::test::read_bytes(gguf + "stories260K-Q4_K_M.gguf"))
      << "plan export differs from llama-quantize's Q4_K_M file";

  qs::PlanOverride changed;
  changed.match.name = "token_embd";
  changed.format = "q8_0";
  plan->overrides.push_back(changed);
  const std::string out2 = (dir / "p2.gguf").string();
  auto report2 = qs::export_gguf(*model, out2, opt, qs::OpContext::none());
  ASSERT_TRUE(report2.ok()) << report2.error().message;
  auto back2 = qs::read_gguf(out2);
  ASSERT_TRUE(back2.ok()) << back2.error().message;
  const auto* ft2 = back2->find("general.file_type");
  ASSERT_NE(ft2, nullptr);
  EXPECT_EQ(ft2->as_int(), 14);  // default format q4_k: LLAMA_FTYPE_MOSTLY_Q4_K_S
  fs::remove_all(dir);
}

// method "clip" writes ordinary ggml blocks (decoded by the ggml decoders) that
// are never further from the F32 weights than the reference quantizer's.
TEST(GgufExport, ClipSearchedBlocksAreNeverWorseThanTheReferenceQuantizer) {
  QS_REQUIRE_SHARED();
  auto model = qs::open_model(shared + "/models/stories260K/gguf/stories260K-f32.gguf");
  ASSERT_TRUE(model.ok()) << model.error().message;
  const fs::path dir = fresh_dir("clip");
  auto export_with = [&](const char* method) {
    auto plan = qs::parse_plan(std::string(R"({"version":1,"default":{"format":"q4_0","method":")") + method +
                                   R"("},"overrides":[{"match":{"role":"down"},"format":"f16","method":"rtn"}]})",
                               "t");
    EXPECT_TRUE(plan.ok());
    qs::GgufExportOptions opt;
    opt.plan = &*plan;
    const std::string out = (dir / (std::string(method) + ".gguf")).string();
    EXPECT_TRUE(qs::export_gguf(*model, out, opt, qs::OpContext::none()).ok());
    return qs::read_gguf(out);
  };
  auto rtn = export_with("rtn");
  auto clip = export_with("clip");
  ASSERT_TRUE(rtn.ok() && clip.ok());
  int better = 0, quantized = 0;
  for (std::size_t i = 0; i < clip->tensors.size(); ++i) {
    const auto& c = clip->tensors[i];
    if (c.dtype != qs::DType::Q4_0) continue;
    ++quantized;
    const auto src = model->find_tensor(c.name);
    ASSERT_TRUE(src) << c.name;
    const qs::TensorInfo& s = model->tensors[*src];
    std::vector<float> w(s.numel()), a(s.numel()), b(s.numel());
    ASSERT_TRUE(qs::convert_to_f32(s.dtype, s.bytes().data(), w.size(), w.data()).ok());
    ASSERT_TRUE(qs::convert_to_f32(c.dtype, c.bytes().data(), a.size(), a.data()).ok());
    ASSERT_TRUE(qs::convert_to_f32(rtn->tensors[i].dtype, rtn->tensors[i].bytes().data(), b.size(), b.data()).ok());
    double ec = 0, er = 0;
    for (std::size_t k = 0; k < w.size(); ++k) {
      ec += (static_cast<double>(w[k]) - a[k]) * (static_cast<double>(w[k]) - a[k]);
      er += (static_cast<double>(w[k]) - b[k]) * (static_cast<double>(w[k]) - b[k]);
    }
    EXPECT_LE(ec, er) << c.name;
    better += ec < er * 0.99;
  }
  EXPECT_EQ(quantized, 32);
  EXPECT_GT(better, 25) << "clip search should gain > 1 % on most tensors";
  fs::remove_all(dir);
}

// The report's per-tensor SQNR is the written tensor's error against its
// source (independently recomputed here); a disk without room is refused
// before anything is written.
TEST(GgufExport, ReportsPerTensorErrorAndChecksFreeSpace) {
  QS_REQUIRE_SHARED();
  auto model = qs::open_model(shared + "/models/stories260K/gguf/stories260K-f32.gguf");
  ASSERT_TRUE(model.ok());
  const fs::path dir = fresh_dir("sqnr");
  auto report = qs::export_gguf(*model, (dir / "q.gguf").string(), {qs::LlamaFtype::Q4_K_M, nullptr}, qs::OpContext::none());
  ASSERT_TRUE(report.ok()) << report.error().message;
  auto back = qs::read_gguf((dir / "q.gguf").string());
  ASSERT_TRUE(back.ok());
  int checked = 0;
  for (std::size_t i = 0; i < back->tensors.size(); ++i) {
    const auto& t = back->tensors[i];
    const auto& r = report->tensors[i];
    ASSERT_EQ(r.name, t.name);
    const qs::TensorInfo& s = model->tensors[*model->find_tensor(t.name)];
    if (t.dtype == s.dtype) {
      EXPECT_TRUE(std::isinf(r.sqnr_db)) << t.name;
      continue;
    }
    std::vector<float> w(s.numel()), q(s.numel());
    ASSERT_TRUE(qs::convert_to_f32(s.dtype, s.bytes().data(), w.size(), w.data()).ok());
    ASSERT_TRUE(qs::convert_to_f32(t.dtype, t.bytes().data(), q.size(), q.data()).ok());
    double err = 0, ref = 0;
    for (std::size_t k = 0; k < w.size(); ++k) {
      err += (static_cast<double>(w[k]) - q[k]) * (static_cast<double>(w[k]) - q[k]);
      ref += static_cast<double>(w[k]) * w[k];
    }
    EXPECT_NEAR(r.sqnr_db, 10 * std::log10(ref / err), 1e-9) << t.name;
    ++checked;
  }
  EXPECT_EQ(checked, 37);
  auto full = qs::ensure_free_space((dir / "huge.gguf").string(), std::uint64_t{1} << 62);
  ASSERT_FALSE(full.ok());
  EXPECT_NE(full.error().message.find("huge.gguf: needs"), std::string::npos) << full.error().message;
  EXPECT_NE(full.error().message.find("MiB are free on"), std::string::npos) << full.error().message;
  fs::remove_all(dir);
}

TEST(SpmVocab, ReadsPiecesScoresAndTypesAndNamesTruncation) {
  // Hand-encoded ModelProto: pieces "<unk>" (type 2), "<s>" (3, score 0), "_a" (1, score -1.5), then a
  // trainer_spec (field 2) that must be skipped.
  const unsigned char bytes[] = {
      0x0A, 0x0E, 0x0A, 0x05, '<', 'u', 'n', 'k', '>', 0x15, 0, 0, 0, 0, 0x18, 0x02,
      0x0A, 0x0C, 0x0A, 0x03, '<', 's', '>', 0x15, 0, 0, 0, 0, 0x18, 0x03,
      0x0A, 0x09, 0x0A, 0x02, '_', 'a', 0x15, 0x00, 0x00, 0xC0, 0xBF,  // type absent: NORMAL
      0x12, 0x03, 0x18, 0x80, 0x04};
  auto v = qs::parse_spm_vocab(std::as_bytes(std::span(bytes)), "t.model");
  ASSERT_TRUE(v.ok()) << v.error().message;
  ASSERT_EQ(v->size(), 3u);
  EXPECT_EQ((*v)[0].piece, "<unk>");
  EXPECT_EQ((*v)[0].type, qs::SpmPieceType::Unknown);
  EXPECT_EQ((*v)[1].type, qs::SpmPieceType::Control);
  EXPECT_EQ((*v)[2].piece, "_a");
  EXPECT_EQ((*v)[2].score, -1.5f);
  EXPECT_EQ((*v)[2].type, qs::SpmPieceType::Normal);
  auto cut = qs::parse_spm_vocab(std::as_bytes(std::span(bytes, 20)), "t.model");
  ASSERT_FALSE(cut.ok());
  EXPECT_NE(cut.error().message.find("t.model: not a SentencePiece model"), std::string::npos) << cut.error().message;
  EXPECT_FALSE(qs::parse_spm_vocab({}, "empty.model").ok());
}

TEST(GgufExport, RopeRowsInterleaveTheTwoHalvesOfEachHead) {
  // 2 heads of 4 rows, 1 column: HF rows [h0: a0 a1 b0 b1 | h1: ...] -> GGUF [a0 b0 a1 b1 | ...].
  const float in[8] = {0, 1, 2, 3, 10, 11, 12, 13};
  float out[8];
  qs::permute_rope_rows(in, out, 8, 1, 2);
  const float want[8] = {0, 2, 1, 3, 10, 12, 11, 13};
  for (int i = 0; i < 8; ++i) EXPECT_EQ(out[i], want[i]) << i;
}



// An F16 GGUF with tensors of several chunks (the export encodes 2^18-element
// chunks in parallel, fused with decoding, the error and the hash), heavy-tailed
// values; `poison` >= 0 puts a NaN at that element of the first tensor.
std::string write_f16_source(const fs::path& dir, std::int64_t poison) {
  qs::GgufWriter w;
  w.set_string("general.architecture", "llama");
  const std::vector<std::pair<std::string, std::vector<std::int64_t>>> shapes = {
      {"blk.0.attn_q.weight", {640, 1024}}, {"blk.0.ffn_up.weight", {300, 768}}, {"blk.0.attn_norm.weight", {1024}}};
  for (const auto& [name, shape] : shapes) EXPECT_TRUE(w.add_tensor(name, shape, qs::DType::F16).ok());
  const std::string path = (dir / (poison >= 0 ? "poisoned-f16.gguf" : "f16.gguf")).string();
  auto header = w.header();
  auto file = qs::AtomicFile::create(path);
  EXPECT_TRUE(header.ok() && file.ok());
  EXPECT_TRUE(file->write(header->data(), header->size()).ok());
  std::mt19937 rng(7);
  std::student_t_distribution<float> t(3.0f);
  for (const auto& l : w.tensors()) {
    std::vector<std::uint16_t> h(l.nbytes / 2);
    for (auto& v : h) v = qs::f32_to_f16(0.02f * t(rng));
    if (poison >= 0 && &l == &w.tensors()[0]) h[static_cast<std::size_t>(poison)] = 0x7E00;  // NaN
    EXPECT_TRUE(qs::GgufWriter::write_tensor(*file, l, std::as_bytes(std::span(h)), w.alignment()).ok());
  }
  EXPECT_TRUE(file->commit().ok());
  return path;
}

// The fused, chunked path writes what the whole-tensor reference quantizer
// writes from the decoded tensor, byte for byte, reports the SQNR recomputed
// here, and refuses a NaN by its index in the tensor.
TEST(GgufExport, ChunkedEncodingMatchesTheWholeTensorQuantizer) {
  const fs::path dir = fresh_dir("chunked");
  auto model = qs::open_model(write_f16_source(dir, -1));
  ASSERT_TRUE(model.ok()) << model.error().message;
  for (const char* format : {"q8_0", "q4_0", "q4_k", "q6_k"}) {
    qs::Plan plan;
    plan.base.format = format;
    qs::GgufExportOptions opt;
    opt.plan = &plan;
    const std::string out = (dir / (std::string(format) + ".gguf")).string();
    auto report = qs::export_gguf(*model, out, opt, qs::OpContext::none());
    ASSERT_TRUE(report.ok()) << report.error().message;
    auto back = qs::read_gguf(out);
    ASSERT_TRUE(back.ok()) << back.error().message;
    int quantized = 0;
    for (std::size_t i = 0; i < back->tensors.size(); ++i) {
      const qs::TensorInfo& t = back->tensors[i];
      const qs::TensorInfo& s = model->tensors[*model->find_tensor(t.name)];
      if (t.dtype == s.dtype) continue;
      ++quantized;
      std::vector<float> x(s.numel()), y(s.numel());
      ASSERT_TRUE(qs::convert_to_f32(s.dtype, s.bytes().data(), x.size(), x.data()).ok());
      std::vector<std::byte> expect(t.nbytes);
      ASSERT_TRUE(qs::quantize_ggml_blocks(t.dtype, x.data(), x.size() / qs::dtype_block_elems(t.dtype), expect.data()).ok());
      ASSERT_EQ(std::memcmp(expect.data(), t.bytes().data(), expect.size()), 0) << format << " " << t.name;
      ASSERT_TRUE(qs::convert_to_f32(t.dtype, t.bytes().data(), y.size(), y.data()).ok());
      double err = 0, ref = 0;
      for (std::size_t k = 0; k < x.size(); ++k) {
        err += (static_cast<double>(x[k]) - y[k]) * (static_cast<double>(x[k]) - y[k]);
        ref += static_cast<double>(x[k]) * x[k];
      }
      EXPECT_NEAR(report->tensors[i].sqnr_db, 10 * std::log10(ref / err), 1e-9) << format << " " << t.name;
    }
    EXPECT_EQ(quantized, 2) << format;
    opt.direct_io = false;  // plain page-cache writes and reads: the same file
    const std::string plain = (dir / (std::string(format) + "-plain.gguf")).string();
    ASSERT_TRUE(qs::export_gguf(*model, plain, opt, qs::OpContext::none()).ok());
    EXPECT_EQ(qs::test::read_bytes(plain), qs::test::read_bytes(out)) << format;
  }
  auto poisoned = qs::open_model(write_f16_source(dir, 400000));
  ASSERT_TRUE(poisoned.ok());
  qs::Plan plan;
  plan.base.format = "q8_0";
  qs::GgufExportOptions opt;
  opt.plan = &plan;
  auto bad = qs::export_gguf(*poisoned, (dir / "bad.gguf").string(), opt, qs::OpContext::none());
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message.find("blk.0.attn_q.weight: value 400000 is not finite"), std::string::npos)
      << bad.error().message;
  EXPECT_FALSE(fs::exists(dir / "bad.gguf"));
  fs::remove_all(dir);
}

}  // namespace
