#pragma once
// Inputs shared by the quantization-method tests: the gptq1024 reference layer
// (W, calibration and held-out activations, their statistics), loaded once,
// and small random heavy-tailed layers.
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "quant/activation_stats.h"
#include "test_files.h"

namespace qs::test {

struct Gptq1024 {
  static constexpr std::int64_t kRows = 1024, kCols = 1024, kTokens = 4096;
  std::vector<float> w, x_cal, x_test;
  ActivationStats cal, test;  // test.h: the held-out tokens' H, for errors on unseen data

  static std::vector<float> load(const std::string& path, std::size_t n) {
    const std::string b = read_bytes(path);
    std::vector<float> v(n, 0.0f);
    std::memcpy(v.data(), b.data(), std::min(b.size(), n * 4));
    return v;
  }
  static const Gptq1024& get(const std::string& shared) {
    static const Gptq1024 c = [&] {
      const std::string dir = shared + "/cases/gptq1024/";
      Gptq1024 k;
      k.w = load(dir + "W.f32", kRows * kCols);
      k.x_cal = load(dir + "X_cal.f32", kTokens * kCols);
      k.x_test = load(dir + "X_test.f32", kTokens * kCols);
      k.cal = activation_stats(k.x_cal.data(), kTokens, kCols);
      k.test = activation_stats(k.x_test.data(), kTokens, kCols);
      return k;
    }();
    return c;
  }
};

// Student-t weights (heavy tails) times `scale`, deterministic.
inline std::vector<float> heavy_tailed(std::size_t n, float dof, std::uint32_t seed, float scale = 0.02f) {
  std::vector<float> v(n);
  std::mt19937 rng(seed);
  std::student_t_distribution<float> t(dof);
  for (auto& x : v) x = scale * t(rng);
  return v;
}

}  // namespace qs::test
