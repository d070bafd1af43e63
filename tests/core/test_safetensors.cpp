// Round trips through our writer and reader, and the reference writer's exact bytes.
#include <gtest/gtest.h>

#include <cstring>

#include "io/safetensors.h"
#include "test_files.h"
#include "util/half.h"

namespace {

std::span<const std::byte> as_bytes(const std::vector<float>& v) {
  return {reinterpret_cast<const std::byte*>(v.data()), v.size() * sizeof(float)};
}

TEST(Safetensors, WritesTheReferenceBytesOfTheWorkedExample) {
  // formats.md 1.4: one F32 tensor "attn.0" [1,2,3] = 0..5, no metadata: N = 64, no padding.
  qs::test::TempDir dir;
  const std::vector<float> v{0, 1, 2, 3, 4, 5};
  ASSERT_TRUE(qs::write_safetensors(dir.file("a.safetensors"), {{"attn.0", qs::DType::F32, {1, 2, 3}, as_bytes(v)}}, {}).ok());
  const std::string header = R"({"attn.0":{"dtype":"F32","shape":[1,2,3],"data_offsets":[0,24]}})";
  ASSERT_EQ(header.size(), 64u);
  std::string data(24, '\0');
  std::memcpy(data.data(), v.data(), 24);
  EXPECT_EQ(qs::test::read_bytes(dir.file("a.safetensors")), qs::test::safetensors_bytes(header, data));
}

TEST(Safetensors, EmptyFileHasPaddedBraces) {
  qs::test::TempDir dir;
  ASSERT_TRUE(qs::write_safetensors(dir.file("e.safetensors"), {}, {}).ok());
  EXPECT_EQ(qs::test::read_bytes(dir.file("e.safetensors")), qs::test::safetensors_bytes("{}      ", ""));
  auto r = qs::read_safetensors(dir.file("e.safetensors"));
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_TRUE(r->tensors.empty());
}

TEST(Safetensors, RoundTripKeepsNamesShapesDtypesAndBytes) {
  qs::test::TempDir dir;
  std::vector<float> a(3 * 5);
  for (std::size_t i = 0; i < a.size(); ++i) a[i] = 0.25f * static_cast<float>(i) - 1.0f;
  std::vector<std::uint16_t> h(7), bf(4);
  for (std::size_t i = 0; i < h.size(); ++i) h[i] = qs::f32_to_f16(static_cast<float>(i) * 0.5f);
  for (std::size_t i = 0; i < bf.size(); ++i) bf[i] = qs::f32_to_bf16(-static_cast<float>(i));
  std::vector<std::int8_t> q(6, -3);
  auto bytes = [](const auto& v) {
    return std::span<const std::byte>(reinterpret_cast<const std::byte*>(v.data()), v.size() * sizeof(v[0]));
  };
  const std::string path = dir.file("m.safetensors");
  ASSERT_TRUE(qs::write_safetensors(path, {{"b.half", qs::DType::F16, {7}, bytes(h)},
                                           {"a.float", qs::DType::F32, {3, 5}, bytes(a)},
                                           {"c.bf", qs::DType::BF16, {2, 2}, bytes(bf)},
                                           {"d.int8", qs::DType::I8, {2, 3}, bytes(q)},
                                           {"z.empty", qs::DType::F32, {0, 4}, {}}})
                  .ok());
  auto r = qs::read_safetensors(path);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->metadata.at("format"), "pt");
  ASSERT_EQ(r->tensors.size(), 5u);
  // Reference order: 4-byte types first (by name), then 2-byte, then 1-byte.
  EXPECT_EQ(r->tensors[0].name, "a.float");
  EXPECT_EQ(r->tensors[1].name, "z.empty");
  EXPECT_EQ(r->tensors[2].name, "b.half");
  EXPECT_EQ(r->tensors[3].name, "c.bf");
  EXPECT_EQ(r->tensors[4].name, "d.int8");
  const auto& t = r->tensors[0];
  EXPECT_EQ(t.dtype, qs::DType::F32);
  EXPECT_EQ(t.shape, (std::vector<std::int64_t>{3, 5}));
  EXPECT_EQ(t.rows(), 3);
  EXPECT_EQ(t.cols(), 5);
  ASSERT_EQ(t.nbytes, a.size() * 4);
  EXPECT_EQ(std::memcmp(t.bytes().data(), a.data(), t.nbytes), 0);
  EXPECT_EQ(t.offset % 4, 0u);  // header padded to 8, big types first: aligned
  EXPECT_EQ(std::memcmp(r->tensors[2].bytes().data(), h.data(), 14), 0);
  EXPECT_EQ(r->tensors[2].offset % 2, 0u);
  EXPECT_EQ(std::memcmp(r->tensors[4].bytes().data(), q.data(), 6), 0);
  EXPECT_EQ(r->tensors[1].numel(), 0u);
}

TEST(Safetensors, WriterRefusesInconsistentInput) {
  qs::test::TempDir dir;
  std::vector<float> v(5);
  auto r = qs::write_safetensors(dir.file("x.safetensors"), {{"t", qs::DType::F32, {2, 3}, as_bytes(v)}});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("\"t\""), std::string::npos);
  EXPECT_FALSE(std::filesystem::exists(dir.file("x.safetensors")));
  // Nothing half-written is left behind either.
  EXPECT_TRUE(std::filesystem::is_empty(dir.path()));
}

TEST(Safetensors, WriteReplacesAtomicallyAndLeavesNoTemporary) {
  qs::test::TempDir dir;
  std::vector<float> v{1, 2};
  const std::string path = dir.file("w.safetensors");
  ASSERT_TRUE(qs::write_safetensors(path, {{"x", qs::DType::F32, {2}, as_bytes(v)}}).ok());
  v = {3, 4};
  ASSERT_TRUE(qs::write_safetensors(path, {{"x", qs::DType::F32, {2}, as_bytes(v)}}).ok());
  auto r = qs::read_safetensors(path);
  ASSERT_TRUE(r.ok());
  float got[2];
  std::memcpy(got, r->tensors[0].bytes().data(), 8);
  EXPECT_EQ(got[0], 3.0f);
  std::size_t files = 0;
  for (auto& e : std::filesystem::directory_iterator(dir.path())) (void)e, ++files;
  EXPECT_EQ(files, 1u);
}

TEST(Safetensors, WriteIntoMissingDirectoryNamesIt) {
  auto r = qs::write_safetensors("/nonexistent-dir-qs/x.safetensors", {});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("/nonexistent-dir-qs"), std::string::npos);
}

}  // namespace
