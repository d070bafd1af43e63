// The QuantScope quantized HDF5 checkpoint: written from a plan, read back by
// our reader; each tensor's values equal what the plan's quantizer gives
// (computed here independently), copies equal the source, metrics and the
// plan survive; errors name the file.
#include <gtest/gtest.h>
#include <unistd.h>

#include <hdf5.h>

#include <cmath>
#include <filesystem>
#include <map>

#include "demo/demo_model.h"
#include <hdf5.h>

#include <functional>

#include "export/h5_export.h"
#include "io/open_model.h"
#include "io/quantized_h5.h"
#include "model/convert.h"
#include "quant/ggml_dequant.h"
#include "quant/ggml_quantize.h"
#include "quant/int_grid.h"
#include "quant/layer_method.h"
#include "quant/named_format.h"
#include "quant/metrics.h"
#include "quant/plan.h"
#include "test_files.h"

namespace {

namespace fs = std::filesystem;

// The values our reader decodes for `t` are `expect`, every one bit for bit.
void expect_decodes_to(const qs::QuantizedH5& file, const qs::QuantizedH5Tensor& t, const std::vector<float>& expect) {
  auto values = qs::read_quantized_h5_values(file, t);
  ASSERT_TRUE(values.ok()) << values.error().message;
  ASSERT_EQ(values->size(), expect.size());
  std::size_t same = 0;
  for (std::size_t i = 0; i < expect.size(); ++i) same += (*values)[i] == expect[i];
  EXPECT_EQ(same, expect.size()) << t.name << " (" << t.kind << ")";
}

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
  std::map<std::string, double> readback;  // layer -> error of the values our reader decodes, against the source
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
    expect_decodes_to(*file, t, expect);
    if (t.kind != "copy") {
      EXPECT_NEAR(t.sqnr_db, qs::weight_error(w.data(), expect.data(), w.size()).sqnr_db, 1e-9) << t.name;
      readback[t.name.substr(0, t.name.size() - 7)] = qs::weight_error(w.data(), expect.data(), w.size()).sqnr_db;
    }
  }
  EXPECT_TRUE(report->verified);
  for (const auto& l : report->layers) {
    if (l.quantized) {
      ASSERT_TRUE(readback.count(l.name)) << l.name;
      EXPECT_NEAR(l.readback_sqnr_db, readback[l.name], 1e-9) << l.name;
    } else {
      EXPECT_TRUE(std::isnan(l.readback_sqnr_db)) << l.name;
    }
  }
  EXPECT_EQ(kinds[1], 2 * 5 + 1);  // q, k, o, gate, up per block + lm_head
  EXPECT_EQ(kinds[2], 2);          // v in Q8_0; down_proj rows of 352 are not whole Q4_K blocks: copied, with the reason
  for (const auto& l : report->layers) {
    if (l.name.find("down_proj") != std::string::npos) {
      EXPECT_FALSE(l.quantized) << l.name;
      EXPECT_NE(l.reason.find("not a multiple of the Q4_K block"), std::string::npos) << l.reason;
    }
  }
  auto bad = qs::read_quantized_h5((root / "src" / "config.json").string());
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message.find("config.json: not an HDF5 file"), std::string::npos) << bad.error().message;
  fs::remove_all(root);
}

// The element formats (NF4 with and without double quantization, FP8 per
// channel, MXFP4, NVFP4) and outlier keeping's side tables (single weights on
// an integer grid, whole channels on Q4_K) are stored with their codes: our
// reader decodes each to exactly what the quantization core gives, and the
// bits/weight count the table.
TEST(QuantizedH5, ElementFormatsAndOutlierTablesRoundTrip) {
  qs::test::TempDir dir;
  auto model = qs::open_model(qs::test::write_small_demo(dir.path() / "src", 1, 128, 512));
  ASSERT_TRUE(model.ok()) << model.error().message;
  auto plan = qs::parse_plan(R"({"version":1,"default":{"format":"f16"},
      "overrides":[{"match":{"role":"q"},"format":"nf4"},{"match":{"role":"k"},"format":"nf4-dq"},
                   {"match":{"role":"v"},"format":"fp8-e4m3-ch"},{"match":{"role":"o"},"format":"mxfp4"},
                   {"match":{"role":"gate"},"format":"nvfp4"},
                   {"match":{"role":"up"},"format":"int4-g64","method":"outliers","params":{"fraction":0.02}},
                   {"match":{"role":"down"},"format":"q4_k","method":"outliers","params":{"fraction":0.01,"channels":1}}]})",
                             "t");
  ASSERT_TRUE(plan.ok()) << plan.error().message;
  const std::string out = dir.file("m.qs.h5");
  auto report = qs::export_quantized_h5(*model, *plan, out, {}, qs::OpContext::none());
  ASSERT_TRUE(report.ok()) << report.error().message;
  EXPECT_TRUE(report->verified);
  auto file = qs::read_quantized_h5(out);
  ASSERT_TRUE(file.ok()) << file.error().message;
  std::map<std::string, std::string> kind_of;
  for (const auto& t : file->tensors) {
    if (t.kind == "copy") continue;
    kind_of[t.format] = t.kind + (t.outliers.empty() ? "" : "+" + t.outliers);
    const qs::TensorInfo& src = model->tensors[*model->find_tensor(t.name)];
    std::vector<float> w(src.numel()), expect(src.numel());
    ASSERT_TRUE(qs::convert_to_f32(src.dtype, src.bytes().data(), w.size(), w.data()).ok());
    const qs::QuantChoice choice = qs::parse_quant_choice(t.format).value();
    double bits = choice.bits_per_weight(src.rows(), src.cols());
    if (t.method == "outliers") {
      const qs::LayerConfig cfg{t.format, "outliers", t.outliers == "channels" ? std::map<std::string, double>{{"fraction", 0.01}, {"channels", 1}}
                                                                              : std::map<std::string, double>{{"fraction", 0.02}}};
      auto kept = qs::keep_outliers(choice, cfg, w.data(), src.rows(), src.cols(), {});
      ASSERT_TRUE(kept.ok()) << kept.error().message;
      expect = kept->dequantized;
      bits = kept->bits_per_weight;
      EXPECT_EQ(t.outlier_count, static_cast<std::int64_t>(t.outliers == "channels" ? kept->kept_columns.size() : kept->row.size()));
      EXPECT_GT(t.outlier_count, 0) << t.name;
    } else {
      ASSERT_TRUE(qs::rtn_named_format(choice.named, w.data(), src.rows(), src.cols(), expect.data()).ok()) << t.format;
    }
    expect_decodes_to(*file, t, expect);
    EXPECT_DOUBLE_EQ(t.bits_per_weight, bits) << t.name;
    EXPECT_NEAR(t.sqnr_db, qs::weight_error(w.data(), expect.data(), w.size()).sqnr_db, 1e-9) << t.name;
  }
  const std::map<std::string, std::string> want = {{"nf4", "nf4"},     {"nf4-dq", "nf4"}, {"fp8-e4m3-ch", "fp8"},
                                                   {"mxfp4", "mxfp4"}, {"nvfp4", "nvfp4"}, {"int4-g64", "int_grid+weights"},
                                                   {"q4_k", "ggml+channels"}};
  EXPECT_EQ(kind_of, want);
  // A method the HDF5 export cannot store is refused by name.
  auto gptq = qs::parse_plan(R"({"version":1,"default":{"format":"int4-g64","method":"gptq"}})", "t");
  ASSERT_TRUE(gptq.ok());
  auto refused = qs::export_quantized_h5(*model, *gptq, dir.file("g.qs.h5"), {}, qs::OpContext::none());
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.error().message.find("method \"gptq\" is not applied by hdf5"), std::string::npos) << refused.error().message;
}

// Hostile files: an attribute holding several values where the reader reads
// one (H5Aread would write past it), a dataset declared but never written (it
// would read back as fill values at any size) and an absurd shape are errors
// naming the file and the problem.
TEST(QuantizedH5, HostileAttributesDatasetsAndShapesAreRefused) {
  qs::test::TempDir dir;
  auto model = qs::open_model(qs::test::write_small_demo(dir.path() / "src", 1, 64, 128));
  ASSERT_TRUE(model.ok()) << model.error().message;
  auto plan = qs::parse_plan(R"({"version":1,"default":{"format":"int4-g32","method":"outliers"}})", "t");
  ASSERT_TRUE(plan.ok());
  const std::string good = dir.file("good.qs.h5");
  ASSERT_TRUE(qs::export_quantized_h5(*model, *plan, good, {}, qs::OpContext::none()).ok());
  auto first_quantized = [](const qs::QuantizedH5& f) {
    for (const auto& t : f.tensors)
      if (t.kind == "int_grid") return t.group;
    return -1;
  };
  auto file = qs::read_quantized_h5(good);
  ASSERT_TRUE(file.ok()) << file.error().message;
  const int group = first_quantized(*file);
  ASSERT_GE(group, 0);
  char gname[32];
  std::snprintf(gname, sizeof gname, "tensors/%06d", group);
  // Each case edits a copy of the good file with the HDF5 C API.
  auto edited = [&](const std::string& name, const std::function<void(hid_t g)>& edit) {
    const std::string path = dir.file(name);
    fs::copy_file(good, path, fs::copy_options::overwrite_existing);
    const hid_t f = H5Fopen(path.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
    const hid_t g = H5Gopen2(f, gname, H5P_DEFAULT);
    edit(g);
    H5Gclose(g);
    H5Fclose(f);
    return path;
  };
  const std::string wide_attr = edited("attr.qs.h5", [](hid_t g) {
    H5Adelete(g, "outlier_count");
    const hsize_t four = 4;
    const hid_t space = H5Screate_simple(1, &four, nullptr);
    const hid_t a = H5Acreate2(g, "outlier_count", H5T_STD_I64LE, space, H5P_DEFAULT, H5P_DEFAULT);
    const std::int64_t v[4] = {1, 2, 3, 4};
    H5Awrite(a, H5T_NATIVE_INT64, v);
    H5Aclose(a);
    H5Sclose(space);
  });
  auto r1 = qs::read_quantized_h5(wide_attr);
  ASSERT_FALSE(r1.ok());
  EXPECT_NE(r1.error().message.find("attribute outlier_count is not a single number"), std::string::npos) << r1.error().message;

  const std::string hollow = edited("hollow.qs.h5", [](hid_t g) {
    const hid_t old = H5Dopen2(g, "codes", H5P_DEFAULT);
    const hid_t space = H5Dget_space(old);
    H5Dclose(old);
    H5Ldelete(g, "codes", H5P_DEFAULT);
    H5Dclose(H5Dcreate2(g, "codes", H5T_STD_U8LE, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT));
    H5Sclose(space);
  });
  // Opened from outside, every tensor is read once (in a child) at open: refused there.
  auto vetted = qs::read_quantized_h5(hollow);
  ASSERT_FALSE(vetted.ok());
  EXPECT_NE(vetted.error().message.find("dataset codes does not hold its data in the file"), std::string::npos)
      << vetted.error().message;
  // The reader's own check, as an export's read-back (no child) meets it lazily.
  auto f2 = qs::read_quantized_h5(hollow, /*vet=*/false);
  ASSERT_TRUE(f2.ok()) << f2.error().message;
  auto v2 = qs::read_quantized_h5_values(*f2, f2->tensors[static_cast<std::size_t>(group)]);
  ASSERT_FALSE(v2.ok());
  EXPECT_NE(v2.error().message.find("dataset codes does not hold its data in the file"), std::string::npos) << v2.error().message;
  EXPECT_NE(v2.error().message.find("hollow.qs.h5"), std::string::npos) << v2.error().message;

  const std::string huge = edited("shape.qs.h5", [](hid_t g) {
    H5Adelete(g, "shape");
    const hsize_t two = 2;
    const hid_t space = H5Screate_simple(1, &two, nullptr);
    const hid_t a = H5Acreate2(g, "shape", H5T_STD_I64LE, space, H5P_DEFAULT, H5P_DEFAULT);
    const std::int64_t v[2] = {std::int64_t{1} << 32, std::int64_t{1} << 32};
    H5Awrite(a, H5T_NATIVE_INT64, v);
    H5Aclose(a);
    H5Sclose(space);
  });
  auto vetted3 = qs::read_quantized_h5(huge);  // every tensor read in the child at open: refused there
  ASSERT_FALSE(vetted3.ok());
  EXPECT_NE(vetted3.error().message.find("absurd shape"), std::string::npos) << vetted3.error().message;
  auto f3 = qs::read_quantized_h5(huge, /*vet=*/false);
  ASSERT_TRUE(f3.ok()) << f3.error().message;
  auto v3 = qs::read_quantized_h5_values(*f3, f3->tensors[static_cast<std::size_t>(group)]);
  ASSERT_FALSE(v3.ok());
  EXPECT_NE(v3.error().message.find("absurd shape"), std::string::npos) << v3.error().message;
}

// A byte of a dataset changed between the write and the read-back check (the
// test hook): the export fails naming the file and the tensor, and leaves no
// file, temporary or final. One victim per kind of dataset.
TEST(QuantizedH5, ACorruptedDatasetFailsTheExportAndLeavesNothing) {
  qs::test::TempDir dir;
  auto model = qs::open_model(qs::test::write_small_demo(dir.path() / "src", 1, 64, 96));
  ASSERT_TRUE(model.ok()) << model.error().message;
  auto plan = qs::parse_plan(R"({"version":1,"default":{"format":"int4-g32"},
      "overrides":[{"match":{"role":"v"},"format":"q8_0"}]})", "t");
  ASSERT_TRUE(plan.ok()) << plan.error().message;
  const std::string out = dir.file("m.qs.h5");
  for (const auto& [victim, dataset] : {std::pair<std::string, std::string>{"model.layers.0.mlp.up_proj.weight", "codes"},
                                        {"model.layers.0.self_attn.q_proj.weight", "scales"},
                                        {"model.layers.0.self_attn.v_proj.weight", "blocks"},
                                        {"model.norm.weight", "data"}}) {
    const auto index = model->find_tensor(victim);
    ASSERT_TRUE(index.has_value()) << victim;
    std::string temp;
    qs::H5ExportOptions o;
    o.after_write = [&](const std::string& path) {
      temp = path;
      char name[64];
      std::snprintf(name, sizeof name, "/tensors/%06zu/%s", *index, dataset.c_str());
      haddr_t at = HADDR_UNDEF;
      hid_t f = H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
      ASSERT_GE(f, 0) << path;
      hid_t ds = H5Dopen2(f, name, H5P_DEFAULT);
      if (ds >= 0) {
        at = H5Dget_offset(ds);  // contiguous storage: the data's place in the file
        H5Dclose(ds);
      }
      H5Fclose(f);
      ASSERT_NE(at, HADDR_UNDEF) << name;
      qs::test::flip_byte(path, at);
    };
    auto r = qs::export_quantized_h5(*model, *plan, out, o, qs::OpContext::none());
    ASSERT_FALSE(r.ok()) << victim;
    EXPECT_NE(r.error().message.find(out + ": verification: tensor " + victim + " does not read back as written"),
              std::string::npos)
        << r.error().message;
    EXPECT_FALSE(temp.empty());
    EXPECT_FALSE(fs::exists(temp)) << "the temporary file is left";
    EXPECT_FALSE(fs::exists(out));
  }
  auto ok = qs::export_quantized_h5(*model, *plan, out, {}, qs::OpContext::none());
  ASSERT_TRUE(ok.ok()) << ok.error().message;
  EXPECT_TRUE(ok->verified);
}

}  // namespace
