#include "quant/awq.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "backend/lapack.h"
#include "backend/thread_pool.h"
#include "quant/clip_search.h"

namespace qs {
namespace {

// Rows [0, n) in chunks on the global pool: per-row work here is a few
// thousand flops, too little to hand out one row at a time.
template <class Fn>
void for_row_chunks(std::int64_t n, Fn&& fn) {
  constexpr std::int64_t kChunk = 32;
  const std::int64_t tasks = (n + kChunk - 1) / kChunk;
  ThreadPool::global().parallel_for(static_cast<std::size_t>(tasks), [&](std::size_t t, unsigned) {
    const std::int64_t r0 = static_cast<std::int64_t>(t) * kChunk, r1 = std::min(n, r0 + kChunk);
    for (std::int64_t r = r0; r < r1; ++r) fn(r);
  });
}

// Sum over row blocks of dot(a_row, b_row) in double: block k covers rows [k * n, (k + 1) * n).
std::vector<double> block_dots(const float* a, const float* b, std::int64_t blocks, std::int64_t n, std::int64_t cols) {
  std::vector<double> per_row(static_cast<std::size_t>(blocks * n));
  for_row_chunks(blocks * n, [&](std::int64_t r) {
    double acc = 0;
    for (std::int64_t c = 0; c < cols; ++c) acc += static_cast<double>(a[r * cols + c]) * b[r * cols + c];
    per_row[static_cast<std::size_t>(r)] = acc;
  });
  std::vector<double> out(static_cast<std::size_t>(blocks), 0.0);
  for (std::int64_t k = 0; k < blocks; ++k)
    for (std::int64_t i = 0; i < n; ++i) out[static_cast<std::size_t>(k)] += per_row[static_cast<std::size_t>(k * n + i)];
  return out;
}

// AWQ's clip search on the scaled weight `ws` for groups of gs columns: per
// group, every candidate's error dW_g H'_gg dW_g^T for all rows with one GEMM,
// H' = diag(1/s) H diag(1/s) (the error measured in the original space).
// Groups go in batches (bounded memory) so that the GEMMs run back to back:
// BLAS threads spin for a while after each call, and every switch between
// them and the pool's quantize/select loops costs both sides cores.
void clip_groups(const float* ws, std::int64_t rows, std::int64_t cols, const float* h, const std::vector<float>& s,
                 const AwqSpec& spec, AwqResult& out, OpContext& ctx) {
  const IntGridSpec& grid = spec.target.grid;
  const std::int64_t gs = grid.group_size, groups = cols / gs;
  const int maxq = (1 << grid.bits) - 1;
  std::vector<float> ratios;
  for (int k = 0; k < spec.clip_grid && k < spec.clip_grid * spec.clip_max_shrink; ++k)
    ratios.push_back(static_cast<float>(1.0 - static_cast<double>(k) / spec.clip_grid));
  const auto kc = static_cast<std::int64_t>(ratios.size());
  IntQuantized& q = out.q;
  out.clip_ratios.assign(static_cast<std::size_t>(rows * groups), 1.0f);
  const std::int64_t per_group = kc * rows * gs;  // floats of candidate errors per group
  constexpr std::int64_t kBudget = std::int64_t{24} << 20;  // floats: 96 MiB for d, as much for p
  const std::int64_t batch = std::clamp<std::int64_t>(kBudget / per_group, 1, groups);
  std::vector<float> hg(static_cast<std::size_t>(batch * gs * gs)), d(static_cast<std::size_t>(batch * per_group)),
      p(d.size()), lo(static_cast<std::size_t>(batch * rows)), hi(lo.size());
  for (std::int64_t g0 = 0; g0 < groups; g0 += batch) {
    if (ctx.cancelled()) return;
    const std::int64_t nb = std::min(batch, groups - g0);
    for (std::int64_t b = 0; b < nb; ++b) {
      const std::int64_t c0 = (g0 + b) * gs;
      float* hb = hg.data() + b * gs * gs;
      for (std::int64_t i = 0; i < gs; ++i)
        for (std::int64_t j = 0; j < gs; ++j)
          hb[i * gs + j] = h[(c0 + i) * cols + c0 + j] / (s[static_cast<std::size_t>(c0 + i)] * s[static_cast<std::size_t>(c0 + j)]);
    }
    // Candidates' errors with a multiply by 1/scale (vectorises); the winner's
    // codes below use the exact quantizer, which differs at most on exact ties.
    for_row_chunks(rows, [&](std::int64_t r) {
      for (std::int64_t b = 0; b < nb; ++b) {
        const float* x = ws + r * cols + (g0 + b) * gs;
        float& xmin = lo[static_cast<std::size_t>(b * rows + r)];
        float& xmax = hi[static_cast<std::size_t>(b * rows + r)];
        detail::range_with_zero(x, static_cast<std::size_t>(gs), 1, xmin, xmax);
        for (std::int64_t k = 0; k < kc; ++k) {
          float sc = 0, z = 0;
          detail::clipped_grid_params(xmin, xmax, ratios[static_cast<std::size_t>(k)], grid, sc, z);
          const float inv = 1.0f / sc, mq = static_cast<float>(maxq);
          float* dk = d.data() + b * per_group + (k * rows + r) * gs;
          for (std::int64_t c = 0; c < gs; ++c) {
            const float v = std::clamp(detail::round_even(x[c] * inv) + z, 0.0f, mq);
            dk[c] = sc * (v - z) - x[c];
          }
        }
      }
    });
    for (std::int64_t b = 0; b < nb; ++b)
      lapack::gemm(false, kc * rows, gs, gs, 1.0f, d.data() + b * per_group, gs, hg.data() + b * gs * gs, gs, 0.0f,
                   p.data() + b * per_group, gs);
    for_row_chunks(rows, [&](std::int64_t r) {
      for (std::int64_t b = 0; b < nb; ++b) {
        std::int64_t best = 0;
        double best_err = 0;
        for (std::int64_t k = 0; k < kc; ++k) {
          const float* dk = d.data() + b * per_group + (k * rows + r) * gs;
          const float* pk = p.data() + b * per_group + (k * rows + r) * gs;
          float lane[8] = {};  // float lanes (vectorised), summed in double per candidate
          for (std::int64_t c = 0; c + 8 <= gs; c += 8)
            for (int u = 0; u < 8; ++u) lane[u] += dk[c + u] * pk[c + u];
          double e = 0;
          for (float v : lane) e += v;
          for (std::int64_t c = gs / 8 * 8; c < gs; ++c) e += static_cast<double>(dk[c]) * pk[c];
          if (k == 0 || e < best_err) best = k, best_err = e;  // ties keep the full range
        }
        const std::int64_t g = g0 + b, c0 = g * gs;
        const float* x = ws + r * cols + c0;
        float sc = 0, z = 0;
        detail::clipped_grid_params(lo[static_cast<std::size_t>(b * rows + r)], hi[static_cast<std::size_t>(b * rows + r)],
                                    ratios[static_cast<std::size_t>(best)], grid, sc, z);
        const std::size_t gi = static_cast<std::size_t>(r * groups + g);
        q.scales[gi] = sc;
        q.zeros[gi] = z;
        out.clip_ratios[gi] = ratios[static_cast<std::size_t>(best)];
        for (std::int64_t c = 0; c < gs; ++c) q.codes[static_cast<std::size_t>(r * cols + c0 + c)] = int_grid_code(x[c], sc, z, maxq);
      }
    });
    ctx.progress(0.6 + 0.4 * static_cast<double>(g0 + nb) / static_cast<double>(groups));
  }
}

}  // namespace

std::vector<float> awq_weight_magnitude(const float* w, std::int64_t rows, std::int64_t cols, std::int64_t group) {
  std::vector<double> sum(static_cast<std::size_t>(cols), 0.0);
  if (rows <= 0 || cols <= 0) return std::vector<float>(static_cast<std::size_t>(cols), 0.0f);
  float tensor_max = 0;
  if (group < 0)
    for (std::int64_t i = 0; i < rows * cols; ++i) tensor_max = std::max(tensor_max, std::fabs(w[i]));
  const std::int64_t gs = group > 0 ? group : cols;
  for (std::int64_t r = 0; r < rows; ++r)
    for (std::int64_t g0 = 0; g0 < cols; g0 += gs) {
      const std::int64_t g1 = std::min(cols, g0 + gs);
      float m = tensor_max;
      if (group >= 0) {
        m = 0;
        for (std::int64_t c = g0; c < g1; ++c) m = std::max(m, std::fabs(w[r * cols + c]));
      }
      if (m == 0) continue;
      for (std::int64_t c = g0; c < g1; ++c) sum[static_cast<std::size_t>(c)] += std::fabs(w[r * cols + c]) / m;
    }
  std::vector<float> out(static_cast<std::size_t>(cols));
  for (std::int64_t c = 0; c < cols; ++c)
    out[static_cast<std::size_t>(c)] = static_cast<float>(sum[static_cast<std::size_t>(c)] / static_cast<double>(rows));
  return out;
}

std::vector<float> awq_scales(const float* x_mean_abs, const float* w_mag, std::int64_t cols, double alpha,
                              bool weight_term) {
  std::vector<double> s(static_cast<std::size_t>(cols));
  double lo = 0, hi = 0;
  for (std::int64_t c = 0; c < cols; ++c) {
    double v = std::pow(static_cast<double>(x_mean_abs[c]), alpha);
    // An all-zero column has wbar = 0: the guard keeps s finite (the reference adds 1e-4).
    if (weight_term) v /= std::max(std::pow(static_cast<double>(w_mag[c]), 1.0 - alpha), 1e-4);
    v = std::max(v, 1e-4);
    s[static_cast<std::size_t>(c)] = v;
    lo = c == 0 ? v : std::min(lo, v);
    hi = c == 0 ? v : std::max(hi, v);
  }
  // Normalised so that max and min sit symmetrically around 1 (log scale): the
  // grid sees a weight of the same overall size.
  const double norm = std::sqrt(hi * lo);
  std::vector<float> out(static_cast<std::size_t>(cols));
  for (std::int64_t c = 0; c < cols; ++c) out[static_cast<std::size_t>(c)] = static_cast<float>(s[static_cast<std::size_t>(c)] / norm);
  return out;
}

Result<AwqResult> awq(const float* w, std::int64_t rows, std::int64_t cols, const float* h, const float* x_mean_abs,
                      const AwqSpec& spec, OpContext& ctx) {
  if (rows <= 0 || cols <= 0) return Error::invalid("AWQ: empty weight");
  if (auto r = validate_target(spec.target, cols); !r) return r.error();
  if (!h || !x_mean_abs) return Error::invalid("AWQ needs the Hessian X^T X and the mean |x| of every input channel");
  if (spec.grid < 1) return Error::invalid("AWQ: the alpha grid needs at least one point");
  if (spec.clip && (spec.clip_grid < 1 || !(spec.clip_max_shrink > 0.0 && spec.clip_max_shrink < 1.0)))
    return Error::invalid("AWQ: clip grid must be >= 1 and max shrink in (0, 1)");
  for (std::int64_t i = 0; i < rows * cols; ++i)
    if (!std::isfinite(w[i])) return Error::invalid("AWQ: weight " + std::to_string(i) + " is not finite");
  for (std::int64_t c = 0; c < cols; ++c)
    if (!(x_mean_abs[c] >= 0.0f) || !std::isfinite(x_mean_abs[c]))
      return Error::invalid("AWQ: mean |x| of input " + std::to_string(c) + " is negative or not finite");
  // wbar is normalised over the target's own groups (ggml types scale blocks or sub-blocks of 32).
  const std::int64_t wgroup = spec.target.scale_group(cols);
  const std::vector<float> wmag = awq_weight_magnitude(w, rows, cols, wgroup);

  // 1. The alpha search on evenly spaced rows: one stacked GEMM [dW_0; ...; dW_K; W_R] H.
  const std::int64_t ns = spec.search_rows <= 0 || spec.search_rows >= rows ? rows : spec.search_rows;
  const std::int64_t kk = spec.grid + 1;  // alphas, then the identity
  std::vector<float> d(static_cast<std::size_t>((kk + 1) * ns * cols)), p(d.size());
  std::vector<float> wr(static_cast<std::size_t>(ns * cols)), ws(wr.size()), qs_(wr.size());
  for (std::int64_t i = 0; i < ns; ++i) {
    const std::int64_t r = i * rows / ns;
    std::copy(w + r * cols, w + (r + 1) * cols, wr.begin() + i * cols);
  }
  std::copy(wr.begin(), wr.end(), d.begin() + kk * ns * cols);
  std::vector<std::vector<float>> cand(static_cast<std::size_t>(kk));
  for (std::int64_t k = 0; k < kk; ++k) {
    if (ctx.cancelled()) return Error::cancelled();
    std::vector<float>& s = cand[static_cast<std::size_t>(k)];
    s = k < spec.grid ? awq_scales(x_mean_abs, wmag.data(), cols, static_cast<double>(k) / spec.grid, spec.weight_term)
                      : std::vector<float>(static_cast<std::size_t>(cols), 1.0f);
    for (std::int64_t i = 0; i < ns * cols; ++i) ws[static_cast<std::size_t>(i)] = wr[static_cast<std::size_t>(i)] * s[static_cast<std::size_t>(i % cols)];
    if (auto r = fake_quantize(spec.target, ws.data(), ns, cols, qs_.data()); !r) return r.error();
    float* dk = d.data() + k * ns * cols;
    for (std::int64_t i = 0; i < ns * cols; ++i)
      dk[i] = qs_[static_cast<std::size_t>(i)] / s[static_cast<std::size_t>(i % cols)] - wr[static_cast<std::size_t>(i)];
  }
  lapack::gemm(false, (kk + 1) * ns, cols, cols, 1.0f, d.data(), cols, h, cols, 0.0f, p.data(), cols);
  const std::vector<double> tr = block_dots(d.data(), p.data(), kk + 1, ns, cols);
  d = {};
  p = {};
  AwqResult out;
  const double den = tr[static_cast<std::size_t>(kk)];
  std::int64_t best = kk - 1;  // the identity unless an alpha does strictly better
  for (std::int64_t k = 0; k < kk; ++k) {
    out.search_error.push_back(den > 0 ? tr[static_cast<std::size_t>(k)] / den : 0.0);
    if (tr[static_cast<std::size_t>(k)] < tr[static_cast<std::size_t>(best)]) best = k;
  }
  out.alpha = best < spec.grid ? static_cast<double>(best) / spec.grid : -1.0;
  out.scales = cand[static_cast<std::size_t>(best)];
  const std::vector<float>& s = out.scales;
  ctx.progress(0.6);
  if (ctx.cancelled()) return Error::cancelled();

  // 2. The whole weight, scaled; clip search (integer grids) and quantization.
  std::vector<float> wsf(static_cast<std::size_t>(rows * cols));
  for_row_chunks(rows, [&](std::int64_t r) {
    for (std::int64_t c = 0; c < cols; ++c) wsf[static_cast<std::size_t>(r * cols + c)] = w[r * cols + c] * s[static_cast<std::size_t>(c)];
  });
  out.dequantized.resize(wsf.size());
  if (spec.target.kind != QuantTarget::Kind::IntGrid) {  // ggml blocks and the named formats: plain RTN after scaling
    if (auto r = fake_quantize(spec.target, wsf.data(), rows, cols, out.dequantized.data()); !r) return r.error();
  } else {
    const IntGridSpec& grid = spec.target.grid;
    if (spec.clip && grid.group_size > 0) {
      out.q.rows = rows;
      out.q.cols = cols;
      out.q.spec = grid;
      out.q.groups_per_row = static_cast<int>(cols / grid.group_size);
      out.q.codes.resize(wsf.size());
      out.q.scales.resize(static_cast<std::size_t>(rows * out.q.groups_per_row));
      out.q.zeros.resize(out.q.scales.size());
      clip_groups(wsf.data(), rows, cols, h, s, spec, out, ctx);
      if (ctx.cancelled()) return Error::cancelled();
    } else if (spec.clip) {
      // Per channel or per tensor: a group's H block would be the whole H per
      // row; the diagonal (imatrix-style column weights) stands in for it.
      std::vector<float> cw(static_cast<std::size_t>(cols));
      for (std::int64_t c = 0; c < cols; ++c)
        cw[static_cast<std::size_t>(c)] = std::max(0.0f, h[c * cols + c]) / (s[static_cast<std::size_t>(c)] * s[static_cast<std::size_t>(c)]);
      ClipSearchSpec cs;
      cs.grid = grid;
      cs.step = static_cast<float>(1.0 / spec.clip_grid);
      cs.min_ratio = static_cast<float>(1.0 - spec.clip_max_shrink) + cs.step * 0.5f;
      cs.column_weight = cw.data();
      auto r = clip_search(wsf.data(), rows, cols, cs, ctx);
      if (!r) return r.error();
      out.q = std::move(r->q);
      out.clip_ratios = std::move(r->ratios);
    } else {
      auto r = rtn_int(wsf.data(), rows, cols, grid);
      if (!r) return r.error();
      out.q = std::move(*r);
    }
    dequantize_int_into(out.q, out.dequantized.data());
  }
  for_row_chunks(rows, [&](std::int64_t r) {
    for (std::int64_t c = 0; c < cols; ++c) out.dequantized[static_cast<std::size_t>(r * cols + c)] /= s[static_cast<std::size_t>(c)];
  });
  out.bits_per_weight = spec.target.bits_per_weight(rows, cols);
  out.error = layer_error(w, out.dequantized.data(), rows, cols, spec.output_error ? h : nullptr);
  ctx.progress(1.0);
  return out;
}

}  // namespace qs
