// Hand-made bad safetensors files: each must fail with a specific message that
// names the file, without crashing and without allocating more than the file is worth.
#include <gtest/gtest.h>

#include <fstream>

#include <sys/stat.h>

#include <algorithm>

#include "alloc_tracker.h"
#include "io/gguf.h"
#include "io/imatrix_file.h"
#include "io/open_model.h"
#include "io/quantized_h5.h"
#include "io/safetensors.h"
#include "test_files.h"
#include "demo/demo_model.h"
#include "quant/plan.h"
#include "util/json_depth.h"
#include "util/name_regex.h"

namespace {

using qs::test::safetensors_bytes;

struct BadFile {
  const char* what;
  std::string bytes;
  const char* expect;  // substring of the error message
};

std::string le64(std::uint64_t n) {
  std::string s(8, '\0');
  for (int i = 0; i < 8; ++i) s[static_cast<std::size_t>(i)] = static_cast<char>((n >> (8 * i)) & 0xFF);
  return s;
}

const std::string kF32x2 = std::string(8, '\x01');  // data for one F32 [2] tensor

std::vector<BadFile> bad_files() {
  return {
      {"empty file", "", "file is empty"},
      {"shorter than the length field", "abcde", "too short"},
      {"header length past the end", le64(1000) + "{}", "runs past the end of the file"},
      {"header length absurd", le64(1ull << 62) + "{}", "exceeds the 100,000,000-byte limit"},
      {"truncated JSON", safetensors_bytes(R"({"a":{"dtype":"F32",)", ""), "not valid JSON"},
      {"trailing garbage after the object", safetensors_bytes("{} x", ""), "not valid JSON"},
      {"NUL inside the header", safetensors_bytes(std::string("{}\0", 3), ""), "not valid JSON"},
      {"invalid UTF-8 in a name", safetensors_bytes("{\"\xff\xfe\":{}}", ""), "not valid JSON"},
      {"header is an array", safetensors_bytes("[1,2]", ""), "must be a JSON object"},
      {"tensor entry is a number", safetensors_bytes(R"({"a":5})", ""), "tensor \"a\": expected an object"},
      {"unknown dtype", safetensors_bytes(R"({"a":{"dtype":"Q7","shape":[2],"data_offsets":[0,8]}})", kF32x2),
       "unknown dtype \"Q7\""},
      {"missing shape", safetensors_bytes(R"({"a":{"dtype":"F32","data_offsets":[0,8]}})", kF32x2),
       "missing field \"shape\""},
      {"unexpected field", safetensors_bytes(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8],"x":1}})", kF32x2),
       "unexpected field \"x\""},
      {"negative dimension", safetensors_bytes(R"({"a":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})", kF32x2),
       "negative number"},
      {"fractional dimension", safetensors_bytes(R"({"a":{"dtype":"F32","shape":[2.5],"data_offsets":[0,8]}})", kF32x2),
       "expected an integer"},
      {"three data offsets", safetensors_bytes(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8,9]}})", kF32x2),
       "must have 2 numbers"},
      {"end before begin", safetensors_bytes(R"({"a":{"dtype":"F32","shape":[0],"data_offsets":[8,0]}})", kF32x2),
       "end before they begin"},
      {"shape and bytes disagree", safetensors_bytes(R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", kF32x2),
       "needs 12 bytes but data_offsets span 8"},
      {"shape product overflows",
       safetensors_bytes(R"({"a":{"dtype":"F32","shape":[4294967296,4294967296,2],"data_offsets":[0,8]}})", kF32x2),
       "overflows 64 bits"},
      {"huge shape, tiny data",
       safetensors_bytes(R"({"a":{"dtype":"F32","shape":[100000000,1000000000],"data_offsets":[0,8]}})", kF32x2),
       "needs 400000000000000000 bytes"},
      {"offsets past the end of the file",
       safetensors_bytes(R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})", kF32x2), "truncated?"},
      {"overlapping tensors",
       safetensors_bytes(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})",
                         kF32x2),
       "overlap"},
      {"gap between tensors",
       safetensors_bytes(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", kF32x2), "unused gap of 4 bytes"},
      {"trailing bytes after the data",
       safetensors_bytes(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})", kF32x2), "4 trailing bytes"},
      {"duplicate tensor name",
       safetensors_bytes(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})",
                         kF32x2),
       "duplicate tensor name \"a\""},
      {"metadata value not a string",
       safetensors_bytes(R"({"__metadata__":{"format":1},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", kF32x2),
       "__metadata__: value of \"format\" must be a string"},
      {"too many dimensions",
       safetensors_bytes(R"({"a":{"dtype":"F32","shape":[1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1],"data_offsets":[0,4]}})",
                         std::string(4, '\0')),
       "more than 16 dimensions"},
      {"deeply nested junk", safetensors_bytes(R"({"a":{"dtype":"F32","shape":[[[[[[[[1]]]]]]]]}})", ""),
       "unexpected array"},
      {"field given twice",
       safetensors_bytes(R"({"a":{"dtype":"F32","dtype":"F16","shape":[2],"data_offsets":[0,8]}})", kF32x2),
       "field \"dtype\" given twice"},
  };
}

class MalformedSafetensors : public ::testing::TestWithParam<BadFile> {};

TEST_P(MalformedSafetensors, FailsWithASpecificMessageNamingTheFile) {
  const BadFile& bad = GetParam();
  qs::test::TempDir dir;
  const std::string path = dir.file("bad.safetensors");
  qs::test::write_bytes(path, bad.bytes);

  qs::test::alloc_tracker_reset();
  auto r = qs::read_safetensors(path);
  const std::size_t largest = qs::test::alloc_tracker_largest();
  ASSERT_FALSE(r.ok()) << bad.what;
  EXPECT_EQ(r.error().code, qs::ErrorCode::Format) << bad.what;
  EXPECT_NE(r.error().message.find(path), std::string::npos) << bad.what << ": " << r.error().message;
  EXPECT_NE(r.error().message.find(bad.expect), std::string::npos)
      << bad.what << ": expected \"" << bad.expect << "\" in: " << r.error().message;
  // Nothing proportional to a lying size: every allocation fits in the file (or a few KiB of bookkeeping).
  EXPECT_LE(largest, std::max<std::size_t>(bad.bytes.size(), 4096)) << bad.what;

  // The same error surfaces through open_model, for the app and the CLI.
  auto m = qs::open_model(path);
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.error().message.find(bad.expect), std::string::npos) << m.error().message;
}

INSTANTIATE_TEST_SUITE_P(BadFiles, MalformedSafetensors, ::testing::ValuesIn(bad_files()),
                         [](const ::testing::TestParamInfo<BadFile>& param_info) { return qs::test::test_name_of(param_info.param.what); });

TEST(MalformedSafetensors, AtLeastFifteenCases) { EXPECT_GE(bad_files().size(), 15u); }

TEST(OpenModel, MissingPathSaysSo) {
  auto r = qs::open_model("/no/such/model/dir");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("/no/such/model/dir"), std::string::npos);
  EXPECT_NE(r.error().message.find("no such file"), std::string::npos);
}

TEST(OpenModel, DirectoryWithoutWeightsSaysSo) {
  qs::test::TempDir dir;
  auto r = qs::open_model(dir.path().string());
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("no .safetensors"), std::string::npos);
}

TEST(OpenModel, ABrokenHdf5FileIsAnErrorNotACrash) {
  qs::test::TempDir dir;
  qs::test::write_bytes(dir.file("m.h5"), std::string("\x89HDF\r\n\x1a\n", 8) + std::string(32, '\0'));
  auto r = qs::open_model(dir.file("m.h5"));
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find(dir.file("m.h5")), std::string::npos) << r.error().message;
}

TEST(OpenModel, KerasArchivesAreRefusedWithAWayOut) {
  qs::test::TempDir dir;
  qs::test::write_bytes(dir.file("m.keras"), std::string("PK\x03\x04", 4) + std::string(60, '\0'));
  auto r = qs::open_model(dir.file("m.keras"));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, qs::ErrorCode::Unsupported);
  EXPECT_NE(r.error().message.find("save the model as .h5"), std::string::npos) << r.error().message;
}

TEST(OpenModel, BrokenConfigJsonIsAnErrorNamingIt) {
  qs::test::TempDir dir;
  qs::test::write_bytes(dir.file("model.safetensors"), safetensors_bytes("{}      ", ""));
  qs::test::write_bytes(dir.file("config.json"), R"({"hidden_size": 64,)");
  auto r = qs::open_model(dir.path().string());
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("config.json"), std::string::npos);
  EXPECT_NE(r.error().message.find("not valid JSON"), std::string::npos);
}

// A FIFO in place of a model, a GGUF, a quantized checkpoint or an importance
// matrix: refused at once as not a regular file (opening a FIFO for reading
// waits for a writer: before, open_model and every GGUF read hung here).
TEST(HostileInput, FifosAreRefusedWithoutWaitingForAWriter) {
  qs::test::TempDir tmp;
  for (const char* name : {"model.safetensors", "model.gguf", "ckpt.qs.h5", "plain"}) {
    const std::string fifo = tmp.file(name);
    ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
    auto m = qs::open_model(fifo);
    ASSERT_FALSE(m.ok()) << name;
    EXPECT_NE(m.error().message.find("not a regular file"), std::string::npos) << m.error().message;
    EXPECT_NE(m.error().message.find(name), std::string::npos) << m.error().message;
    EXPECT_FALSE(qs::read_gguf(fifo).ok()) << name;
    EXPECT_FALSE(qs::read_quantized_h5(fifo).ok()) << name;
    EXPECT_FALSE(qs::read_imatrix(fifo).ok()) << name;
  }
}

}  // namespace

// Deeply nested JSON (a few hundred KB of "[[[[") in a config.json, a
// tokenizer.json, a plan and a sharded index: refused with the file named,
// before any parser or error dump recurses into it (they overflowed the stack).
// A plan regex nested past PCRE2's limit, and one that backtracks, are errors
// too (std::regex recursed per group and crashed).
TEST(HostileInput, DeepJsonAndHostileRegexesAreErrors) {
  const std::string deep = std::string(200000, '[') + std::string(200000, ']');
  EXPECT_EQ(qs::json_nesting_depth(deep), 200000);
  EXPECT_EQ(qs::json_nesting_depth(R"({"a": "[[[[\"[[[", "b": [1, {"c": []}]})"), 4);  // strings do not count
  qs::test::TempDir tmp;
  ASSERT_TRUE(qs::write_demo_model(tmp.file("m"), {.hidden = 64, .intermediate = 96, .layers = 1}).ok());
  {
    std::ofstream(tmp.file("m/config.json")) << R"({"model_type": "llama", "hidden_size": )" << deep << "}";
    auto m = qs::open_model(tmp.file("m"));
    ASSERT_FALSE(m.ok());
    EXPECT_NE(m.error().message.find("config.json: JSON nested 200001 levels deep"), std::string::npos) << m.error().message;
  }
  auto plan = qs::parse_plan(R"({"version": 1, "default": {"format": "q8_0", "method": "rtn"}, "x": )" + deep + "}", "p.json");
  ASSERT_FALSE(plan.ok());
  EXPECT_NE(plan.error().message.find("p.json: JSON nested"), std::string::npos) << plan.error().message;
  const std::string groups = std::string(50000, '(') + "a" + std::string(50000, ')');
  auto nested = qs::parse_plan(R"({"version": 1, "default": {"format": "q8_0", "method": "rtn"},
    "overrides": [{"match": {"regex": ")" + groups + R"("}, "format": "q4_0"}]})", "p.json");
  ASSERT_FALSE(nested.ok());
  EXPECT_NE(nested.error().message.find("overrides[0].match.regex: regular expression of 100001 bytes"), std::string::npos)
      << nested.error().message;
  // Within the length limit, nesting past PCRE2's own limit is refused at compile time.
  auto deep_groups = qs::NameRegex::compile(std::string(1000, '(') + "a" + std::string(1000, ')'), "r");
  ASSERT_FALSE(deep_groups.ok());
  EXPECT_NE(deep_groups.error().message.find("r: invalid regular expression"), std::string::npos) << deep_groups.error().message;
  // Catastrophic backtracking is bounded by the match limit: an error or an answer, quickly.
  auto slow = qs::NameRegex::compile("(a|aa)+(b|bb)+$", "r");
  ASSERT_TRUE(slow.ok());
  auto hit = slow->search(std::string(4000, 'a') + "c");
  EXPECT_TRUE(!hit.ok() || !*hit);
}
