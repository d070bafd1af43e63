// End to end on a real model: calibrate stories260K on the first half of the
// evaluation text (Hessians of every linear layer's input, from our own forward
// pass), export Q4_0 GGUFs with GPTQ and with plain RTN (llama.cpp's reference
// quantizer), and compare their perplexity on the other half.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>

#include "synthetic_calibration.h"
#include "calib/llama_forward.h"
#include "calib/perplexity.h"
#include "calib/spm_tokenizer.h"
#include "export/gguf_export.h"
#include "io/open_model.h"
#include "quant/plan.h"
#include "test_files.h"

namespace {

namespace fs = std::filesystem;

double perplexity_of(const std::string& path, std::span<const std::int32_t> tokens, std::int32_t bos) {
  auto m = qs::open_model(path);
  EXPECT_TRUE(m.ok());
  auto model = qs::LlamaModel::load(*m);
  EXPECT_TRUE(model.ok()) << model.error().message;
  qs::PerplexityOptions opt;
  opt.bos = bos;
  auto p = qs::perplexity(*model, tokens, opt);
  EXPECT_TRUE(p.ok()) << p.error().message;
  return p.ok() ? p->ppl : 0.0;
}

TEST(GptqGguf, CalibratedGptqBeatsTheReferenceQuantizerOnHeldOutText) {
  QS_REQUIRE_SHARED();
  const std::string base = shared + "/models/stories260K/";
  auto src = qs::open_model(base + "gguf/stories260K-f32.gguf");
  ASSERT_TRUE(src.ok()) << src.error().message;
  auto tok = qs::SpmTokenizer::for_model(*src);
  ASSERT_TRUE(tok.ok()) << tok.error().message;
  const std::string text = qs::test::read_bytes(base + "eval/tiny_stories_eval.txt");
  const auto ids = tok->encode(text, true);
  ASSERT_GE(ids.size(), 2048u);
  const std::span<const std::int32_t> calib(ids.data(), 1024), held_out(ids.data() + 1024, ids.size() - 1024);

  auto model = qs::LlamaModel::load(*src);
  ASSERT_TRUE(model.ok()) << model.error().message;
  auto hessians = qs::test::hessians_of(*model, calib, 256, tok->bos_id());
  ASSERT_TRUE(hessians.ok()) << hessians.error().message;
  EXPECT_EQ(hessians->tokens, 1024);
  ASSERT_EQ(hessians->inputs.size(), 5u * 4);

  const fs::path dir = fs::temp_directory_path() / ("qs_gptq_gguf_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  double ppl[2];
  for (int gptq = 0; gptq < 2; ++gptq) {
    auto plan = qs::parse_plan(std::string(R"({"version":1,"default":{"format":"q4_0","method":")") +
                                   (gptq ? "gptq" : "rtn") + R"("},"overrides":[{"match":{"role":"down"},"format":"f16","method":"rtn"}]})",
                               "t");
    ASSERT_TRUE(plan.ok());
    qs::GgufExportOptions opt;
    opt.plan = &*plan;
    opt.capture = &*hessians;
    const std::string out = (dir / (gptq ? "gptq.gguf" : "rtn.gguf")).string();
    auto r = qs::export_gguf(*src, out, opt, qs::OpContext::none());
    ASSERT_TRUE(r.ok()) << r.error().message;
    ppl[gptq] = perplexity_of(out, held_out, tok->bos_id());
  }
  const double f32 = perplexity_of(base + "gguf/stories260K-f32.gguf", held_out, tok->bos_id());
  std::printf("  held-out perplexity: F32 %.4f, Q4_0 RTN %.4f, Q4_0 GPTQ %.4f\n", f32, ppl[0], ppl[1]);
  RecordProperty("ppl_f32", std::to_string(f32));
  RecordProperty("ppl_q4_0_rtn", std::to_string(ppl[0]));
  RecordProperty("ppl_q4_0_gptq", std::to_string(ppl[1]));
  EXPECT_GT(ppl[0], f32);
  EXPECT_LT(ppl[1], ppl[0]);                      // GPTQ recovers part of the loss
  EXPECT_LT(ppl[1] - f32, 0.8 * (ppl[0] - f32));  // ... a real part: at least 20 %
  fs::remove_all(dir);
}

}  // namespace
