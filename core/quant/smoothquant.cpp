#include "quant/smoothquant.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "backend/lapack.h"
#include "backend/thread_pool.h"
#include "quant/int_grid.h"

namespace qs {
namespace {

// Symmetric absmax fake-quant of n values with one scale: scale = max|x| / qmax,
// code = round_half_even(x / scale) (torch.round, as the reference), clamped.
float absmax_scale(const float* x, std::int64_t n, int bits) {
  float m = 0;
  for (std::int64_t i = 0; i < n; ++i) m = std::max(m, std::fabs(x[i]));
  return m / static_cast<float>((1 << (bits - 1)) - 1);
}
float absmax_code(float x, float scale, int bits) {
  if (scale == 0.0f) return 0.0f;
  const auto qmax = static_cast<float>((1 << (bits - 1)) - 1);
  return std::clamp(detail::round_even(x / scale), -qmax, qmax);
}

// Y = A B^T for A [m, k], B [n, k] row-major (B transposed into a copy: BLAS
// here only transposes its first operand).
std::vector<float> times_transpose(const float* a, std::int64_t m, const float* b, std::int64_t n, std::int64_t k) {
  std::vector<float> bt(static_cast<std::size_t>(k * n)), y(static_cast<std::size_t>(m * n));
  for (std::int64_t i = 0; i < n; ++i)
    for (std::int64_t j = 0; j < k; ++j) bt[static_cast<std::size_t>(j * n + i)] = b[i * k + j];
  lapack::gemm(false, m, n, k, 1.0f, a, k, bt.data(), n, 0.0f, y.data(), n);
  return y;
}

double rel_sq_diff(const std::vector<float>& y, const std::vector<float>& ref) {
  double num = 0, den = 0;
  for (std::size_t i = 0; i < y.size(); ++i) {
    const double d = static_cast<double>(y[i]) - ref[i];
    num += d * d;
    den += static_cast<double>(ref[i]) * ref[i];
  }
  return den > 0 ? num / den : 0.0;
}

}  // namespace

std::vector<float> smoothquant_factors_from_max(const float* act_absmax, const float* weight_absmax, std::int64_t cols,
                                                double alpha) {
  std::vector<float> s(static_cast<std::size_t>(cols));
  for (std::int64_t c = 0; c < cols; ++c) {
    const double a = std::max(static_cast<double>(act_absmax[c]), 1e-5);
    const double wm = std::max(static_cast<double>(weight_absmax[c]), 1e-5);
    s[static_cast<std::size_t>(c)] = static_cast<float>(std::max(std::pow(a, alpha) / std::pow(wm, 1.0 - alpha), 1e-5));
  }
  return s;
}

std::vector<float> smoothquant_factors(const float* act_absmax, const float* w, std::int64_t rows, std::int64_t cols,
                                       double alpha) {
  std::vector<float> wmax(static_cast<std::size_t>(cols), 0.0f);
  for (std::int64_t r = 0; r < rows; ++r)
    for (std::int64_t c = 0; c < cols; ++c)
      wmax[static_cast<std::size_t>(c)] = std::max(wmax[static_cast<std::size_t>(c)], std::fabs(w[r * cols + c]));
  return smoothquant_factors_from_max(act_absmax, wmax.data(), cols, alpha);
}

void fake_quant_activation_rows(float* x, std::int64_t rows, std::int64_t cols, int bits, const float* s) {
  for (std::int64_t r = 0; r < rows; ++r) {
    float* row = x + r * cols;
    if (s)
      for (std::int64_t c = 0; c < cols; ++c) row[c] /= s[c];
    const float sc = absmax_scale(row, cols, bits);
    for (std::int64_t c = 0; c < cols; ++c) row[c] = sc * absmax_code(row[c], sc, bits);
  }
}

namespace {

// `ref`: X W^T when the caller has it (the alpha sweep reuses it); `split`: also
// the weight-only and activation-only errors (two more GEMMs).
Result<W8A8Error> w8a8(const float* w, std::int64_t rows, std::int64_t cols, const float* x, std::int64_t tokens,
                       const float* s, const SmoothQuantSpec& spec, const std::vector<float>* ref_given, bool split) {
  if (spec.weight_bits < 2 || spec.weight_bits > 8 || spec.act_bits < 2 || spec.act_bits > 8)
    return Error::invalid("SmoothQuant: weight and activation bits must be 2..8");
  if (rows <= 0 || cols <= 0 || tokens <= 0) return Error::invalid("SmoothQuant: empty weight or activations");
  ThreadPool& pool = ThreadPool::global();
  const auto n_w = static_cast<std::size_t>(rows * cols), n_x = static_cast<std::size_t>(tokens * cols);
  std::vector<float> ws(n_w), wq(n_w), xs(n_x), xq(n_x);
  pool.parallel_for(static_cast<std::size_t>(rows), [&](std::size_t r, unsigned) {
    const std::size_t at = r * static_cast<std::size_t>(cols);
    for (std::int64_t c = 0; c < cols; ++c) ws[at + static_cast<std::size_t>(c)] = s ? w[at + static_cast<std::size_t>(c)] * s[c] : w[at + static_cast<std::size_t>(c)];
    const float sc = absmax_scale(ws.data() + at, cols, spec.weight_bits);
    for (std::int64_t c = 0; c < cols; ++c) wq[at + static_cast<std::size_t>(c)] = sc * absmax_code(ws[at + static_cast<std::size_t>(c)], sc, spec.weight_bits);
  });
  pool.parallel_for(static_cast<std::size_t>(tokens), [&](std::size_t t, unsigned) {
    const std::size_t at = t * static_cast<std::size_t>(cols);
    for (std::int64_t c = 0; c < cols; ++c) xs[at + static_cast<std::size_t>(c)] = s ? x[at + static_cast<std::size_t>(c)] / s[c] : x[at + static_cast<std::size_t>(c)];
  });
  const float tensor_scale = spec.act_per_token ? 0.0f : absmax_scale(xs.data(), static_cast<std::int64_t>(n_x), spec.act_bits);
  pool.parallel_for(static_cast<std::size_t>(tokens), [&](std::size_t t, unsigned) {
    const std::size_t at = t * static_cast<std::size_t>(cols);
    const float sc = spec.act_per_token ? absmax_scale(xs.data() + at, cols, spec.act_bits) : tensor_scale;
    for (std::int64_t c = 0; c < cols; ++c) xq[at + static_cast<std::size_t>(c)] = sc * absmax_code(xs[at + static_cast<std::size_t>(c)], sc, spec.act_bits);
  });
  W8A8Error e;
  e.weight = weight_error(ws.data(), wq.data(), n_w);
  e.activation = weight_error(xs.data(), xq.data(), n_x);
  for (float v : ws) e.weight_absmax = std::max(e.weight_absmax, static_cast<double>(std::fabs(v)));
  for (float v : xs) e.act_absmax = std::max(e.act_absmax, static_cast<double>(std::fabs(v)));
  std::vector<float> own;
  if (!ref_given) own = times_transpose(x, tokens, w, rows, cols);
  const std::vector<float>& ref = ref_given ? *ref_given : own;
  e.rel_output_error = rel_sq_diff(times_transpose(xq.data(), tokens, wq.data(), rows, cols), ref);
  if (split) {
    e.rel_output_error_weight_only = rel_sq_diff(times_transpose(xs.data(), tokens, wq.data(), rows, cols), ref);
    e.rel_output_error_act_only = rel_sq_diff(times_transpose(xq.data(), tokens, ws.data(), rows, cols), ref);
  }
  return e;
}

std::vector<float> column_absmax(const float* x, std::int64_t tokens, std::int64_t cols) {
  std::vector<float> amax(static_cast<std::size_t>(cols), 0.0f);
  for (std::int64_t t = 0; t < tokens; ++t)
    for (std::int64_t c = 0; c < cols; ++c)
      amax[static_cast<std::size_t>(c)] = std::max(amax[static_cast<std::size_t>(c)], std::fabs(x[t * cols + c]));
  return amax;
}

}  // namespace

Result<W8A8Error> w8a8_error(const float* w, std::int64_t rows, std::int64_t cols, const float* x, std::int64_t tokens,
                             const float* s, const SmoothQuantSpec& spec) {
  return w8a8(w, rows, cols, x, tokens, s, spec, nullptr, true);
}

Result<SmoothQuantSweep> smoothquant_alpha_sweep(const float* w, std::int64_t rows, std::int64_t cols, const float* x,
                                                 std::int64_t tokens, const SmoothQuantSpec& spec, double step,
                                                 const float* act_absmax, OpContext& ctx) {
  if (!(step > 0.0 && step <= 1.0)) return Error::invalid("SmoothQuant: alpha step must be in (0, 1]");
  if (rows <= 0 || cols <= 0 || tokens <= 0) return Error::invalid("SmoothQuant: empty weight or activations");
  std::vector<float> amax;
  if (!act_absmax) {
    amax = column_absmax(x, tokens, cols);
    act_absmax = amax.data();
  }
  const std::vector<float> ref = times_transpose(x, tokens, w, rows, cols);
  SmoothQuantSweep out;
  const int n = static_cast<int>(std::floor(1.0 / step + 1e-9));
  for (int i = 0; i <= n; ++i) {
    if (ctx.cancelled()) return Error::cancelled();
    const double a = std::min(1.0, i * step);
    const std::vector<float> s = smoothquant_factors(act_absmax, w, rows, cols, a);
    auto e = w8a8(w, rows, cols, x, tokens, s.data(), spec, &ref, false);
    if (!e) return e.error();
    out.alphas.push_back(a);
    out.errors.push_back(e->rel_output_error);
    if (out.errors.size() == 1 || e->rel_output_error < out.errors[static_cast<std::size_t>(out.best)]) out.best = i;
    ctx.progress(static_cast<double>(i + 1) / (n + 1));
  }
  out.best_alpha = out.alphas[static_cast<std::size_t>(out.best)];
  return out;
}

Result<SmoothQuantResult> smoothquant(const float* w, std::int64_t rows, std::int64_t cols, const float* x,
                                      std::int64_t tokens, const SmoothQuantSpec& spec, const float* act_absmax,
                                      OpContext& ctx) {
  if (!(spec.alpha >= 0.0 && spec.alpha <= 1.0)) return Error::invalid("SmoothQuant: alpha must be in [0, 1]");
  for (std::int64_t i = 0; i < rows * cols; ++i)
    if (!std::isfinite(w[i])) return Error::invalid("SmoothQuant: weight " + std::to_string(i) + " is not finite");
  for (std::int64_t i = 0; i < tokens * cols; ++i)
    if (!std::isfinite(x[i])) return Error::invalid("SmoothQuant: activation " + std::to_string(i) + " is not finite");
  std::vector<float> amax;
  if (!act_absmax) {
    amax = column_absmax(x, tokens, cols);
    act_absmax = amax.data();
  }
  SmoothQuantResult out;
  out.smooth = smoothquant_factors(act_absmax, w, rows, cols, spec.alpha);
  auto with = w8a8_error(w, rows, cols, x, tokens, out.smooth.data(), spec);
  if (!with) return with.error();
  out.error = *with;
  if (ctx.cancelled()) return Error::cancelled();
  auto without = w8a8_error(w, rows, cols, x, tokens, nullptr, spec);
  if (!without) return without.error();
  out.baseline = *without;
  out.weight_codes.resize(static_cast<std::size_t>(rows * cols));
  out.weight_scales.resize(static_cast<std::size_t>(rows));
  out.dequantized.resize(out.weight_codes.size());
  ThreadPool::global().parallel_for(static_cast<std::size_t>(rows), [&](std::size_t r, unsigned) {
    const std::size_t at = r * static_cast<std::size_t>(cols);
    std::vector<float> row(static_cast<std::size_t>(cols));
    for (std::int64_t c = 0; c < cols; ++c) row[static_cast<std::size_t>(c)] = w[at + static_cast<std::size_t>(c)] * out.smooth[static_cast<std::size_t>(c)];
    const float sc = absmax_scale(row.data(), cols, spec.weight_bits);
    out.weight_scales[r] = sc;
    for (std::int64_t c = 0; c < cols; ++c) {
      const float code = absmax_code(row[static_cast<std::size_t>(c)], sc, spec.weight_bits);
      out.weight_codes[at + static_cast<std::size_t>(c)] = static_cast<std::int8_t>(code);
      out.dequantized[at + static_cast<std::size_t>(c)] = sc * code / out.smooth[static_cast<std::size_t>(c)];
    }
  });
  return out;
}

}  // namespace qs
