// The CUDA backend's host-side logic and shared arithmetic, checked on the CPU
// (no device needed): grid_math.h (the RTN kernel's per-value steps) against
// core's RTN bit for bit, the GPTQ plan against gptq(), the device GPTQ
// algorithm emulated on the host (gptq_emulation.h) against gptq() and the
// reference, and the Backend's CPU defaults for the new quantization ops.
#include <gtest/gtest.h>

#include <Eigen/Dense>
#include <cmath>
#include <cstring>
#include <cstdio>
#include <random>

#include "backend/cpu_backend.h"
#include "gptq_emulation.h"
#include "grid_math.h"
#include "method_case.h"
#include "quant/gptq.h"
#include "quant/gptq_plan.h"
#include "quant/int_grid.h"
#include "quant/metrics.h"
#include "util/half.h"

namespace {

using qs::IntGridSpec;

// The RTN kernel's algorithm on the host: per group, the range (min_of/max_of,
// any order gives the same extremes), grid_from_range, then grid_code and the
// error per value. Error sums in double per value as the kernel does.
struct Emulated {
  std::vector<std::uint8_t> codes;
  std::vector<float> scales, zeros, deq;
  double err = 0, ref = 0, max_abs = 0;
};
Emulated emulate_rtn(const std::vector<float>& w, std::int64_t rows, std::int64_t cols, const IntGridSpec& spec) {
  namespace gm = qs::grid_math;
  Emulated e;
  const std::int64_t glen = spec.group_size > 0 ? spec.group_size : cols;
  const std::int64_t gpr = cols / glen;
  e.codes.resize(w.size());
  e.deq.resize(w.size());
  float ts = 0, tz = 0;
  if (spec.group_size == -1) {
    float lo = INFINITY, hi = -INFINITY;
    for (float v : w) {
      lo = gm::min_of(lo, v);
      hi = gm::max_of(hi, v);
    }
    gm::grid_from_range(lo, hi, spec.bits, spec.symmetric, ts, tz);
  }
  const float top = static_cast<float>((1 << spec.bits) - 1);
  for (std::int64_t r = 0; r < rows; ++r)
    for (std::int64_t g = 0; g < gpr; ++g) {
      const std::int64_t base = r * cols + g * glen;
      float s = ts, z = tz;
      if (spec.group_size != -1) {
        float lo = INFINITY, hi = -INFINITY;
        for (std::int64_t c = glen - 1; c >= 0; --c) {  // reverse order on purpose: extremes do not depend on it
          lo = gm::min_of(lo, w[static_cast<std::size_t>(base + c)]);
          hi = gm::max_of(hi, w[static_cast<std::size_t>(base + c)]);
        }
        gm::grid_from_range(lo, hi, spec.bits, spec.symmetric, s, z);
      }
      e.scales.push_back(s);
      e.zeros.push_back(z);
      for (std::int64_t c = 0; c < glen; ++c) {
        const float x = w[static_cast<std::size_t>(base + c)];
        const float q = gm::grid_code(x, s, z, top);
        const float v = gm::grid_value(q, s, z);
        const float d = gm::sub_rn(x, v);
        e.codes[static_cast<std::size_t>(base + c)] = static_cast<std::uint8_t>(q);
        e.deq[static_cast<std::size_t>(base + c)] = v;
        e.err += static_cast<double>(d) * d;
        e.ref += static_cast<double>(x) * x;
        e.max_abs = std::max(e.max_abs, static_cast<double>(std::fabs(d)));
      }
    }
  return e;
}

// Weights that exercise the edge cases: heavy tails, an all-zero row, exact
// half-way quotients (values on k + 0.5 steps of a known grid), signed zeros.
std::vector<float> edgy_weights(std::int64_t rows, std::int64_t cols, std::uint32_t seed) {
  auto w = qs::test::heavy_tailed(static_cast<std::size_t>(rows * cols), 3.0f, seed);
  for (std::int64_t c = 0; c < cols; ++c) w[static_cast<std::size_t>(cols + c)] = 0.0f;  // row 1: zeros
  for (std::int64_t c = 0; c < cols; ++c)  // row 2: multiples of 1/16 and -0.0
    w[static_cast<std::size_t>(2 * cols + c)] = c % 7 == 0 ? -0.0f : static_cast<float>((c % 33) - 16) / 16.0f;
  return w;
}

TEST(CudaHostLogic, RtnArithmeticIsBitIdenticalWithCoreRtn) {
  // (On 1000 x 4096, the parity test's shape, the sums agreed within 6e-9 / 3e-8 dB.)
  const std::int64_t rows = 37, cols = 512;
  const auto w = edgy_weights(rows, cols, 5);
  int checked = 0;
  double worst_mse_rel = 0, worst_sqnr = 0;
  for (int bits = 2; bits <= 8; ++bits)
    for (bool sym : {false, true})
      for (int g : {32, 128, 0, -1}) {
        const IntGridSpec spec{bits, sym, g};
        qs::IntQuantized q;
        auto cpu = qs::rtn_int_measure_into(q, w.data(), rows, cols, spec);
        ASSERT_TRUE(cpu.ok()) << cpu.error().message;
        const Emulated e = emulate_rtn(w, rows, cols, spec);
        SCOPED_TRACE(std::string("bits ") + std::to_string(bits) + (sym ? " sym" : " asym") + " group " + std::to_string(g));
        ASSERT_EQ(e.codes, q.codes);
        ASSERT_EQ(e.scales, q.scales);
        ASSERT_EQ(e.zeros, q.zeros);
        EXPECT_EQ(e.deq, qs::dequantize_int(q));
        EXPECT_EQ(e.max_abs, cpu->max_abs);
        // The CPU sums floats in chunks of 512, the kernel sums doubles: only rounding differs.
        const double mse_rel = std::abs(e.err / static_cast<double>(rows * cols) - cpu->mse) / cpu->mse;
        const double sqnr_diff = std::abs(10 * std::log10(e.ref / e.err) - cpu->sqnr_db);
        worst_mse_rel = std::max(worst_mse_rel, mse_rel);
        worst_sqnr = std::max(worst_sqnr, sqnr_diff);
        EXPECT_LE(mse_rel, 1e-6);
        EXPECT_LE(sqnr_diff, 1e-5);
        ++checked;
      }
  EXPECT_EQ(checked, 7 * 2 * 4);
  std::printf("error sums, per-value doubles vs the CPU's chunked floats: MSE within %.3g relative, SQNR within %.3g dB\n",
              worst_mse_rel, worst_sqnr);
}

TEST(CudaHostLogic, BackendRtnDefaultMatchesCoreForEveryInputType) {
  const std::int64_t rows = 16, cols = 256;
  const auto w = edgy_weights(rows, cols, 9);
  std::vector<std::uint16_t> h(w.size()), b(w.size());
  std::vector<float> wh(w.size()), wb(w.size());
  for (std::size_t i = 0; i < w.size(); ++i) {
    h[i] = qs::f32_to_f16(w[i]);
    b[i] = qs::f32_to_bf16(w[i]);
    wh[i] = qs::f16_to_f32(h[i]);
    wb[i] = qs::bf16_to_f32(b[i]);
  }
  auto cpu = qs::cpu_backend();
  const IntGridSpec spec{4, false, 64};
  struct In {
    qs::DType t;
    const void* p;
    const std::vector<float>* as_f32;
  };
  for (const In& in : {In{qs::DType::F32, w.data(), &w}, In{qs::DType::F16, h.data(), &wh}, In{qs::DType::BF16, b.data(), &wb}}) {
    const qs::TensorData d{in.t, static_cast<const std::byte*>(in.p), w.size(), rows, cols};
    qs::IntQuantized q, ref;
    std::vector<float> deq(w.size());
    auto r = cpu->rtn_int(d, spec, q, deq.data(), qs::OpContext::none());
    ASSERT_TRUE(r.ok()) << r.error().message;
    auto e = qs::rtn_int_measure_into(ref, in.as_f32->data(), rows, cols, spec);
    ASSERT_TRUE(e.ok());
    EXPECT_EQ(q.codes, ref.codes) << qs::dtype_name(in.t);
    EXPECT_EQ(q.scales, ref.scales);
    EXPECT_EQ(deq, qs::dequantize_int(ref));
    EXPECT_EQ(r->mse, e->mse);
  }
  // F32 bytes at an odd address (a memory map need not align a tensor): the same result.
  {
    std::vector<std::byte> bytes(w.size() * sizeof(float) + 1);
    std::memcpy(bytes.data() + 1, w.data(), w.size() * sizeof(float));
    const qs::TensorData odd{qs::DType::F32, bytes.data() + 1, w.size(), rows, cols};
    qs::IntQuantized q, ref;
    auto r = cpu->rtn_int(odd, spec, q, nullptr, qs::OpContext::none());
    ASSERT_TRUE(r.ok()) << r.error().message;
    ASSERT_TRUE(qs::rtn_int_measure_into(ref, w.data(), rows, cols, spec).ok());
    EXPECT_EQ(q.codes, ref.codes);
    EXPECT_EQ(q.scales, ref.scales);
  }
  // Refusals name the problem.
  qs::IntQuantized q;
  qs::TensorData keras{qs::DType::F32, reinterpret_cast<const std::byte*>(w.data()), w.size(), rows, cols, true};
  auto r = cpu->rtn_int(keras, spec, q, nullptr, qs::OpContext::none());
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("channels-last"), std::string::npos) << r.error().message;
  qs::TensorData wrong{qs::DType::F32, reinterpret_cast<const std::byte*>(w.data()), w.size() - 1, rows, cols};
  r = cpu->rtn_int(wrong, spec, q, nullptr, qs::OpContext::none());
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("element count"), std::string::npos) << r.error().message;
  auto bad = w;
  bad[300] = NAN;
  qs::TensorData nan{qs::DType::F32, reinterpret_cast<const std::byte*>(bad.data()), bad.size(), rows, cols};
  r = cpu->rtn_int(nan, spec, q, nullptr, qs::OpContext::none());
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("weight 300 is not finite (row 1, column 44)"), std::string::npos) << r.error().message;
}

TEST(CudaHostLogic, CpuHessianAccumulatorSumsChunks) {
  const std::int64_t cols = 96;
  auto x = qs::test::heavy_tailed(static_cast<std::size_t>(500 * cols), 4.0f, 3, 1.0f);
  auto acc = qs::cpu_backend()->hessian_accumulator(cols);
  ASSERT_TRUE(acc.ok()) << acc.error().message;
  ASSERT_TRUE((*acc)->add(x.data(), 200).ok());
  ASSERT_TRUE((*acc)->add(x.data() + 200 * cols, 0).ok());
  ASSERT_TRUE((*acc)->add(x.data() + 200 * cols, 300).ok());
  std::vector<float> h(static_cast<std::size_t>(cols * cols));
  ASSERT_TRUE((*acc)->read(h.data()).ok());
  using MatD = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  const MatD X = Eigen::Map<const Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>>(x.data(), 500, cols).cast<double>();
  const MatD H = X.transpose() * X;
  double worst = 0;
  for (std::int64_t i = 0; i < cols; ++i)
    for (std::int64_t j = 0; j < cols; ++j)
      worst = std::max(worst, std::abs(h[static_cast<std::size_t>(i * cols + j)] - H(i, j)) / H.cwiseAbs().maxCoeff());
  EXPECT_LT(worst, 1e-6);
  EXPECT_FALSE(qs::cpu_backend()->hessian_accumulator(0).ok());
  auto big = qs::cpu_backend()->hessian_accumulator(qs::kMaxHessianCols + 1);
  ASSERT_FALSE(big.ok());
  EXPECT_NE(big.error().message.find("input channels"), std::string::npos);
}

// A small layer with a dead input and a few strong ones, H from random tokens.
struct SmallLayer {
  std::int64_t rows = 48, cols = 256;
  std::vector<float> w, h;
  SmallLayer() {
    w = qs::test::heavy_tailed(static_cast<std::size_t>(rows * cols), 4.0f, 21);
    auto x = qs::test::heavy_tailed(static_cast<std::size_t>(1024 * cols), 5.0f, 22, 1.0f);
    for (std::int64_t t = 0; t < 1024; ++t) {
      x[static_cast<std::size_t>(t * cols + 17)] = 0.0f;  // dead input
      x[static_cast<std::size_t>(t * cols + 200)] *= 30.0f;
    }
    using MatF = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
    const Eigen::Map<const MatF> X(x.data(), 1024, cols);
    const MatF H = X.transpose() * X;
    h.assign(H.data(), H.data() + H.size());
  }
};

TEST(CudaHostLogic, GptqPlanAgreesWithGptq) {
  const SmallLayer L;
  for (int g : {32, 0})
    for (bool act : {false, true})
      for (bool st : {false, true}) {
        qs::GptqSpec spec;
        spec.grid = {4, false, g};
        spec.act_order = act;
        spec.static_groups = st;
        spec.percdamp = 0.05;
        auto plan = qs::plan_gptq(L.w.data(), L.rows, L.cols, L.h.data(), spec);
        ASSERT_TRUE(plan.ok()) << plan.error().message;
        auto cpu = qs::gptq(L.w.data(), L.rows, L.cols, L.h.data(), spec, qs::OpContext::none());
        ASSERT_TRUE(cpu.ok());
        std::vector<int> gi(plan->g_idx.begin(), plan->g_idx.end());
        EXPECT_EQ(gi, cpu->g_idx) << "group " << g << " act " << act << " static " << st;
        EXPECT_EQ(plan->groups, cpu->groups);
        EXPECT_EQ(plan->dead[17], 1);
        EXPECT_EQ(std::count(plan->dead.begin(), plan->dead.end(), 1), 1);
        // Act-order: diagonal descending, ties by column; dead input last.
        if (act) {
          EXPECT_EQ(plan->perm.front(), 200);
          EXPECT_EQ(plan->perm.back(), 17);
          for (std::int64_t p = 1; p < L.cols; ++p) {
            const std::int32_t a = plan->perm[static_cast<std::size_t>(p - 1)], b = plan->perm[static_cast<std::size_t>(p)];
            EXPECT_TRUE(L.h[static_cast<std::size_t>(a * L.cols + a)] > L.h[static_cast<std::size_t>(b * L.cols + b)] ||
                        (L.h[static_cast<std::size_t>(a * L.cols + a)] == L.h[static_cast<std::size_t>(b * L.cols + b)] && a < b));
          }
        }
        // Damping: 5 % of the mean diagonal (dead one counted as 1), added to each entry.
        double mean = 0;
        for (std::int64_t c = 0; c < L.cols; ++c) mean += c == 17 ? 1.0 : L.h[static_cast<std::size_t>(c * L.cols + c)];
        mean /= static_cast<double>(L.cols);
        for (std::int64_t p = 0; p < L.cols; ++p) {
          const std::int32_t c = plan->perm[static_cast<std::size_t>(p)];
          const double raw = c == 17 ? 1.0 : L.h[static_cast<std::size_t>(c * L.cols + c)];
          EXPECT_NEAR(plan->damped_diag[static_cast<std::size_t>(p)], raw + 0.05 * mean, 1e-6 * (raw + 0.05 * mean));
        }
      }
}

TEST(CudaHostLogic, GptqPlanRefusesWhatGptqRefuses) {
  const SmallLayer L;
  auto same_error = [&](const qs::GptqSpec& spec, const std::vector<float>& w) {
    auto plan = qs::plan_gptq(w.data(), L.rows, L.cols, L.h.data(), spec);
    auto cpu = qs::gptq(w.data(), L.rows, L.cols, L.h.data(), spec, qs::OpContext::none());
    ASSERT_FALSE(plan.ok());
    ASSERT_FALSE(cpu.ok());
    EXPECT_EQ(plan.error().message, cpu.error().message);
  };
  qs::GptqSpec spec;
  spec.grid = {9, false, 32};
  same_error(spec, L.w);
  spec.grid = {4, false, 100};
  same_error(spec, L.w);
  spec.grid = {4, false, -1};
  same_error(spec, L.w);
  spec.grid = {4, false, 32};
  spec.block_size = 0;
  same_error(spec, L.w);
  spec.block_size = 128;
  spec.percdamp = -1;
  same_error(spec, L.w);
  spec.percdamp = 0.01;
  auto bad = L.w;
  bad[77] = INFINITY;
  same_error(spec, bad);
  spec.block_type = qs::DType::Q4_0;
  EXPECT_FALSE(qs::plan_gptq(L.w.data(), L.rows, L.cols, L.h.data(), spec).ok());
}

double same_share(const std::vector<std::uint8_t>& a, const std::vector<std::uint8_t>& b) {
  std::size_t same = 0;
  for (std::size_t i = 0; i < a.size(); ++i) same += a[i] == b[i];
  return static_cast<double>(same) / static_cast<double>(a.size());
}

TEST(CudaHostLogic, EmulatedDeviceGptqAgreesWithCpuGptqOnASmallLayer) {
  const SmallLayer L;
  for (int g : {32, 0})
    for (bool act : {false, true})
      for (bool st : {false, true}) {
        if (st && (!act || g == 0)) continue;
        for (int bs : {128, 40}) {
          qs::GptqSpec spec;
          spec.grid = {3, g == 0, g};
          spec.act_order = act;
          spec.static_groups = st;
          spec.block_size = bs;
          auto cpu = qs::gptq(L.w.data(), L.rows, L.cols, L.h.data(), spec, qs::OpContext::none());
          auto emu = qs::test::emulate_device_gptq(L.w.data(), L.rows, L.cols, L.h.data(), spec);
          ASSERT_TRUE(cpu.ok() && emu.ok());
          const double share = same_share(emu->codes, cpu->codes);
          const double ec = qs::relative_output_error_h(L.w.data(), cpu->dequantized.data(), L.rows, L.cols, L.h.data());
          const double ee = qs::relative_output_error_h(L.w.data(), emu->dequantized.data(), L.rows, L.cols, L.h.data());
          SCOPED_TRACE(std::string("group ") + std::to_string(g) + " act " + std::to_string(act) + " static " + std::to_string(st) +
                       " block " + std::to_string(bs));
          EXPECT_GE(share, 0.99) << "identical codes " << share;
          EXPECT_NEAR(ee, ec, 0.005 * ec) << "rel. output error emulated " << ee << " cpu " << ec;
          EXPECT_EQ(emu->g_idx, cpu->g_idx);
          for (std::int64_t r = 0; r < L.rows; ++r)
            for (std::int64_t c = 0; c < L.cols; c += 7) {
              const auto at = static_cast<std::size_t>(r * L.cols + c);
              const auto gi = static_cast<std::size_t>(r * emu->groups + emu->g_idx[static_cast<std::size_t>(c)]);
              ASSERT_EQ(emu->dequantized[at], emu->scales[gi] * (static_cast<float>(emu->codes[at]) - emu->zeros[gi]));
            }
        }
      }
}

TEST(CudaHostLogic, EmulatedDeviceGptqMatchesCpuOnGptq1024) {
  QS_REQUIRE_SHARED();
  const auto& c = qs::test::Gptq1024::get(shared);
  const auto h = qs::test::Gptq1024::load(shared + "/cases/gptq1024/H_ref.f32", 1024 * 1024);
  struct S {
    int bits, group;
    bool act, st;
  };
  for (const S s : {S{4, 128, false, false}, S{4, 128, true, false}, S{3, 128, true, true}, S{4, 0, false, false}}) {
    qs::GptqSpec spec;
    spec.grid = {s.bits, false, s.group};
    spec.act_order = s.act;
    spec.static_groups = s.st;
    auto cpu = qs::gptq(c.w.data(), 1024, 1024, h.data(), spec, qs::OpContext::none());
    auto emu = qs::test::emulate_device_gptq(c.w.data(), 1024, 1024, h.data(), spec);
    ASSERT_TRUE(cpu.ok() && emu.ok());
    const double share = same_share(emu->codes, cpu->codes);
    const double ec = qs::relative_output_error_h(c.w.data(), cpu->dequantized.data(), 1024, 1024, c.test.h.data());
    const double ee = qs::relative_output_error_h(c.w.data(), emu->dequantized.data(), 1024, 1024, c.test.h.data());
    const std::string name = std::string("w") + std::to_string(s.bits) + "_g" + std::to_string(s.group) + (s.act ? "_act" : "") + (s.st ? "_static" : "");
    RecordProperty("codes_same_" + name, std::to_string(share));
    RecordProperty("err_emulated_" + name, std::to_string(ee));
    RecordProperty("err_cpu_" + name, std::to_string(ec));
    std::printf("gptq1024 %s: identical codes %.4f %%, held-out rel. output error emulated %.6f, cpu %.6f\n", name.c_str(),
                100 * share, ee, ec);
    EXPECT_GE(share, 0.99) << name;
    EXPECT_NEAR(ee, ec, 0.005 * ec) << name;
  }
}

}  // namespace

#include "calib/llama_forward.h"
#include "calib/spm_tokenizer.h"
#include "io/open_model.h"
#include "quant/layer_method.h"
#include "export/fake_quant_export.h"
#include "export/gguf_export.h"
#include "export/gptq_export.h"
#include "synthetic_calibration.h"
#include "test_files.h"

namespace {

// A backend whose accumulators are the CPU's, except that it cannot hold an H
// of `refuse_cols` inputs (as a device out of memory): those stay with the caller.
class PickyBackend final : public qs::Backend {
 public:
  explicit PickyBackend(std::int64_t refuse_cols) : refuse_(refuse_cols) {}
  std::string name() const override { return "picky"; }
  std::string description() const override { return "test backend"; }
  qs::Result<qs::TensorStats> tensor_stats(const qs::TensorData& t, const qs::HistogramSpec& s, qs::OpContext& c) override {
    return qs::cpu_backend()->tensor_stats(t, s, c);
  }
  qs::Result<qs::ChannelAbsMax> channel_absmax(const qs::TensorData& t, qs::OpContext& c) override {
    return qs::cpu_backend()->channel_absmax(t, c);
  }
  qs::Result<qs::Heatmap> abs_heatmap(const qs::TensorData& t, const qs::HeatmapRequest& r, qs::OpContext& c) override {
    return qs::cpu_backend()->abs_heatmap(t, r, c);
  }
  qs::Result<std::unique_ptr<qs::HessianAccumulator>> hessian_accumulator(std::int64_t cols) override {
    ++asked;
    if (cols == refuse_) return qs::Error::backend("out of device memory (test)");
    return Backend::hessian_accumulator(cols);
  }
  qs::Result<qs::GptqResult> gptq(const float* w, std::int64_t rows, std::int64_t cols, const float* h,
                                  const qs::GptqSpec& spec, qs::OpContext& ctx) override {
    ++gptq_calls;
    return Backend::gptq(w, rows, cols, h, spec, ctx);
  }
  int asked = 0, gptq_calls = 0;

 private:
  std::int64_t refuse_;
};

TEST(CudaHostLogic, CalibrationThroughBackendAccumulatorsEqualsTheCpuSums) {
  QS_REQUIRE_SHARED();
  auto src = qs::open_model(shared + "/models/stories260K/gguf/stories260K-f32.gguf");
  ASSERT_TRUE(src.ok()) << src.error().message;
  auto tok = qs::SpmTokenizer::for_model(*src);
  ASSERT_TRUE(tok.ok()) << tok.error().message;
  const auto ids = tok->encode(qs::test::read_bytes(shared + "/models/stories260K/eval/tiny_stories_eval.txt"), true);
  ASSERT_GE(ids.size(), 512u);
  auto model = qs::LlamaModel::load(*src);
  ASSERT_TRUE(model.ok()) << model.error().message;
  const std::span<const std::int32_t> calib(ids.data(), 512);
  auto here = qs::test::hessians_of(*model, calib, 256, tok->bos_id());
  ASSERT_TRUE(here.ok()) << here.error().message;
  // The FFN width's H (down) refused: summed here, the others by the backend; all equal bit for bit.
  PickyBackend picky(model->config().ffn);
  auto there = qs::test::hessians_of(*model, calib, 256, tok->bos_id(), &picky);
  ASSERT_TRUE(there.ok()) << there.error().message;
  EXPECT_EQ(picky.asked, static_cast<int>(here->inputs.size()));
  ASSERT_EQ(there->inputs.size(), here->inputs.size());
  EXPECT_EQ(there->tokens, here->tokens);
  for (std::size_t k = 0; k < here->inputs.size(); ++k) {
    ASSERT_FALSE(here->inputs[k].hessian.empty());
    EXPECT_EQ(there->inputs[k].hessian, here->inputs[k].hessian) << k;
  }
}

TEST(CudaHostLogic, LayerMethodRunsGptqOnTheBackendItIsGiven) {
  const SmallLayer L;
  auto choice = qs::parse_quant_choice("int4-g32");
  ASSERT_TRUE(choice.ok());
  const qs::LayerConfig cfg{"int4-g32", "gptq", {{"act_order", 1}}};
  const qs::LayerInputStats stats{L.h.data(), nullptr};
  PickyBackend picky(-1);
  auto here = qs::quantize_with_method(L.w.data(), L.rows, L.cols, *choice, cfg, stats, qs::OpContext::none());
  auto there = qs::quantize_with_method(L.w.data(), L.rows, L.cols, *choice, cfg, stats, qs::OpContext::none(), &picky);
  ASSERT_TRUE(here.ok() && there.ok());
  EXPECT_EQ(picky.gptq_calls, 1);
  EXPECT_EQ(there->dequantized, here->dequantized);
}

// The exports hand GPTQ to the backend they are given (a device runs it there):
// one call per GPTQ layer, and the same file as without one.
TEST(CudaHostLogic, ExportsRunGptqOnTheBackendTheyAreGiven) {
  qs::test::TempDir dir;
  const int hidden = 128, inter = 256;
  auto model = qs::open_model(qs::test::write_small_demo(dir.path() / "src", 1, hidden, inter));
  ASSERT_TRUE(model.ok()) << model.error().message;
  const qs::ActivationCapture hs = qs::test::synthetic_capture(1, hidden, inter);
  const auto bytes = [](const std::filesystem::path& p) { return qs::test::read_bytes(p.string()); };
  auto plan = qs::parse_plan(R"({"version":1,"default":{"format":"q4_0","method":"gptq"}})", "t");
  ASSERT_TRUE(plan.ok());
  for (const bool on_backend : {false, true}) {
    PickyBackend picky(-1);
    qs::Backend* backend = on_backend ? &picky : qs::cpu_backend().get();
    const std::string tag = on_backend ? "b" : "a";
    qs::GptqExportOptions g;
    g.group_size = 64;
    g.capture = &hs;
    g.backend = backend;
    ASSERT_TRUE(qs::export_gptq(*model, dir.file("gptq-" + tag), g, qs::OpContext::none()).ok());
    qs::FakeQuantOptions f;
    f.capture = &hs;
    f.backend = backend;
    ASSERT_TRUE(qs::export_fake_quant(*model, *plan, dir.file("fq-" + tag), f, qs::OpContext::none()).ok());
    if (on_backend) {
      EXPECT_EQ(picky.gptq_calls, 2 * 7) << "q k v o gate up down, in each of the two exports";
    }
  }
  EXPECT_EQ(bytes(dir.path() / "gptq-a" / "model.safetensors"), bytes(dir.path() / "gptq-b" / "model.safetensors"));
  EXPECT_EQ(bytes(dir.path() / "fq-a" / "model.safetensors"), bytes(dir.path() / "fq-b" / "model.safetensors"));

  // GGUF (needs a SentencePiece model: stories260K), GPTQ onto Q4_0 wherever the rows allow it.
  QS_REQUIRE_SHARED();
  auto stories = qs::open_model(shared + "/models/stories260K/hf");
  ASSERT_TRUE(stories.ok()) << stories.error().message;
  const qs::ActivationCapture shs = qs::test::synthetic_capture(5, 64, 172);
  int calls = 0;
  for (const bool on_backend : {false, true}) {
    PickyBackend picky(-1);
    qs::GgufExportOptions gg{qs::LlamaFtype::Q4_0, &*plan, &shs, on_backend ? &picky : qs::cpu_backend().get()};
    auto gguf = qs::export_gguf(*stories, dir.file(on_backend ? "m-b.gguf" : "m-a.gguf"), gg, qs::OpContext::none());
    ASSERT_TRUE(gguf.ok()) << gguf.error().message;
    calls = picky.gptq_calls;
  }
  EXPECT_EQ(calls, 5 * 6) << "q k v o gate up of five blocks (the 172-wide down rows are not Q4_0 blocks)";
  EXPECT_EQ(bytes(dir.path() / "m-a.gguf"), bytes(dir.path() / "m-b.gguf"));
}

}  // namespace
