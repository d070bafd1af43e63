// Layer grouping and roles from tensor names.
#include <gtest/gtest.h>

#include "model/model.h"

namespace {

qs::TensorInfo tensor(std::string name, std::vector<std::int64_t> shape) {
  qs::TensorInfo t;
  t.name = std::move(name);
  t.shape = std::move(shape);
  t.dtype = qs::DType::F16;
  return t;
}

TEST(ModelGrouping, LlamaNamesGetBlocksRolesAndModelOrder) {
  qs::Model m;
  m.arch.model_type = "qwen2";
  for (std::string n : {"lm_head.weight", "model.norm.weight"}) m.tensors.push_back(tensor(n, n == "lm_head.weight" ? std::vector<std::int64_t>{10, 4} : std::vector<std::int64_t>{4}));
  for (int b : {1, 0}) {
    const std::string p = "model.layers." + std::to_string(b) + ".";
    for (std::string s : {"mlp.down_proj", "mlp.up_proj", "mlp.gate_proj", "self_attn.o_proj", "self_attn.v_proj",
                          "self_attn.k_proj", "self_attn.q_proj"})
      m.tensors.push_back(tensor(p + s + ".weight", {4, 4}));
    m.tensors.push_back(tensor(p + "self_attn.q_proj.bias", {4}));
    m.tensors.push_back(tensor(p + "input_layernorm.weight", {4}));
  }
  m.tensors.push_back(tensor("model.embed_tokens.weight", {10, 4}));
  qs::group_layers(m);
  ASSERT_EQ(m.layers.size(), 16u);  // 2 x 7 + embed + lm_head; norms and biases are not layers
  EXPECT_EQ(m.layers.front().role, qs::LayerRole::Embed);
  EXPECT_EQ(m.layers.back().role, qs::LayerRole::LmHead);
  const qs::LayerRole order[] = {qs::LayerRole::Q, qs::LayerRole::K, qs::LayerRole::V, qs::LayerRole::O,
                                 qs::LayerRole::Gate, qs::LayerRole::Up, qs::LayerRole::Down};
  for (int b = 0; b < 2; ++b)
    for (int i = 0; i < 7; ++i) {
      const auto& l = m.layers[static_cast<std::size_t>(1 + 7 * b + i)];
      EXPECT_EQ(l.block, b);
      EXPECT_EQ(l.role, order[i]) << l.name;
    }
  const auto& q0 = m.layers[1];
  EXPECT_EQ(q0.name, "model.layers.0.self_attn.q_proj");
  ASSERT_TRUE(q0.bias.has_value());
  EXPECT_EQ(m.tensors[*q0.bias].name, "model.layers.0.self_attn.q_proj.bias");
  EXPECT_EQ(m.block_count(), 2);
}

TEST(ModelGrouping, OtherModelsAreListedFlat) {
  qs::Model m;
  m.tensors.push_back(tensor("l1.weight", {128, 784}));
  m.tensors.push_back(tensor("l2.weight", {10, 128}));
  m.tensors.push_back(tensor("layers.x.weight", {2, 2}));  // not a block number
  qs::group_layers(m);
  ASSERT_EQ(m.layers.size(), 3u);
  for (const auto& l : m.layers) {
    EXPECT_EQ(l.block, -1);
    EXPECT_EQ(l.role, qs::LayerRole::Other);
  }
  EXPECT_EQ(m.block_count(), 0);
}

}  // namespace

namespace {

TEST(ModelGrouping, BlockAndNormFromNamesAlone) {
  std::string_view rest;
  EXPECT_EQ(qs::tensor_block("model.layers.12.self_attn.q_proj.weight", &rest), 12);
  EXPECT_EQ(rest, "self_attn.q_proj.weight");
  EXPECT_EQ(qs::tensor_block("blk.3.ffn_norm.weight", &rest), 3);
  EXPECT_EQ(rest, "ffn_norm.weight");
  EXPECT_EQ(qs::tensor_block("layers.x.weight"), -1);
  EXPECT_EQ(qs::tensor_block("model.layers..weight"), -1);
  EXPECT_EQ(qs::tensor_block("lm_head.weight"), -1);
  for (const char* n : {"model.layers.0.input_layernorm.weight", "model.layers.0.post_attention_layernorm.weight",
                        "model.norm.weight", "blk.0.attn_norm.weight", "blk.0.ffn_norm.weight", "output_norm.weight"})
    EXPECT_TRUE(qs::is_norm_tensor(n)) << n;
  for (const char* n : {"model.layers.0.self_attn.q_proj.weight", "output.weight", "token_embd.weight"})
    EXPECT_FALSE(qs::is_norm_tensor(n)) << n;
}

}  // namespace
