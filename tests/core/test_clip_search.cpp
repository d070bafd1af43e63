// MSE-optimal clip search: r = 1 is RTN bit for bit, never worse than RTN,
// clearly better on heavy tails, a brute-force check of the choice, gptq1024.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "method_case.h"
#include "quant/clip_search.h"
#include "quant/fake_quant.h"
#include "quant/ggml_dequant.h"
#include "quant/ggml_quantize.h"
#include "quant/int_grid.h"

namespace {

using qs::test::heavy_tailed;

TEST(ClipSearch, CandidatesRunFromOneDownToTheMinimum) {
  const auto c = qs::clip_candidates({});
  ASSERT_EQ(c.size(), 51u);  // 1.00, 0.99, ..., 0.50
  EXPECT_EQ(c.front(), 1.0f);
  EXPECT_NEAR(c.back(), 0.5f, 1e-6);
  qs::ClipSearchSpec s;
  s.step = 0.02f;
  s.min_ratio = 0.6f;
  EXPECT_EQ(qs::clip_candidates(s).size(), 21u);
}

TEST(ClipSearch, RatioOneIsRtnBitForBit) {
  const auto w = heavy_tailed(64 * 256, 3.0f, 11);
  for (const qs::IntGridSpec g : {qs::IntGridSpec{4, false, 128}, qs::IntGridSpec{3, true, 0}, qs::IntGridSpec{8, false, -1},
                                  qs::IntGridSpec{2, true, 32}}) {
    qs::ClipSearchSpec s;
    s.grid = g;
    s.min_ratio = 1.0f;
    auto c = qs::clip_search(w.data(), 64, 256, s);
    ASSERT_TRUE(c.ok()) << c.error().message;
    auto r = qs::rtn_int(w.data(), 64, 256, g);
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(c->q.codes, r->codes) << g.bits << " bits, group " << g.group_size;
    EXPECT_EQ(c->q.scales, r->scales);
    EXPECT_EQ(c->q.zeros, r->zeros);
    EXPECT_EQ(c->dequantized, qs::dequantize_int(*r));
    EXPECT_EQ(c->error.mse, c->rtn_error.mse);
  }
}

TEST(ClipSearch, NeverWorseThanRtnInTheSearchedError) {
  const std::int64_t rows = 48, cols = 256;
  std::vector<float> cw(static_cast<std::size_t>(cols));
  for (std::int64_t c = 0; c < cols; ++c) cw[static_cast<std::size_t>(c)] = 0.1f + static_cast<float>((c * 37) % 101);
  for (std::uint32_t seed = 1; seed <= 3; ++seed) {
    const auto w = heavy_tailed(static_cast<std::size_t>(rows * cols), seed == 1 ? 30.0f : 2.5f, seed);
    for (int bits : {2, 3, 4, 8})
      for (bool sym : {false, true})
        for (int group : {32, 0, -1})
          for (bool weighted : {false, true}) {
            qs::ClipSearchSpec s;
            s.grid = {bits, sym, group};
            if (weighted) s.column_weight = cw.data();
            auto c = qs::clip_search(w.data(), rows, cols, s);
            ASSERT_TRUE(c.ok()) << c.error().message;
            auto r = qs::rtn_int(w.data(), rows, cols, s.grid);
            ASSERT_TRUE(r.ok());
            const auto rq = qs::dequantize_int(*r);
            double ec = 0, er = 0;  // the searched error, recomputed here
            for (std::int64_t i = 0; i < rows * cols; ++i) {
              const double k = weighted ? cw[static_cast<std::size_t>(i % cols)] : 1.0;
              const double dc = static_cast<double>(w[static_cast<std::size_t>(i)]) - c->dequantized[static_cast<std::size_t>(i)];
              const double dr = static_cast<double>(w[static_cast<std::size_t>(i)]) - rq[static_cast<std::size_t>(i)];
              ec += k * dc * dc;
              er += k * dr * dr;
            }
            EXPECT_LE(ec, er) << bits << " bits sym " << sym << " group " << group << " weighted " << weighted << " seed " << seed;
            if (!weighted) {
              EXPECT_LE(c->error.mse, c->rtn_error.mse);
            }
            // The stored grid reproduces the dequantized weight.
            EXPECT_EQ(qs::dequantize_int(c->q), c->dequantized);
          }
  }
}

TEST(ClipSearch, MeasurablyBetterOnHeavyTails) {
  // Student-t with 2 degrees of freedom: a few huge weights per channel.
  const auto w = heavy_tailed(256 * 1024, 2.0f, 5);
  for (const qs::IntGridSpec g : {qs::IntGridSpec{4, false, 0}, qs::IntGridSpec{4, true, 128}, qs::IntGridSpec{3, false, 128}}) {
    qs::ClipSearchSpec s;
    s.grid = g;
    auto c = qs::clip_search(w.data(), 256, 1024, s);
    ASSERT_TRUE(c.ok());
    const double gain = c->rtn_error.mse / c->error.mse;
    std::printf("  clip search %d-bit %s group %d on t(2): MSE %.4g vs RTN %.4g (%.2fx lower)\n", g.bits,
                g.symmetric ? "sym" : "asym", g.group_size, c->error.mse, c->rtn_error.mse, gain);
    EXPECT_GT(gain, 1.1);
    EXPECT_GT(c->error.sqnr_db, c->rtn_error.sqnr_db);
  }
}

TEST(ClipSearch, PicksTheRatioABruteForceSearchPicks) {
  // One group of 32: 31 values within +-0.3 and one at 1.0. Brute force over
  // the same candidates with the grid formula written out here.
  std::vector<float> x(32);
  for (int i = 0; i < 31; ++i) x[static_cast<std::size_t>(i)] = 0.3f * static_cast<float>(std::sin(1.7 * i));
  x[31] = 1.0f;
  const float xmin = *std::min_element(x.begin(), x.end());
  qs::ClipSearchSpec s;
  s.grid = {3, false, 32};
  s.step = 0.05f;
  s.min_ratio = 0.2f;
  auto c = qs::clip_search(x.data(), 1, 32, s);
  ASSERT_TRUE(c.ok());
  double best_err = 1e300;
  float best_r = 0;
  for (float r : qs::clip_candidates(s)) {
    const float lo = xmin * r, hi = 1.0f * r;  // the range includes 0
    const float scale = (hi - lo) / 7.0f;
    const float zero = std::nearbyint(-lo / scale);
    double e = 0;
    for (float v : x) {
      const float q = std::clamp(std::nearbyint(v / scale) + zero, 0.0f, 7.0f);
      e += std::pow(static_cast<double>(v) - scale * (q - zero), 2);
    }
    if (e < best_err - 1e-12) best_err = e, best_r = r;
  }
  EXPECT_LT(best_r, 0.95f);  // the outlier is worth clipping
  EXPECT_FLOAT_EQ(c->ratios[0], best_r);
  EXPECT_NEAR(c->error.mse * 32, best_err, 1e-9);
}

TEST(ClipSearch, RefusesBadInput) {
  const float w[4] = {1, 2, std::nanf(""), 4};
  EXPECT_FALSE(qs::clip_search(w, 1, 4, {{4, false, 4}}).ok());
  const float ok[4] = {1, 2, 3, 4};
  qs::ClipSearchSpec s{{4, false, 4}};
  s.min_ratio = 0;
  EXPECT_FALSE(qs::clip_search(ok, 1, 4, s).ok());
  EXPECT_FALSE(qs::clip_search(ok, 1, 4, {{4, false, 3}}).ok());  // 4 columns, groups of 3
}

TEST(ClipSearch, GgmlRatioOneIsThePlainQuantizer) {
  const auto w = heavy_tailed(8 * 512, 3.0f, 17);
  for (qs::DType t : {qs::DType::Q4_0, qs::DType::Q4_1, qs::DType::Q4_K}) {
    qs::ClipSearchSpec s;
    s.min_ratio = 1.0f;
    auto c = qs::clip_search_ggml(w.data(), 8, 512, t, s);
    ASSERT_TRUE(c.ok()) << c.error().message;
    const std::size_t blocks = w.size() / qs::dtype_block_elems(t);
    std::vector<std::byte> plain(blocks * qs::dtype_block_bytes(t));
    ASSERT_TRUE(qs::quantize_ggml_blocks(t, w.data(), blocks, plain.data()).ok());
    EXPECT_EQ(c->bytes, plain) << qs::dtype_name(t);
    EXPECT_EQ(c->error.mse, c->plain_error.mse);
  }
}

TEST(ClipSearch, GgmlNeverWorseAndValidBlocks) {
  const auto w = heavy_tailed(64 * 512, 2.0f, 23);
  for (qs::DType t : {qs::DType::Q4_0, qs::DType::Q5_1, qs::DType::Q8_0, qs::DType::Q6_K}) {
    qs::ClipSearchSpec s;
    if (t == qs::DType::Q6_K) s.step = 0.05f;  // K-quants: a coarser grid, each candidate is a full block fit
    auto c = qs::clip_search_ggml(w.data(), 64, 512, t, s);
    ASSERT_TRUE(c.ok()) << c.error().message;
    // The bytes are ordinary ggml blocks that decode to the reported weight.
    std::vector<float> dec(w.size());
    ASSERT_TRUE(qs::dequantize_ggml_blocks(t, c->bytes.data(), c->ratios.size(), dec.data()));
    EXPECT_EQ(dec, c->dequantized);
    EXPECT_LE(c->error.mse, c->plain_error.mse);
    std::printf("  clip search %s on t(2): MSE %.4g vs plain %.4g (%.2fx lower)\n", std::string(qs::dtype_name(t)).c_str(),
                c->error.mse, c->plain_error.mse, c->plain_error.mse / c->error.mse);
    if (t == qs::DType::Q4_0) {
      EXPECT_LT(c->error.mse, c->plain_error.mse * 0.98);
    }
  }
}

TEST(ClipSearch, Gptq1024NeverWorseThanRtn) {
  QS_REQUIRE_SHARED();
  const auto& c = qs::test::Gptq1024::get(shared);
  const std::int64_t n = c.kRows;
  std::vector<float> diag(static_cast<std::size_t>(c.kCols));
  for (std::int64_t j = 0; j < c.kCols; ++j) diag[static_cast<std::size_t>(j)] = c.cal.h[static_cast<std::size_t>(j * c.kCols + j)];
  for (const qs::IntGridSpec g : {qs::IntGridSpec{4, false, 128}, qs::IntGridSpec{3, false, 128}, qs::IntGridSpec{4, false, 0}}) {
    for (bool weighted : {false, true}) {
      qs::ClipSearchSpec s;
      s.grid = g;
      if (weighted) s.column_weight = diag.data();
      auto r = qs::clip_search(c.w.data(), n, c.kCols, s);
      ASSERT_TRUE(r.ok());
      auto rtn = qs::rtn_int(c.w.data(), n, c.kCols, g);
      ASSERT_TRUE(rtn.ok());
      const auto rq = qs::dequantize_int(*rtn);
      const auto er = qs::layer_error(c.w.data(), rq.data(), n, c.kCols, c.cal.h.data(), c.test.h.data());
      const auto ec = qs::layer_error(c.w.data(), r->dequantized.data(), n, c.kCols, c.cal.h.data(), c.test.h.data());
      std::printf("  gptq1024 %d-bit g%d clip%s: weight MSE %.4g (RTN %.4g), rel. output error held-out %.5f (RTN %.5f)\n",
                  g.bits, g.group_size, weighted ? " diag(H)-weighted" : "", ec.weight.mse, er.weight.mse,
                  ec.rel_output_error_heldout, er.rel_output_error_heldout);
      if (weighted) {
        EXPECT_LT(ec.rel_output_error_heldout, er.rel_output_error_heldout);
      } else {
        EXPECT_LE(ec.weight.mse, er.weight.mse);
      }
    }
  }
  for (bool weighted : {false, true}) {  // a ggml target
    qs::ClipSearchSpec s;
    if (weighted) s.column_weight = diag.data();
    auto r = qs::clip_search_ggml(c.w.data(), n, c.kCols, qs::DType::Q4_0, s);
    ASSERT_TRUE(r.ok());
    std::vector<float> plain(c.w.size());
    ASSERT_TRUE(qs::fake_quantize(qs::QuantTarget::ggml(qs::DType::Q4_0), c.w.data(), n, c.kCols, plain.data()).ok());
    const auto ep = qs::layer_error(c.w.data(), plain.data(), n, c.kCols, nullptr, c.test.h.data());
    const auto ec = qs::layer_error(c.w.data(), r->dequantized.data(), n, c.kCols, nullptr, c.test.h.data());
    std::printf("  gptq1024 Q4_0 clip%s: weight MSE %.4g (plain %.4g), rel. output error held-out %.5f (plain %.5f)\n",
                weighted ? " diag(H)-weighted" : "", ec.weight.mse, ep.weight.mse, ec.rel_output_error_heldout,
                ep.rel_output_error_heldout);
    if (weighted) {
      EXPECT_LT(ec.rel_output_error_heldout, ep.rel_output_error_heldout);
    } else {
      EXPECT_LE(ec.weight.mse, ep.weight.mse);
      EXPECT_EQ(ep.weight.mse, r->plain_error.mse);
    }
  }
}

}  // namespace
