// The CUDA backend's quantization ops against the CPU's, on a device (skipped,
// with the reason printed, without one):
//  - RTN: codes, scales, zeros and dequantized values bit-identical (the kernel
//    runs grid_math.h's IEEE steps with FMA contraction off); MSE within 1e-6
//    relative (double sums in another order), max error exact;
//  - Hessian: within 1e-5 relative to the largest entry (F32 sums in another order);
//  - GPTQ: >= 99 % identical codes and held-out relative output error within
//    0.5 % of the CPU's on gptq1024 (different but equivalent formulations);
//    cases the device does not take give the CPU's result exactly.
// Every comparison prints its max abs / rel differences for the record.
#include <gtest/gtest.h>

#include <Eigen/Dense>
#include <chrono>
#include <cmath>
#include <cstdio>

#include "backend/cpu_backend.h"
#include "synthetic_calibration.h"
#include "calib/llama_forward.h"
#include "calib/spm_tokenizer.h"
#include "cuda_device.h"
#include "io/open_model.h"
#include "gptq_emulation.h"
#include "method_case.h"
#include "quant/gptq.h"
#include "quant/int_grid.h"
#include "quant/metrics.h"
#include "util/half.h"

namespace {

using qs::test::cuda_or_skip_reason;
using Clock = std::chrono::steady_clock;

double ms_since(Clock::time_point t) { return std::chrono::duration<double, std::milli>(Clock::now() - t).count(); }

struct Diff {
  std::size_t mismatches = 0, first = 0;
  double max_abs = 0, max_rel = 0;
};
template <class T>
Diff compare(const std::vector<T>& a, const std::vector<T>& b) {
  Diff d;
  if (a.size() != b.size()) {
    d.mismatches = std::max(a.size(), b.size());
    return d;
  }
  for (std::size_t i = 0; i < a.size(); ++i) {
    const double x = static_cast<double>(a[i]), y = static_cast<double>(b[i]);
    if (a[i] != b[i] && !(x != x && y != y)) {
      if (d.mismatches++ == 0) d.first = i;
    }
    const double ad = std::abs(x - y);
    d.max_abs = std::max(d.max_abs, ad);
    if (y != 0) d.max_rel = std::max(d.max_rel, ad / std::abs(y));
  }
  return d;
}

std::vector<float> test_weights(std::int64_t rows, std::int64_t cols) {
  auto w = qs::test::heavy_tailed(static_cast<std::size_t>(rows * cols), 3.0f, 41);
  for (std::int64_t c = 0; c < cols; ++c) {
    w[static_cast<std::size_t>(cols + c)] = 0.0f;  // a zero row
    w[static_cast<std::size_t>(2 * cols + c)] = c % 7 == 0 ? -0.0f : static_cast<float>((c % 33) - 16) / 16.0f;  // ties
    w[static_cast<std::size_t>(3 * cols + c)] *= c == 5 ? 300.0f : 1.0f;  // one outlier
  }
  return w;
}

TEST(CudaQuantParity, RtnBitIdenticalWithCpu) {
  std::string why;
  auto gpu = cuda_or_skip_reason(why);
  if (!gpu) GTEST_SKIP() << "no usable CUDA device: " << why;
  auto cpu = qs::cpu_backend();
  const std::int64_t rows = 1000, cols = 4096;
  const auto w = test_weights(rows, cols);
  std::vector<std::uint16_t> h(w.size()), b(w.size());
  for (std::size_t i = 0; i < w.size(); ++i) {
    h[i] = qs::f32_to_f16(w[i]);
    b[i] = qs::f32_to_bf16(w[i]);
  }
  const qs::IntGridSpec specs[] = {{4, false, 128}, {4, true, 128}, {3, false, 64}, {2, false, 32}, {8, true, 0},
                                   {4, false, 0},   {4, false, -1}, {5, true, -1},  {6, false, 256}, {7, true, 4096}};
  for (qs::DType dt : {qs::DType::F32, qs::DType::F16, qs::DType::BF16}) {
    const void* p = dt == qs::DType::F32 ? static_cast<const void*>(w.data()) : dt == qs::DType::F16 ? h.data() : b.data();
    const qs::TensorData d{dt, static_cast<const std::byte*>(p), w.size(), rows, cols};
    for (const auto& spec : specs) {
      qs::IntQuantized qc, qg;
      std::vector<float> dc(w.size()), dg(w.size());
      auto ec = cpu->rtn_int(d, spec, qc, dc.data(), qs::OpContext::none());
      auto t0 = Clock::now();
      auto eg = gpu->rtn_int(d, spec, qg, dg.data(), qs::OpContext::none());
      const double gpu_ms = ms_since(t0);
      ASSERT_TRUE(ec.ok()) << ec.error().message;
      ASSERT_TRUE(eg.ok()) << eg.error().message;
      const Diff codes = compare(qg.codes, qc.codes), scales = compare(qg.scales, qc.scales),
                 zeros = compare(qg.zeros, qc.zeros), deq = compare(dg, dc);
      const double mse_rel = std::abs(eg->mse - ec->mse) / ec->mse;
      std::printf("RTN %s int%d %s g%d: codes %zu differ, scales %zu (max rel %.3g), zeros %zu, dequantized max abs %.3g; "
                  "mse cpu %.9g gpu %.9g (rel %.3g), sqnr diff %.3g dB, max err cpu %.9g gpu %.9g; gpu %.1f ms\n",
                  std::string(qs::dtype_name(dt)).c_str(), spec.bits, spec.symmetric ? "sym" : "asym", spec.group_size,
                  codes.mismatches, scales.mismatches, scales.max_rel, zeros.mismatches, deq.max_abs, ec->mse, eg->mse,
                  mse_rel, eg->sqnr_db - ec->sqnr_db, ec->max_abs, eg->max_abs, gpu_ms);
      EXPECT_EQ(codes.mismatches, 0u) << "first at " << codes.first;
      EXPECT_EQ(scales.mismatches, 0u) << "first at " << scales.first;
      EXPECT_EQ(zeros.mismatches, 0u) << "first at " << zeros.first;
      EXPECT_EQ(deq.mismatches, 0u) << "first at " << deq.first;
      EXPECT_EQ(qg.groups_per_row, qc.groups_per_row);
      EXPECT_LE(mse_rel, 1e-6);
      EXPECT_NEAR(eg->sqnr_db, ec->sqnr_db, 1e-5);
      EXPECT_EQ(eg->max_abs, ec->max_abs);
    }
  }
  // Without a dequantized buffer: the same codes; the buffers of `q` are reused.
  const qs::TensorData d{qs::DType::F32, reinterpret_cast<const std::byte*>(w.data()), w.size(), rows, cols};
  qs::IntQuantized qc, qg;
  ASSERT_TRUE(cpu->rtn_int(d, {4, false, 128}, qc, nullptr, qs::OpContext::none()).ok());
  ASSERT_TRUE(gpu->rtn_int(d, {4, false, 128}, qg, nullptr, qs::OpContext::none()).ok());
  EXPECT_EQ(qg.codes, qc.codes);
}

TEST(CudaQuantParity, RtnRefusesWhatCpuRefuses) {
  std::string why;
  auto gpu = cuda_or_skip_reason(why);
  if (!gpu) GTEST_SKIP() << "no usable CUDA device: " << why;
  auto cpu = qs::cpu_backend();
  auto w = test_weights(64, 256);
  w[1000] = NAN;
  for (int g : {64, 0, -1}) {
    const qs::TensorData d{qs::DType::F32, reinterpret_cast<const std::byte*>(w.data()), w.size(), 64, 256};
    qs::IntQuantized q;
    auto ec = cpu->rtn_int(d, {4, false, g}, q, nullptr, qs::OpContext::none());
    auto eg = gpu->rtn_int(d, {4, false, g}, q, nullptr, qs::OpContext::none());
    ASSERT_FALSE(ec.ok());
    ASSERT_FALSE(eg.ok());
    EXPECT_EQ(eg.error().message, ec.error().message);
  }
  const qs::TensorData d{qs::DType::F32, reinterpret_cast<const std::byte*>(w.data()), w.size(), 64, 256};
  qs::IntQuantized q;
  auto eg = gpu->rtn_int(d, {4, false, 100}, q, nullptr, qs::OpContext::none());
  ASSERT_FALSE(eg.ok());
  EXPECT_NE(eg.error().message.find("multiple of the group size"), std::string::npos) << eg.error().message;
}

TEST(CudaQuantParity, HessianWithinOneInHundredThousand) {
  std::string why;
  auto gpu = cuda_or_skip_reason(why);
  if (!gpu) GTEST_SKIP() << "no usable CUDA device: " << why;
  for (std::int64_t cols : {1024, 333}) {
    auto x = qs::test::heavy_tailed(static_cast<std::size_t>(2000 * cols), 5.0f, 7, 1.0f);
    for (std::int64_t t = 0; t < 2000; ++t) x[static_cast<std::size_t>(t * cols + 3)] *= 50.0f;  // an outlier channel
    auto ac = qs::cpu_backend()->hessian_accumulator(cols);
    auto ag = gpu->hessian_accumulator(cols);
    ASSERT_TRUE(ac.ok() && ag.ok()) << (ag.ok() ? "" : ag.error().message);
    for (auto [r0, n] : {std::pair<std::int64_t, std::int64_t>{0, 700}, {700, 1300}}) {
      ASSERT_TRUE((*ac)->add(x.data() + r0 * cols, n).ok());
      auto r = (*ag)->add(x.data() + r0 * cols, n);
      ASSERT_TRUE(r.ok()) << r.error().message;
    }
    std::vector<float> hc(static_cast<std::size_t>(cols * cols)), hg(hc.size());
    ASSERT_TRUE((*ac)->read(hc.data()).ok());
    auto r = (*ag)->read(hg.data());
    ASSERT_TRUE(r.ok()) << r.error().message;
    double scale = 0;
    for (float v : hc) scale = std::max(scale, static_cast<double>(std::abs(v)));
    const Diff d = compare(hg, hc);
    bool symmetric = true;
    for (std::int64_t i = 0; i < cols; ++i)
      for (std::int64_t j = 0; j < i; ++j)
        symmetric = symmetric && hg[static_cast<std::size_t>(i * cols + j)] == hg[static_cast<std::size_t>(j * cols + i)];
    std::printf("Hessian %lld cols, 2000 rows in 2 chunks: max abs diff %.4g (%.3g of max |H| %.4g), max rel %.3g\n",
                static_cast<long long>(cols), d.max_abs, d.max_abs / scale, scale, d.max_rel);
    EXPECT_LE(d.max_abs, 1e-5 * scale);
    EXPECT_TRUE(symmetric);
  }
}

struct GptqCase {
  std::vector<float> w, h, h_test;
  static const GptqCase& get(const std::string& shared) {
    static const GptqCase c = [&] {
      GptqCase k;
      const auto& g = qs::test::Gptq1024::get(shared);
      k.w = g.w;
      k.h = qs::test::Gptq1024::load(shared + "/cases/gptq1024/H_ref.f32", 1024 * 1024);
      k.h_test = g.test.h;
      return k;
    }();
    return c;
  }
};

double same_share(const std::vector<std::uint8_t>& a, const std::vector<std::uint8_t>& b) {
  std::size_t same = 0;
  for (std::size_t i = 0; i < a.size(); ++i) same += a[i] == b[i];
  return a.empty() ? 0.0 : static_cast<double>(same) / static_cast<double>(a.size());
}

TEST(CudaQuantParity, GptqOnGptq1024WithinTargets) {
  std::string why;
  auto gpu = cuda_or_skip_reason(why);
  if (!gpu) GTEST_SKIP() << "no usable CUDA device: " << why;
  QS_REQUIRE_SHARED();
  const GptqCase& c = GptqCase::get(shared);
  struct S {
    int bits, group;
    bool act, st;
  };
  for (const S s : {S{4, 128, false, false}, S{4, 128, true, false}, S{4, 128, true, true}, S{4, 0, false, false},
                    S{3, 128, false, false}, S{3, 128, true, false}, S{3, 0, true, false}}) {
    qs::GptqSpec spec;
    spec.grid = {s.bits, false, s.group};
    spec.act_order = s.act;
    spec.static_groups = s.st;
    auto t0 = Clock::now();
    auto rc = qs::cpu_backend()->gptq(c.w.data(), 1024, 1024, c.h.data(), spec, qs::OpContext::none());
    const double cpu_ms = ms_since(t0);
    t0 = Clock::now();
    auto rg = gpu->gptq(c.w.data(), 1024, 1024, c.h.data(), spec, qs::OpContext::none());
    const double gpu_ms = ms_since(t0);
    ASSERT_TRUE(rc.ok()) << rc.error().message;
    ASSERT_TRUE(rg.ok()) << rg.error().message;
    auto re = qs::test::emulate_device_gptq(c.w.data(), 1024, 1024, c.h.data(), spec);
    ASSERT_TRUE(re.ok());
    const double share = same_share(rg->codes, rc->codes), share_emu = same_share(rg->codes, re->codes);
    const double ec = qs::relative_output_error_h(c.w.data(), rc->dequantized.data(), 1024, 1024, c.h_test.data());
    const double eg = qs::relative_output_error_h(c.w.data(), rg->dequantized.data(), 1024, 1024, c.h_test.data());
    const std::string name = std::string("w") + std::to_string(s.bits) + "_g" + std::to_string(s.group) + (s.act ? "_act" : "") + (s.st ? "_static" : "");
    std::printf("GPTQ gptq1024 %s: identical codes vs cpu %.4f %%, vs host emulation %.4f %%; held-out rel. output error "
                "gpu %.6f cpu %.6f (rel diff %.3g); cpu %.0f ms, gpu %.0f ms\n",
                name.c_str(), 100 * share, 100 * share_emu, eg, ec, (eg - ec) / ec, cpu_ms, gpu_ms);
    RecordProperty("codes_same_" + name, std::to_string(share));
    RecordProperty("err_gpu_" + name, std::to_string(eg));
    RecordProperty("err_cpu_" + name, std::to_string(ec));
    EXPECT_GE(share, 0.99) << name;
    EXPECT_LE(std::abs(eg - ec), 0.005 * ec) << name;
    EXPECT_GE(share_emu, 0.99) << name;  // the device runs the emulated algorithm (only BLAS sums differ)
    EXPECT_EQ(rg->g_idx, rc->g_idx);
    EXPECT_EQ(rg->groups, rc->groups);
    ASSERT_EQ(rg->scales.size(), rc->scales.size());
    for (std::int64_t r = 0; r < 1024; r += 11)
      for (std::int64_t col = 0; col < 1024; col += 3) {
        const auto at = static_cast<std::size_t>(r * 1024 + col);
        const auto gi = static_cast<std::size_t>(r * rg->groups + rg->g_idx[static_cast<std::size_t>(col)]);
        ASSERT_EQ(rg->dequantized[at], rg->scales[gi] * (static_cast<float>(rg->codes[at]) - rg->zeros[gi]));
      }
  }
}

TEST(CudaQuantParity, GptqSmallLayersFallbacksAndRefusals) {
  std::string why;
  auto gpu = cuda_or_skip_reason(why);
  if (!gpu) GTEST_SKIP() << "no usable CUDA device: " << why;
  auto cpu = qs::cpu_backend();
  const std::int64_t rows = 70, cols = 256;  // rows not a multiple of the walk's 32
  const auto w = qs::test::heavy_tailed(static_cast<std::size_t>(rows * cols), 4.0f, 5);
  auto x = qs::test::heavy_tailed(static_cast<std::size_t>(800 * cols), 5.0f, 6, 1.0f);
  for (std::int64_t t = 0; t < 800; ++t) x[static_cast<std::size_t>(t * cols + 9)] = 0.0f;  // a dead input
  using MatF = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  const MatF H = Eigen::Map<const MatF>(x.data(), 800, cols).transpose() * Eigen::Map<const MatF>(x.data(), 800, cols);
  const std::vector<float> h(H.data(), H.data() + H.size());
  for (int bs : {128, 40, 384})
    for (bool act : {false, true}) {
      qs::GptqSpec spec;
      spec.grid = {4, true, 32};
      spec.block_size = bs;
      spec.act_order = act;
      auto rc = cpu->gptq(w.data(), rows, cols, h.data(), spec, qs::OpContext::none());
      auto rg = gpu->gptq(w.data(), rows, cols, h.data(), spec, qs::OpContext::none());
      auto re = qs::test::emulate_device_gptq(w.data(), rows, cols, h.data(), spec);
      ASSERT_TRUE(rc.ok() && rg.ok() && re.ok()) << (rg.ok() ? "" : rg.error().message);
      const double share = same_share(rg->codes, rc->codes), share_emu = same_share(rg->codes, re->codes);
      const double ec = qs::relative_output_error_h(w.data(), rc->dequantized.data(), rows, cols, h.data());
      const double eg = qs::relative_output_error_h(w.data(), rg->dequantized.data(), rows, cols, h.data());
      std::printf("GPTQ 70x256 block %d act %d: identical codes vs cpu %.3f %%, vs emulation %.3f %%; rel. error gpu %.6f cpu %.6f\n",
                  bs, act, 100 * share, 100 * share_emu, eg, ec);
      EXPECT_GE(share, 0.99);
      EXPECT_GE(share_emu, 0.99);
      EXPECT_LE(std::abs(eg - ec), 0.005 * ec);
      for (std::int64_t r = 0; r < rows; ++r) EXPECT_EQ(rg->dequantized[static_cast<std::size_t>(r * cols + 9)], 0.0f);
    }
  // What the device does not take is the CPU's result exactly.
  for (auto [block_type, bs] : {std::pair{qs::DType::Q4_0, 128}, std::pair{qs::DType::Unknown, 512}}) {
    qs::GptqSpec spec;
    spec.block_type = block_type;
    spec.block_size = bs;
    auto rc = cpu->gptq(w.data(), rows, cols, h.data(), spec, qs::OpContext::none());
    auto rg = gpu->gptq(w.data(), rows, cols, h.data(), spec, qs::OpContext::none());
    ASSERT_TRUE(rc.ok() && rg.ok());
    EXPECT_EQ(rg->codes, rc->codes);
    EXPECT_EQ(rg->dequantized, rc->dequantized);
    EXPECT_EQ(rg->ggml_blocks, rc->ggml_blocks);
  }
  // Refusals: the CPU's words.
  std::vector<float> neg(static_cast<std::size_t>(cols * cols), 0.0f);
  for (std::int64_t i = 0; i < cols; ++i) neg[static_cast<std::size_t>(i * cols + i)] = -1.0f;
  qs::GptqSpec spec;
  auto rc = cpu->gptq(w.data(), rows, cols, neg.data(), spec, qs::OpContext::none());
  auto rg = gpu->gptq(w.data(), rows, cols, neg.data(), spec, qs::OpContext::none());
  ASSERT_FALSE(rc.ok());
  ASSERT_FALSE(rg.ok());
  EXPECT_EQ(rg.error().message, rc.error().message);
  spec.grid.group_size = 100;
  rg = gpu->gptq(w.data(), rows, cols, h.data(), spec, qs::OpContext::none());
  ASSERT_FALSE(rg.ok());
  EXPECT_NE(rg.error().message.find("multiple of the group size"), std::string::npos) << rg.error().message;
  // Cancelled before it starts: Cancelled, promptly.
  qs::OpContext ctx;
  ctx.cancel();
  spec.grid.group_size = 32;
  rg = gpu->gptq(w.data(), rows, cols, h.data(), spec, ctx);
  ASSERT_FALSE(rg.ok());
  EXPECT_EQ(rg.error().code, qs::ErrorCode::Cancelled);
}

TEST(CudaQuantParity, CalibrationHessiansOnTheDevice) {
  std::string why;
  auto gpu = cuda_or_skip_reason(why);
  if (!gpu) GTEST_SKIP() << "no usable CUDA device: " << why;
  QS_REQUIRE_SHARED();
  auto src = qs::open_model(shared + "/models/stories260K/gguf/stories260K-f32.gguf");
  ASSERT_TRUE(src.ok()) << src.error().message;
  auto tok = qs::SpmTokenizer::for_model(*src);
  ASSERT_TRUE(tok.ok()) << tok.error().message;
  const auto ids = tok->encode(qs::test::read_bytes(shared + "/models/stories260K/eval/tiny_stories_eval.txt"), true);
  ASSERT_GE(ids.size(), 1024u);
  auto model = qs::LlamaModel::load(*src);
  ASSERT_TRUE(model.ok()) << model.error().message;
  const std::span<const std::int32_t> calib(ids.data(), 1024);
  auto hc = qs::test::hessians_of(*model, calib, 256, tok->bos_id());
  auto hg = qs::test::hessians_of(*model, calib, 256, tok->bos_id(), gpu.get());
  ASSERT_TRUE(hc.ok() && hg.ok()) << (hg.ok() ? "" : hg.error().message);
  ASSERT_EQ(hg->inputs.size(), hc->inputs.size());
  double worst = 0;
  for (std::size_t k = 0; k < hc->inputs.size(); ++k) {
    const std::vector<float>&hcpu = hc->inputs[k].hessian, &hgpu = hg->inputs[k].hessian;
    double scale = 0;
    for (float v : hcpu) scale = std::max(scale, static_cast<double>(std::abs(v)));
    const Diff d = compare(hgpu, hcpu);
    worst = std::max(worst, d.max_abs / scale);
    EXPECT_LE(d.max_abs, 1e-5 * scale) << "block " << hc->inputs[k].block;
  }
  std::printf("calibration Hessians of stories260K (1024 tokens) on the device: max abs diff %.3g of max |H|\n", worst);
}

}  // namespace
