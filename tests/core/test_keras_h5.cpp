// Keras HDF5: the real Keras 2 model checked against h5dump output, files we
// write with the HDF5 C API (weights-only, Keras 3 naming, chunked data), and
// broken files.
#include <gtest/gtest.h>
#include <hdf5.h>

#include <cstring>
#include <fstream>
#include <regex>

#include "backend/cpu_backend.h"
#include "io/open_model.h"
#include "test_files.h"

namespace {

// Every number in an h5dump text (after its DATA { line), in file order.
std::vector<float> h5dump_values(const std::string& file) {
  std::ifstream in(std::string(QS_TEST_DATA) + "/keras_mnist1/" + file);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  text = text.substr(text.find("DATA {") + 6);
  std::vector<float> v;
  static const std::regex num(R"([-+]?[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)");
  for (std::sregex_iterator it(text.begin(), text.end(), num), end; it != end; ++it) v.push_back(std::stof(it->str()));
  return v;
}

std::vector<float> raw_floats(const qs::TensorInfo& t) {
  std::vector<float> v(t.numel());
  std::memcpy(v.data(), t.bytes().data(), t.nbytes);
  return v;
}

TEST(KerasH5, Mnist1OpensWithLayersShapesAndValues) {
  QS_REQUIRE_SHARED();
  testing::internal::CaptureStderr();
  auto m = qs::open_model(shared + "/models/keras-mnist-cnn/mnist1.h5");
  EXPECT_EQ(testing::internal::GetCapturedStderr(), "");
  ASSERT_TRUE(m.ok()) << m.error().message;
  EXPECT_EQ(m->format, qs::ModelFormat::KerasH5);
  EXPECT_EQ(m->arch.architectures.at(0), "Sequential");
  ASSERT_EQ(m->layers.size(), 4u);
  EXPECT_EQ(m->tensors.size(), 8u);  // kernel + bias of 4 layers; optimizer state is not a model tensor
  const char* names[] = {"conv2d_1", "conv2d_2", "dense_1", "dense_2"};
  const std::vector<std::int64_t> shapes[] = {{8, 1, 3, 3}, {16, 8, 3, 3}, {100, 400}, {10, 100}};
  for (int i = 0; i < 4; ++i) {
    const auto& l = m->layers[static_cast<std::size_t>(i)];
    EXPECT_EQ(l.name, names[i]);
    const auto& w = m->tensors[l.weight];
    EXPECT_EQ(w.shape, shapes[i]) << l.name;
    EXPECT_TRUE(w.channels_last);
    EXPECT_EQ(w.dtype, qs::DType::F32);
    ASSERT_TRUE(l.bias.has_value());
    EXPECT_EQ(m->tensors[*l.bias].shape, std::vector<std::int64_t>{shapes[i][0]});
  }
  EXPECT_EQ(m->tensors[m->layers[0].weight].name, "conv2d_1/kernel:0");

  // Values as h5dump prints them (9 significant digits round-trip a float).
  const auto& conv = m->tensors[m->layers[0].weight];
  EXPECT_EQ(raw_floats(conv), h5dump_values("conv2d_1_kernel.h5dump.txt"));
  EXPECT_EQ(raw_floats(m->tensors[*m->layers[0].bias]), h5dump_values("conv2d_1_bias.h5dump.txt"));
  const auto& dense = m->tensors[m->layers[3].weight];
  const auto stored = h5dump_values("dense_2_kernel.h5dump.txt");  // [in=100, out=10]
  ASSERT_EQ(stored.size(), 1000u);
  EXPECT_EQ(raw_floats(dense), stored);
  EXPECT_EQ(raw_floats(m->tensors[*m->layers[3].bias]), h5dump_values("dense_2_bias.h5dump.txt"));

  // Per-output-channel statistics follow our convention: 10 rows (outputs) for dense_2, 8 for conv2d_1.
  auto ch = qs::cpu_backend()->channel_absmax(qs::TensorData::of(dense), qs::OpContext::none());
  ASSERT_TRUE(ch.ok());
  ASSERT_EQ(ch->rows.size(), 10u);
  ASSERT_EQ(ch->cols.size(), 100u);
  for (int o = 0; o < 10; ++o) {
    float want = 0;
    for (int i = 0; i < 100; ++i) want = std::max(want, std::fabs(stored[static_cast<std::size_t>(i * 10 + o)]));
    EXPECT_EQ(ch->rows[static_cast<std::size_t>(o)], want);
  }
  auto cc = qs::cpu_backend()->channel_absmax(qs::TensorData::of(conv), qs::OpContext::none());
  ASSERT_TRUE(cc.ok());
  EXPECT_EQ(cc->rows.size(), 8u);
  EXPECT_EQ(cc->cols.size(), 9u);
}

// Writes a Keras-style weights-only file: root layer_names, one group per
// layer with weight_names, datasets under nested groups.
class KerasWriter {
 public:
  explicit KerasWriter(const std::string& path) { file_ = H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT); }
  ~KerasWriter() { H5Fclose(file_); }
  void strings(hid_t obj, const char* name, const std::vector<std::string>& v, bool variable = false) {
    hsize_t n = v.size();
    hid_t space = H5Screate_simple(1, &n, nullptr);
    hid_t type = H5Tcopy(H5T_C_S1);
    if (variable) {
      H5Tset_size(type, H5T_VARIABLE);
      std::vector<const char*> p;
      for (auto& s : v) p.push_back(s.c_str());
      hid_t a = H5Acreate2(obj, name, type, space, H5P_DEFAULT, H5P_DEFAULT);
      H5Awrite(a, type, p.data());
      H5Aclose(a);
    } else {
      std::size_t len = 1;
      for (auto& s : v) len = std::max(len, s.size());
      H5Tset_size(type, len);
      H5Tset_strpad(type, H5T_STR_NULLPAD);
      std::vector<char> buf(v.size() * len, '\0');
      for (std::size_t i = 0; i < v.size(); ++i) std::memcpy(&buf[i * len], v[i].data(), v[i].size());
      hid_t a = H5Acreate2(obj, name, type, space, H5P_DEFAULT, H5P_DEFAULT);
      H5Awrite(a, type, buf.data());
      H5Aclose(a);
    }
    H5Tclose(type);
    H5Sclose(space);
  }
  void dataset(hid_t group, const std::string& path, const std::vector<hsize_t>& dims, const std::vector<float>& v,
               bool chunked) {
    hid_t lcpl = H5Pcreate(H5P_LINK_CREATE);
    H5Pset_create_intermediate_group(lcpl, 1);
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    if (chunked) H5Pset_chunk(dcpl, static_cast<int>(dims.size()), dims.data());
    hid_t space = H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr);
    hid_t ds = H5Dcreate2(group, path.c_str(), H5T_IEEE_F32LE, space, lcpl, dcpl, H5P_DEFAULT);
    H5Dwrite(ds, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, v.data());
    H5Dclose(ds);
    H5Sclose(space);
    H5Pclose(dcpl);
    H5Pclose(lcpl);
  }
  hid_t file_;
};

TEST(KerasH5, WeightsOnlyFileWithKeras3NamesAndChunkedData) {
  qs::test::TempDir dir;
  const std::string path = dir.file("w.h5");
  std::vector<float> kernel(3 * 2), bias{0.5f, -0.5f};
  for (std::size_t i = 0; i < kernel.size(); ++i) kernel[i] = static_cast<float>(i) - 2.5f;  // [in=3, out=2]
  {
    KerasWriter w(path);
    w.strings(w.file_, "layer_names", {"dense", "dropout"});
    hid_t g = H5Gcreate2(w.file_, "dense", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    w.strings(g, "weight_names", {"dense/kernel", "dense/bias"}, /*variable=*/true);
    w.dataset(g, "dense/kernel", {3, 2}, kernel, /*chunked=*/true);
    w.dataset(g, "dense/bias", {2}, bias, false);
    H5Gclose(g);
    hid_t d = H5Gcreate2(w.file_, "dropout", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    w.strings(d, "weight_names", {});
    H5Gclose(d);
  }
  auto m = qs::open_model(path);
  ASSERT_TRUE(m.ok()) << m.error().message;
  ASSERT_EQ(m->layers.size(), 1u);
  const auto& k = m->tensors[m->layers[0].weight];
  EXPECT_EQ(k.name, "dense/kernel");
  EXPECT_EQ(k.shape, (std::vector<std::int64_t>{2, 3}));
  EXPECT_EQ(raw_floats(k), kernel);  // read from chunked storage, still in stored order
  auto s = qs::cpu_backend()->tensor_stats(qs::TensorData::of(k), {}, qs::OpContext::none());
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->min, -2.5);
  EXPECT_EQ(s->max, 2.5);
}

TEST(KerasH5, MissingDatasetIsNamed) {
  qs::test::TempDir dir;
  const std::string path = dir.file("bad.h5");
  {
    KerasWriter w(path);
    w.strings(w.file_, "layer_names", {"dense"});
    hid_t g = H5Gcreate2(w.file_, "dense", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    w.strings(g, "weight_names", {"dense/kernel:0"});
    H5Gclose(g);
  }
  auto m = qs::open_model(path);
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.error().message.find("\"dense/kernel:0\" is listed in weight_names but missing"), std::string::npos)
      << m.error().message;
}

TEST(KerasH5, TruncatedFileGivesOneReadableErrorAndPrintsNothing) {
  QS_REQUIRE_SHARED();
  qs::test::TempDir dir;
  const std::string path = dir.file("cut.h5");
  const std::string bytes = qs::test::read_bytes(shared + "/models/keras-mnist-cnn/mnist1.h5");
  qs::test::write_bytes(path, bytes.substr(0, 30000));
  testing::internal::CaptureStderr();
  auto m = qs::open_model(path);
  const std::string printed = testing::internal::GetCapturedStderr();
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.error().message.find(path), std::string::npos);
  EXPECT_EQ(m.error().message.find('\n'), std::string::npos) << m.error().message;
  EXPECT_EQ(printed, "") << "HDF5 printed to stderr";
}

TEST(KerasH5, HdfFileWithoutKerasLayoutSaysSo) {
  qs::test::TempDir dir;
  const std::string path = dir.file("plain.h5");
  { KerasWriter w(path); }
  auto m = qs::open_model(path);
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.error().message.find("no Keras layer_names"), std::string::npos) << m.error().message;
}

}  // namespace
