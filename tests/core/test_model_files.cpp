// Writers refuse the model's own files: an export or calibration file renamed
// over a weight file, config.json or the tokenizer would destroy the source.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>

#include "calib/calibration_file.h"
#include "io/open_model.h"
#include "model/model_files.h"
#include "test_files.h"

namespace {

namespace fs = std::filesystem;

TEST(ModelFiles, RefusesTheModelItsWeightsAndSideFiles) {
  const fs::path root = fs::temp_directory_path() / ("qs_model_files_" + std::to_string(::getpid()));
  fs::remove_all(root);
  const fs::path dir = qs::test::write_small_demo(root / "src", 1, 64, 128);
  auto model = qs::open_model(dir.string());
  ASSERT_TRUE(model.ok()) << model.error().message;
  ASSERT_FALSE(model->weight_files.empty());
  const auto weights = model->weight_files.front();
  const auto size = fs::file_size(weights);

  for (const std::string& clash : {dir.string(), weights, (dir / "config.json").string()}) {
    if (!fs::exists(clash)) continue;
    auto r = qs::refuse_model_file(*model, clash);
    ASSERT_FALSE(r.ok()) << clash;
    EXPECT_NE(r.error().message.find("source model"), std::string::npos) << r.error().message;
  }
  EXPECT_TRUE(qs::refuse_model_file(*model, (dir / "quantscope.qscalib.h5").string()).ok());
  EXPECT_TRUE(qs::refuse_model_file(*model, (root / "elsewhere.gguf").string()).ok());

  // The calibration writer refuses before touching anything: the weights stay as they were.
  qs::CalibrationRun run;
  auto w = qs::write_calibration_file(weights, *model, run);
  ASSERT_FALSE(w.ok());
  EXPECT_NE(w.error().message.find("is a file of the source model"), std::string::npos) << w.error().message;
  EXPECT_EQ(fs::file_size(weights), size);
  auto reopened = qs::open_model(dir.string());
  EXPECT_TRUE(reopened.ok());
  fs::remove_all(root);
}

}  // namespace
