#include "quant/gptq.h"

#include <Eigen/Cholesky>
#include <Eigen/Dense>
#include <algorithm>
#include <numeric>
#include <string>

#include "backend/lapack.h"
#include "backend/thread_pool.h"

namespace qs {
namespace {

using MatF = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

// U(i, j) = R(n-1-j, n-1-i) on and above the diagonal, zero below, for R
// upper triangular: in 64x64 tiles, tile rows in parallel, so that both sides
// stay in cache (a plain strided transpose of 64 MiB takes ~5x longer).
MatF reversed_transpose_upper(const MatF& r) {
  const std::int64_t n = r.rows();
  constexpr std::int64_t kTile = 64;
  const std::int64_t tiles = (n + kTile - 1) / kTile;
  MatF u(n, n);
  ThreadPool::global().parallel_for(static_cast<std::size_t>(tiles), [&](std::size_t ti, unsigned) {
    const std::int64_t i0 = static_cast<std::int64_t>(ti) * kTile, i1 = std::min(n, i0 + kTile);
    for (std::int64_t i = i0; i < i1; ++i) std::fill_n(u.data() + i * n, std::min(i, n), 0.0f);
    for (std::int64_t j0 = i0 - i0 % kTile; j0 < n; j0 += kTile) {
      const std::int64_t j1 = std::min(n, j0 + kTile);
      for (std::int64_t i = i0; i < i1; ++i)
        for (std::int64_t j = std::max(i, j0); j < j1; ++j) u(i, j) = r(n - 1 - j, n - 1 - i);
    }
  });
  return u;
}

// The upper Cholesky factor U of H^-1 (H^-1 = U^T U) after damping, in the
// column order GPTQ walks; `h` comes reversed (J H J, J the exchange matrix).
// Without forming H^-1: H = U^-1 U^-T, so A = U^-1 is H's "upper-lower"
// factor, which is the lower Cholesky factor of J H J with rows and columns
// reversed; then U = A^-1, a triangular inverse. About 2n^3/3 flops instead of
// the ~3n^3 of invert-then-factor, all in F32 like the reference.
Result<MatF> inverse_hessian_factor(MatF h, double percdamp) {
  const std::int64_t n = h.rows();
  double mean_diag = 0;
  for (std::int64_t i = 0; i < n; ++i) mean_diag += h(i, i);
  mean_diag /= static_cast<double>(n);
  h.diagonal().array() += static_cast<float>(percdamp * mean_diag);  // the same diagonal in any order
  if (lapack::available()) {
    // J H J = R^T R (R upper), so L = R^T and A = J L J = J R^T J; U = A^-1 = J R^-T J.
    if (!lapack::cholesky_upper(h.data(), n)) return Error::invalid("GPTQ: the damped Hessian is not positive definite");
    if (!lapack::invert_upper(h.data(), n)) return Error::invalid("GPTQ: singular Cholesky factor");
    return reversed_transpose_upper(h);  // (R^-1)^T reversed: its upper triangle is U

  }
  Eigen::LLT<MatF, Eigen::Lower> llt(h);
  if (llt.info() != Eigen::Success) return Error::invalid("GPTQ: the damped Hessian is not positive definite");
  MatF a = MatF(llt.matrixL()).reverse();  // J L J: upper triangular, H = A A^T
  h.resize(0, 0);
  // U = A^-1, upper triangular: column block [j, j+b) only involves A's leading
  // (j+b) x (j+b) corner; blocks are independent, so they run in parallel.
  MatF u = MatF::Zero(n, n);
  constexpr std::int64_t kCols = 64;
  const std::int64_t blocks = (n + kCols - 1) / kCols;
  ThreadPool::global().parallel_for(static_cast<std::size_t>(blocks), [&](std::size_t bi, unsigned) {
    const std::int64_t j0 = static_cast<std::int64_t>(bi) * kCols, b = std::min(kCols, n - j0), m = j0 + b;
    MatF rhs = MatF::Zero(m, b);
    for (std::int64_t k = 0; k < b; ++k) rhs(j0 + k, k) = 1.0f;
    a.topLeftCorner(m, m).triangularView<Eigen::Upper>().solveInPlace(rhs);
    u.block(0, j0, m, b) = rhs;
  });
  return u;
}

struct GroupParams {
  float scale = 1, zero = 0;
};

}  // namespace

Result<GptqResult> gptq(const float* w, std::int64_t rows, std::int64_t cols, const float* h, const GptqSpec& spec,
                        OpContext& ctx) {
  if (auto r = validate_int_grid(spec.grid, cols); !r) return r.error();
  if (spec.grid.group_size < 0) return Error::invalid("GPTQ: per-tensor grids are not supported (use per channel or groups)");
  if (spec.block_size < 1) return Error::invalid("GPTQ: block size must be positive");
  if (!(spec.percdamp >= 0)) return Error::invalid("GPTQ: percdamp must be >= 0");
  for (std::int64_t i = 0; i < rows * cols; ++i)
    if (!std::isfinite(w[i])) return Error::invalid("GPTQ: weight " + std::to_string(i) + " is not finite");
  const int gs = spec.grid.group_size;  // 0: per channel
  const int maxq = (1 << spec.grid.bits) - 1;

  // Column order: identity, or by descending Hessian diagonal (act-order).
  const Eigen::Map<const MatF> hmap(h, cols, cols);
  std::vector<bool> dead(static_cast<std::size_t>(cols));
  for (std::int64_t i = 0; i < cols; ++i) dead[static_cast<std::size_t>(i)] = hmap(i, i) == 0;  // input never active
  std::vector<std::int64_t> perm(static_cast<std::size_t>(cols));
  std::iota(perm.begin(), perm.end(), 0);
  if (spec.act_order)
    std::stable_sort(perm.begin(), perm.end(), [&](std::int64_t a, std::int64_t b) { return hmap(a, a) > hmap(b, b); });
  // H in walk order, rows and columns reversed (J H J, which the factor
  // wants), in one parallel gather.
  MatF hp(cols, cols);
  ThreadPool::global().parallel_for(static_cast<std::size_t>(cols), [&](std::size_t i, unsigned) {
    const std::int64_t pi = perm[static_cast<std::size_t>(cols) - 1 - i];
    float* out = hp.data() + static_cast<std::int64_t>(i) * cols;
    for (std::int64_t j = 0; j < cols; ++j) out[j] = hmap(pi, perm[static_cast<std::size_t>(cols - 1 - j)]);
    if (dead[static_cast<std::size_t>(pi)]) out[i] = 1;  // its weight is zeroed below
  });
  auto factor = inverse_hessian_factor(std::move(hp), spec.percdamp);
  if (!factor) return factor.error();
  const MatF& U = *factor;
  if (ctx.cancelled()) return Error::cancelled();

  GptqResult out;
  out.rows = rows;
  out.cols = cols;
  out.groups = gs > 0 ? static_cast<int>(cols / gs) : 1;
  out.codes.resize(static_cast<std::size_t>(rows * cols));
  out.scales.resize(static_cast<std::size_t>(rows) * static_cast<std::size_t>(out.groups));
  out.zeros.resize(out.scales.size());
  out.dequantized.resize(out.codes.size());
  out.g_idx.resize(static_cast<std::size_t>(cols));
  for (std::int64_t p = 0; p < cols; ++p) {
    const std::int64_t c = perm[static_cast<std::size_t>(p)];
    // Dynamic groups are formed along the walk; static ones on the original order.
    out.g_idx[static_cast<std::size_t>(c)] = gs > 0 ? static_cast<int>((spec.static_groups || !spec.act_order ? c : p) / gs) : 0;
  }

  ThreadPool& pool = ThreadPool::global();
  // The weight in walk order, dead inputs zeroed.
  MatF W(rows, cols);
  pool.parallel_for(static_cast<std::size_t>(rows), [&](std::size_t r, unsigned) {
    for (std::int64_t p = 0; p < cols; ++p) {
      const std::int64_t c = perm[static_cast<std::size_t>(p)];
      W(static_cast<std::int64_t>(r), p) = dead[static_cast<std::size_t>(c)] ? 0.0f : w[static_cast<std::int64_t>(r) * cols + c];
    }
  });
  auto fit = [&](const float* x, std::int64_t n) {
    GroupParams g;
    int_grid_params(x, static_cast<std::size_t>(n), 1, spec.grid, g.scale, g.zero);
    return g;
  };
  std::vector<GroupParams> params(static_cast<std::size_t>(rows));  // the current group's grid, per row
  // Static groups are fitted once, up front, on the original column order (dead inputs zeroed);
  // a per-channel grid once per row.
  std::vector<GroupParams> static_params;
  if (gs > 0 && spec.static_groups) static_params.resize(static_cast<std::size_t>(rows * out.groups));
  pool.parallel_for(static_cast<std::size_t>(rows), [&](std::size_t ru, unsigned) {
    const auto r = static_cast<std::int64_t>(ru);
    if (gs == 0) params[ru] = fit(W.data() + r * cols, cols);
    if (static_params.empty()) return;
    std::vector<float> orig(static_cast<std::size_t>(cols));
    for (std::int64_t p = 0; p < cols; ++p) orig[static_cast<std::size_t>(perm[static_cast<std::size_t>(p)])] = W(r, p);
    for (int g = 0; g < out.groups; ++g) static_params[static_cast<std::size_t>(r * out.groups + g)] = fit(orig.data() + g * gs, gs);
  });

  // The walk. Within a block rows are independent, so kLanes rows go through
  // it side by side: each step's quantize -> error -> spread is a chain of two
  // divisions and a dozen dependent operations, and running 8 rows as SIMD
  // lanes hides that latency (one row at a time is latency-bound, ~3x
  // slower). The block of those rows, [count][kLanes], stays in L1. Every lane
  // does exactly the scalar arithmetic, so codes do not depend on the lane
  // count. After the block, one GEMM pushes its errors onto every later column.
  constexpr std::int64_t kLanes = 8;
  const std::int64_t lane_groups = (rows + kLanes - 1) / kLanes;
  const std::int64_t chunk =
      std::max<std::int64_t>(2, (lane_groups + 2 * pool.size() - 1) / (2 * pool.size()));  // in lane groups
  const std::int64_t tasks = (lane_groups + chunk - 1) / chunk;
  const bool dynamic_groups = gs > 0 && !spec.static_groups;
  MatF Err(rows, spec.block_size);
  for (std::int64_t i1 = 0; i1 < cols; i1 += spec.block_size) {
    if (ctx.cancelled()) return Error::cancelled();
    const std::int64_t i2 = std::min(cols, i1 + spec.block_size), count = i2 - i1;
    pool.parallel_for(static_cast<std::size_t>(tasks), [&](std::size_t task, unsigned) {
      std::vector<float> block(static_cast<std::size_t>(count * kLanes));  // x[i][lane]
      float* x = block.data();
      const std::int64_t g0 = static_cast<std::int64_t>(task) * chunk, g1 = std::min(lane_groups, g0 + chunk);
      for (std::int64_t lg = g0; lg < g1; ++lg) {
        const std::int64_t r0 = lg * kLanes, lanes = std::min(kLanes, rows - r0);
        // Idle lanes (past the last row) compute on zeros with a unit grid and write nothing.
        alignas(32) float scale[kLanes], zero[kLanes], qf[kLanes], err[kLanes];
        for (std::int64_t l = 0; l < kLanes; ++l) {
          scale[l] = 1.0f;
          zero[l] = 0.0f;
          for (std::int64_t i = 0; i < count; ++i) x[i * kLanes + l] = l < lanes ? W(r0 + l, i1 + i) : 0.0f;
        }
        for (std::int64_t i = 0; i < count; ++i) {
          const std::int64_t p = i1 + i, c = perm[static_cast<std::size_t>(p)];
          for (std::int64_t l = 0; l < lanes; ++l) {
            const auto r = static_cast<std::size_t>(r0 + l);
            if (dynamic_groups && p % gs == 0)  // as the reference: from W (block-start values)
              params[r] = fit(W.data() + (r0 + l) * cols + p, std::min<std::int64_t>(gs, cols - p));
            const GroupParams& g = gs > 0 && spec.static_groups
                                       ? static_params[r * static_cast<std::size_t>(out.groups) + static_cast<std::size_t>(c / gs)]
                                       : params[r];
            scale[l] = g.scale;
            zero[l] = g.zero;
          }
          const float d = U(p, p), top = static_cast<float>(maxq);
          float* xi = x + i * kLanes;
          for (std::int64_t l = 0; l < kLanes; ++l) {  // int_grid_code, then the error, per lane
            float q = detail::round_even(xi[l] / scale[l]) + zero[l];
            q = q < 0.0f ? 0.0f : (q > top ? top : q);
            qf[l] = q;
            err[l] = (xi[l] - scale[l] * (q - zero[l])) / d;
          }
          const int grp = out.g_idx[static_cast<std::size_t>(c)];
          for (std::int64_t l = 0; l < lanes; ++l) {
            const std::int64_t r = r0 + l;
            const std::size_t at = static_cast<std::size_t>(r * cols + c);
            out.codes[at] = static_cast<std::uint8_t>(qf[l]);
            out.dequantized[at] = scale[l] * (qf[l] - zero[l]);
            out.scales[static_cast<std::size_t>(r * out.groups + grp)] = scale[l];
            out.zeros[static_cast<std::size_t>(r * out.groups + grp)] = zero[l];
            Err(r, i) = err[l];
          }
          // Spread the errors over the rest of the block: x[j] -= err * U[p, j].
          const float* u = U.data() + p * cols + i1;
          for (std::int64_t j = i + 1; j < count; ++j) {
            float* xj = x + j * kLanes;
            const float uj = u[j];
            for (std::int64_t l = 0; l < kLanes; ++l) xj[l] -= err[l] * uj;
          }
        }
      }
    });
    if (i2 < cols)
      lapack::gemm_subtract(rows, cols - i2, count, Err.data(), spec.block_size, U.data() + i1 * cols + i2, cols,
                            W.data() + i2, cols);
    ctx.progress(static_cast<double>(i2) / static_cast<double>(cols));
  }
  if (ctx.cancelled()) return Error::cancelled();
  return out;
}

}  // namespace qs
