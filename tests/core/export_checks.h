#pragma once
// Checks shared by the directory exporters' read-back tests: after a byte of
// the staged model.safetensors was changed in `victim` between the write and
// the verification, the export's error names the file and the tensor, and
// neither the destination nor the staging directory is left.
#include <gtest/gtest.h>

#include <filesystem>
#include <string>

namespace qs::test {

inline void expect_verification_failure(const std::string& message, const std::filesystem::path& out_dir,
                                        const std::string& staged, const std::string& victim) {
  EXPECT_NE(message.find((out_dir / "model.safetensors").string() + ": verification: tensor " + victim +
                         " does not read back as written"),
            std::string::npos)
      << message;
  EXPECT_FALSE(staged.empty()) << "the test hook was not called";
  EXPECT_FALSE(std::filesystem::exists(out_dir));
  EXPECT_FALSE(std::filesystem::exists(std::filesystem::path(staged).parent_path())) << "the staging directory is left";
}

}  // namespace qs::test
