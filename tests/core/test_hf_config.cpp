// config.json -> ArchInfo, both RoPE layouts, and errors that name the field.
#include <gtest/gtest.h>

#include "io/hf_config.h"

namespace {

TEST(HfConfig, LlamaLegacyLayout) {
  auto a = qs::parse_hf_config(R"({
    "architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 4096,
    "intermediate_size": 11008, "num_hidden_layers": 32, "num_attention_heads": 32,
    "num_key_value_heads": 8, "vocab_size": 32000, "rms_norm_eps": 1e-5, "rope_theta": 500000.0,
    "rope_scaling": {"rope_type": "llama3", "factor": 8.0}, "max_position_embeddings": 8192,
    "tie_word_embeddings": false, "torch_dtype": "bfloat16"})", "config.json");
  ASSERT_TRUE(a.ok()) << a.error().message;
  EXPECT_EQ(a->model_type, "llama");
  EXPECT_EQ(a->architectures.at(0), "LlamaForCausalLM");
  EXPECT_EQ(a->hidden_size, 4096);
  EXPECT_EQ(a->num_kv_heads, 8);
  EXPECT_EQ(a->head_dim, 128);  // derived: hidden / heads
  EXPECT_DOUBLE_EQ(a->rms_norm_eps, 1e-5);
  EXPECT_DOUBLE_EQ(a->rope.theta, 500000.0);
  EXPECT_EQ(a->rope.scaling_type, "llama3");
  EXPECT_DOUBLE_EQ(a->rope.scaling_factor, 8.0);
  EXPECT_EQ(a->torch_dtype, "bfloat16");
  EXPECT_TRUE(a->is_llama_family());
}

TEST(HfConfig, Transformers5RopeParameters) {
  auto a = qs::parse_hf_config(R"({"model_type": "qwen2", "hidden_size": 896, "num_attention_heads": 14,
    "num_key_value_heads": 2, "dtype": "bfloat16",
    "rope_parameters": {"rope_type": "default", "rope_theta": 1000000.0}})", "cfg");
  ASSERT_TRUE(a.ok()) << a.error().message;
  EXPECT_DOUBLE_EQ(a->rope.theta, 1000000.0);
  EXPECT_EQ(a->rope.scaling_type, "");  // "default" means no scaling
  EXPECT_EQ(a->torch_dtype, "bfloat16");
  EXPECT_EQ(a->head_dim, 64);
}

TEST(HfConfig, MissingKvHeadsMeansMultiHead) {
  auto a = qs::parse_hf_config(R"({"model_type":"llama","hidden_size":64,"num_attention_heads":8,"rope_scaling":null})", "c");
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->num_kv_heads, 8);
}

TEST(HfConfig, ErrorsNameTheFileAndTheField) {
  struct Case {
    const char* json;
    const char* expect;
  } cases[] = {
      {R"({"hidden_size": "big"})", "\"hidden_size\" must be a positive integer, got \"big\""},
      {R"({"hidden_size": -4})", "\"hidden_size\" must be a positive integer"},
      {R"({"num_hidden_layers": 2.5})", "\"num_hidden_layers\" must be a positive integer"},
      {R"({"rms_norm_eps": "tiny"})", "\"rms_norm_eps\" must be a positive number"},
      {R"({"tie_word_embeddings": "yes"})", "\"tie_word_embeddings\" must be true or false"},
      {R"({"architectures": "Llama"})", "\"architectures\" must be a list of strings"},
      {R"({"rope_scaling": 3})", "\"rope_scaling\" must be an object or null"},
      {R"({"num_attention_heads": 8, "num_key_value_heads": 3})", "not a multiple of num_key_value_heads"},
      {R"([1, 2])", "must hold a JSON object"},
      {R"({"hidden_size": 4)", "not valid JSON"},
  };
  for (const auto& c : cases) {
    auto a = qs::parse_hf_config(c.json, "/m/config.json");
    ASSERT_FALSE(a.ok()) << c.json;
    EXPECT_EQ(a.error().message.rfind("/m/config.json: ", 0), 0u) << a.error().message;
    EXPECT_NE(a.error().message.find(c.expect), std::string::npos) << c.json << " -> " << a.error().message;
  }
}

TEST(HfConfig, OversizedFileIsRefusedBeforeReading) {
  auto a = qs::read_hf_config("/dev/null/none.json");
  ASSERT_FALSE(a.ok());
  EXPECT_NE(a.error().message.find("/dev/null/none.json"), std::string::npos);
}

}  // namespace
