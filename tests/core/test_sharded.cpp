// Sharded checkpoints: model.safetensors.index.json and its shards.
#include <gtest/gtest.h>

#include <cstring>

#include "io/open_model.h"
#include "io/safetensors.h"
#include "test_files.h"

namespace {

std::span<const std::byte> bytes_of(const std::vector<float>& v) {
  return {reinterpret_cast<const std::byte*>(v.data()), v.size() * 4};
}

class Sharded : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(qs::write_safetensors(dir.file("model-00001-of-00002.safetensors"),
                                      {{"model.embed_tokens.weight", qs::DType::F32, {4, 2}, bytes_of(a)},
                                       {"model.layers.0.self_attn.q_proj.weight", qs::DType::F32, {2, 2}, bytes_of(b)}})
                    .ok());
    ASSERT_TRUE(qs::write_safetensors(dir.file("model-00002-of-00002.safetensors"),
                                      {{"lm_head.weight", qs::DType::F32, {4, 2}, bytes_of(a)}})
                    .ok());
  }
  void write_index(const std::string& weight_map) {
    qs::test::write_bytes(dir.file("model.safetensors.index.json"),
                          R"({"metadata":{"total_size":80},"weight_map":)" + weight_map + "}");
  }
  qs::test::TempDir dir;
  std::vector<float> a = std::vector<float>(8, 1.5f), b = std::vector<float>(4, -2.0f);
  const std::string good = R"({"model.embed_tokens.weight":"model-00001-of-00002.safetensors",
    "model.layers.0.self_attn.q_proj.weight":"model-00001-of-00002.safetensors",
    "lm_head.weight":"model-00002-of-00002.safetensors"})";
};

TEST_F(Sharded, OpensAllShardsThroughTheIndex) {
  write_index(good);
  auto m = qs::open_model(dir.path().string());
  ASSERT_TRUE(m.ok()) << m.error().message;
  EXPECT_EQ(m->tensors.size(), 3u);
  EXPECT_EQ(m->weight_files.size(), 2u);
  auto lm = m->find_tensor("lm_head.weight");
  ASSERT_TRUE(lm.has_value());
  float first;
  std::memcpy(&first, m->tensors[*lm].bytes().data(), 4);
  EXPECT_EQ(first, 1.5f);
  EXPECT_EQ(m->layers.size(), 3u);  // embed, q_proj, lm_head
}

TEST_F(Sharded, MissingShardIsNamed) {
  write_index(R"({"lm_head.weight":"model-00003-of-00003.safetensors"})");
  auto m = qs::open_model(dir.path().string());
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.error().message.find("model-00003-of-00003.safetensors"), std::string::npos) << m.error().message;
  EXPECT_NE(m.error().message.find("does not exist"), std::string::npos);
}

TEST_F(Sharded, TensorInAShardButNotInTheIndex) {
  write_index(R"({"model.embed_tokens.weight":"model-00001-of-00002.safetensors",
                  "lm_head.weight":"model-00002-of-00002.safetensors"})");
  auto m = qs::open_model(dir.path().string());
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.error().message.find("q_proj.weight\" is not mapped to this shard"), std::string::npos) << m.error().message;
}

TEST_F(Sharded, IndexNamesATensorTheShardLacks) {
  write_index(R"({"model.embed_tokens.weight":"model-00001-of-00002.safetensors",
    "model.layers.0.self_attn.q_proj.weight":"model-00001-of-00002.safetensors",
    "lm_head.weight":"model-00002-of-00002.safetensors", "ghost.weight":"model-00002-of-00002.safetensors"})");
  auto m = qs::open_model(dir.path().string());
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.error().message.find("\"ghost.weight\" is mapped to model-00002-of-00002.safetensors but that file does not hold it"),
            std::string::npos)
      << m.error().message;
}

TEST_F(Sharded, ShardNamesMustStayInTheDirectory) {
  write_index(R"({"lm_head.weight":"../model-00002-of-00002.safetensors"})");
  auto m = qs::open_model(dir.path().string());
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.error().message.find("not a plain file name"), std::string::npos);
}

TEST_F(Sharded, BrokenIndexJson) {
  qs::test::write_bytes(dir.file("model.safetensors.index.json"), "{\"weight_map\": [");
  auto m = qs::open_model(dir.path().string());
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.error().message.find("model.safetensors.index.json"), std::string::npos);
}

TEST_F(Sharded, ABrokenShardFailsTheModelWithTheShardsName) {
  write_index(good);
  qs::test::write_bytes(dir.file("model-00002-of-00002.safetensors"), "junk");
  auto m = qs::open_model(dir.path().string());
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.error().message.find("model-00002-of-00002.safetensors"), std::string::npos);
}

}  // namespace
