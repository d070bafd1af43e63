// The QuantScope quantized HDF5 checkpoint: written from a plan, read back by
// our reader; each tensor's values equal what the plan's quantizer gives
// (computed here independently), copies equal the source, metrics and the
// plan survive; errors name the file.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>

#include "demo/demo_model.h"
#include "export/h5_export.h"
#include "io/open_model.h"
#include "io/quantized_h5.h"
#include "model/convert.h"
#include "quant/ggml_dequant.h"
#include "quant/ggml_quantize.h"
#include "quant/int_grid.h"
#include "quant/metrics.h"
#include "quant/plan.h"
#include "test_files.h"

namespace {

namespace fs = std::filesystem;

// Written over a file of the source, the rename at the end would replace the
// weights the export reads: refused, and the source is untouched.
TEST(QuantizedH5, RefusesAFileOfTheSource) {
  qs::test::TempDir dir;
  auto model = qs::open_model(qs::test::write_small_demo(dir.path() / "src", 1, 64, 96));
  ASSERT_TRUE(model.ok()) << model.error().message;
  ASSERT_FALSE(model->weight_files.empty());
  const std::string weights = model->weight_files.front();
  const auto before = fs::file_size(weights);
  auto r = qs::export_quantized_h5(*model, qs::Plan{}, weights, {}, qs::OpContext::none());
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("is a file of the source model"), std::string::npos) << r.error().message;
  EXPECT_EQ(fs::file_size(weights), before);
}

TEST(QuantizedH5, RoundTripsEveryKindOfTensor) {
  const fs::path root = fs::temp_directory_path() / ("qs_h5x_" + std::to_string(::getpid()));
  fs::remove_all(root);
  auto model = qs::open_model(qs::test::write_small_demo(root / "src", 2, 128, 352));
  ASSERT_TRUE(model.ok()) << model.error().message;
  auto plan = qs::parse_plan(R"({"version":1,"default":{"format":"int4-g64"},
      "overrides":[{"match":{"role":"down"},"format":"q4_k"},{"match":{"role":"v"},"format":"q8_0"},
                   {"match":{"role":"embed"},"format":"f16"}]})", "t");
  ASSERT_TRUE(plan.ok());
  const std::string out = (root / "m.qs.h5").string();
  auto report = qs::export_quantized_h5(*model, *plan, out, {}, qs::OpContext::none());
  ASSERT_TRUE(report.ok()) << report.error().message;

  auto file = qs::read_quantized_h5(out);
  ASSERT_TRUE(file.ok()) << file.error().message;
  EXPECT_EQ(qs::parse_plan(file->plan_json, "back").value(), *plan);
  EXPECT_EQ(file->source_path, model->path);
  ASSERT_EQ(file->tensors.size(), model->tensors.size());
  int kinds[3] = {0, 0, 0};
  for (const auto& t : file->tensors) {
    const qs::TensorInfo& src = model->tensors[*model->find_tensor(t.name)];
    EXPECT_EQ(t.shape, src.shape) << t.name;
    std::vector<float> w(src.numel()), expect(src.numel());
    ASSERT_TRUE(qs::convert_to_f32(src.dtype, src.bytes().data(), w.size(), w.data()).ok());
    if (t.kind == "copy") {
      ++kinds[0];
      expect = w;
    } else if (t.kind == "int_grid") {
      ++kinds[1];
      EXPECT_EQ(t.format, "int4-g64");
      EXPECT_EQ(t.bits, 4);
      EXPECT_EQ(t.group_size, 64);
      auto q = qs::rtn_int(w.data(), src.rows(), src.cols(), {4, false, 64});
      ASSERT_TRUE(q.ok());
      expect = qs::dequantize_int(*q);
    } else {
      ++kinds[2];
      const qs::DType type = t.format == "q4_k" ? qs::DType::Q4_K : qs::DType::Q8_0;
      EXPECT_EQ(t.ggml_type, type) << t.name;
      std::vector<std::byte> b(*qs::dtype_bytes(type, w.size()));
      ASSERT_TRUE(qs::quantize_ggml_blocks(type, w.data(), w.size() / qs::dtype_block_elems(type), b.data()).ok());
      ASSERT_TRUE(qs::dequantize_ggml_blocks(type, b.data(), w.size() / qs::dtype_block_elems(type), expect.data()));
    }
    auto values = qs::read_quantized_h5_values(*file, t);
    ASSERT_TRUE(values.ok()) << values.error().message;
    ASSERT_EQ(values->size(), expect.size());
    std::size_t same = 0;
    for (std::size_t i = 0; i < expect.size(); ++i) same += (*values)[i] == expect[i];
    EXPECT_EQ(same, expect.size()) << t.name << " (" << t.kind << ")";
    if (t.kind != "copy") {
      EXPECT_NEAR(t.sqnr_db, qs::weight_error(w.data(), expect.data(), w.size()).sqnr_db, 1e-9) << t.name;
    }
  }
  EXPECT_EQ(kinds[1], 2 * 5 + 1);  // q, k, o, gate, up per block + lm_head
  EXPECT_EQ(kinds[2], 2);          // v in Q8_0; down_proj rows of 352 are not whole Q4_K blocks: copied, with the reason
  for (const auto& l : report->layers) {
    if (l.name.find("down_proj") != std::string::npos) {
      EXPECT_FALSE(l.quantized) << l.name;
      EXPECT_NE(l.reason.find("not whole Q4_K blocks"), std::string::npos) << l.reason;
    }
  }
  auto bad = qs::read_quantized_h5((root / "src" / "config.json").string());
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message.find("config.json: not an HDF5 file"), std::string::npos) << bad.error().message;
  fs::remove_all(root);
}

}  // namespace
