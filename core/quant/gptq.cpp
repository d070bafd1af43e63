#include "quant/gptq.h"

#include <Eigen/Cholesky>
#include <Eigen/Dense>
#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <numeric>
#include <string>

#include "backend/lapack.h"
#include "quant/ggml_block_pack.h"
#include "quant/gptq_walk.h"
#include "backend/thread_pool.h"
#include "util/half.h"

namespace qs {
namespace {

using MatF = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
// Rows per task of the walk, and the row count of every lazy-update GEMM it
// makes (the last task's rows padded with zeros): BLAS picks kernels and
// blockings by the shape, whose sums round differently, so one shape for
// every call keeps a row's result independent of the layer's height (OpenBLAS
// on Zen differs in the last bit between 32 and 64 rows). 256 rows keep the
// calls large enough that packing the shared operand costs little.
constexpr std::int64_t kGemmRows = 256;

// GPTQ's walk is written with U, the upper Cholesky factor of H^-1 (H^-1 =
// U^T U): the reference pushes column i's error err_i = (w_i - q_i) / U_ii
// onto the later columns as w_j -= err_i U_ij. Summed up, those pushes need no
// inverse. With A = U^-1 (upper; H = A A^T, so A is the Cholesky factor of H
// taken from the bottom-right corner) and E the matrix of the errs, E U = W - Q
// for the ORIGINAL W, so E = (W - Q) A and the weight the walk sees at column j is
//     w_j = W_j + U_jj sum_{m<j} (W_m - Q_m) A_mj = W_j - sum_{m<j} (Q_m - W_m) G_mj,
// G_mj = A_mj / A_jj (U_jj = 1 / A_jj). One Cholesky of H suffices: no
// triangular inverse (n^3/3 flops fewer: 0.15 s at n = 4096, ~3 s at 11008
// here), and the lazy updates are the same GEMMs with G in place of U and
// (Q - W_original) in place of err.
struct WalkFactor {
  MatF g;                  // G, upper triangular with a unit diagonal
  std::vector<float> a;    // A's diagonal
};

// In place: J H J = L L^T (L lower) becomes G. H = (J L J)(J L J)^T, so A =
// J L J: A(i, j) = L(n-1-i, n-1-j), and row i of A is row n-1-i of L read
// backwards (the whole buffer reversed). G(i, j) = A(i, j) / A(j, j) on and
// above the diagonal, zero below. Rows i and n-1-i trade places as a pair,
// pairs in parallel: contiguous streams, no transpose, no second matrix.
WalkFactor walk_factor_from_l(MatF&& l) {
  const std::int64_t n = l.rows();
  WalkFactor f{std::move(l), std::vector<float>(static_cast<std::size_t>(n))};
  for (std::int64_t j = 0; j < n; ++j) f.a[static_cast<std::size_t>(j)] = f.g(n - 1 - j, n - 1 - j);
  constexpr std::int64_t kPairsPerTask = 16;
  const std::int64_t pairs = (n + 1) / 2, tasks = (pairs + kPairsPerTask - 1) / kPairsPerTask;
  ThreadPool::global().parallel_for(static_cast<std::size_t>(tasks), [&](std::size_t t, unsigned) {
    std::vector<float> old_i(static_cast<std::size_t>(n)), old_k(static_cast<std::size_t>(n));
    const std::int64_t p0 = static_cast<std::int64_t>(t) * kPairsPerTask, p1 = std::min(pairs, p0 + kPairsPerTask);
    for (std::int64_t i = p0; i < p1; ++i) {
      const std::int64_t k = n - 1 - i;
      float* row_i = f.g.data() + i * n;
      float* row_k = f.g.data() + k * n;
      std::copy_n(row_i, n, old_i.data());
      std::copy_n(row_k, n, old_k.data());
      auto fill = [&](float* row, std::int64_t r, const float* source) {
        std::fill_n(row, r, 0.0f);
        for (std::int64_t j = r; j < n; ++j) row[j] = source[n - 1 - j] / f.a[static_cast<std::size_t>(j)];
      };
      fill(row_i, i, old_k.data());
      if (k != i) fill(row_k, k, old_i.data());
    }
  });
  return f;
}

// The factor of the damped Hessian in walk order; `h` comes reversed (J H J,
// J the exchange matrix). F32 like the reference.
Result<WalkFactor> walk_factor(MatF h, double percdamp) {
  const std::int64_t n = h.rows();
  double mean_diag = 0;
  for (std::int64_t i = 0; i < n; ++i) mean_diag += h(i, i);
  mean_diag /= static_cast<double>(n);
  h.diagonal().array() += static_cast<float>(percdamp * mean_diag);  // the same diagonal in any order
  if (lapack::available()) {
    if (!lapack::cholesky_lower(h.data(), n)) return Error::invalid("GPTQ: the damped Hessian is not positive definite");
  } else {
    Eigen::LLT<Eigen::Ref<MatF>, Eigen::Lower> llt(h);  // in place: the lower triangle becomes L
    if (llt.info() != Eigen::Success) return Error::invalid("GPTQ: the damped Hessian is not positive definite");
  }
  return walk_factor_from_l(std::move(h));
}

// value = scale * (code - zero) + offset, codes clamped to [lo, hi]. Integer
// grids have offset 0 and lo 0, and then this is the reference's arithmetic
// exactly; the ggml blocks use all of it (ggml_block_pack.h).
struct GroupParams {
  float scale = 1, zero = 0, offset = 0, lo = 0, hi = 15;
};

// A grid scale as an F16 field holds it. A scale below F16's smallest
// subnormal would become 0 (every code then means 0 and x / 0 is no code):
// it takes that smallest step instead, still far finer than the group's range.
float f16_scale(float s) {
  const float h = f16_to_f32(f32_to_f16(s));
  return h != 0.0f ? h : std::ldexp(1.0f, -24);
}

}  // namespace

Result<GptqResult> gptq(const float* w, std::int64_t rows, std::int64_t cols, const float* h, const GptqSpec& spec,
                        OpContext& ctx) {
  const bool blocks = spec.block_type != DType::Unknown;
  const bool kquant = ggml_superblock_supported(spec.block_type);
  if (blocks) {
    if (!ggml_block_pack_supported(spec.block_type) && !kquant)
      return Error::invalid("GPTQ: " + std::string(dtype_name(spec.block_type)) +
                            " is not a supported ggml target (Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K, Q5_K, Q6_K)");
    const std::int64_t block = dtype_block_elems(spec.block_type);
    if (cols % block != 0)
      return Error::invalid("GPTQ: " + std::to_string(cols) + " columns are not whole " +
                            std::string(dtype_name(spec.block_type)) + " blocks of " + std::to_string(block));
    if (spec.act_order && !spec.static_groups)
      return Error::invalid("GPTQ: act-order on a ggml grid needs static groups (blocks are runs of original columns)");
  } else {
    if (auto r = validate_int_grid(spec.grid, cols); !r) return r.error();
    if (spec.grid.group_size < 0) return Error::invalid("GPTQ: per-tensor grids are not supported (use per channel or groups)");
  }
  if (spec.block_size < 1) return Error::invalid("GPTQ: block size must be positive");
  if (!(spec.percdamp >= 0)) return Error::invalid("GPTQ: percdamp must be >= 0");
  for (std::int64_t i = 0; i < rows * cols; ++i)
    if (!std::isfinite(w[i])) return Error::invalid("GPTQ: weight " + std::to_string(i) + " is not finite");
  // An Inf passes the Cholesky and turns the walk's codes into NaN casts.
  for (std::int64_t i = 0; i < cols * cols; ++i)
    if (!std::isfinite(h[i])) return Error::invalid("GPTQ: Hessian entry " + std::to_string(i) + " is not finite");
  // Codes are grouped by `gs` (the ggml sub-block); grids are fitted for
  // `fit_gs` columns at a time (a K-quant super-block fits its sub-blocks together).
  const int gs = kquant ? ggml_superblock_sub(spec.block_type) : blocks ? 32 : spec.grid.group_size;  // 0: per channel
  const int fit_gs = kquant ? 256 : gs, subs = kquant ? fit_gs / gs : 1;
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
  auto factor = walk_factor(std::move(hp), spec.percdamp);
  if (!factor) return factor.error();
  const MatF& G = factor->g;
  const std::vector<float>& adiag = factor->a;
  if (ctx.cancelled()) return Error::cancelled();

  GptqResult out;
  out.rows = rows;
  out.cols = cols;
  out.groups = gs > 0 ? static_cast<int>(cols / gs) : 1;
  out.codes.resize(static_cast<std::size_t>(rows * cols));
  out.scales.resize(static_cast<std::size_t>(rows) * static_cast<std::size_t>(out.groups));
  out.zeros.resize(out.scales.size());
  if (blocks) out.offsets.resize(out.scales.size());
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
  // The lazy updates are driven by Q - W_original (see WalkFactor): the
  // caller's weight itself where the walk order is its order.
  const bool as_given = !spec.act_order && std::find(dead.begin(), dead.end(), true) == dead.end();
  MatF w0_copy;
  if (!as_given) w0_copy = W;
  const Eigen::Map<const MatF> W0(as_given ? w : w0_copy.data(), rows, cols);
  auto fit = [&](const float* x, std::int64_t n) {
    GroupParams g;
    if (blocks) {
      const GgmlBlockGrid b = ggml_block_grid(spec.block_type, x);
      g = {b.scale, b.zero, b.offset, static_cast<float>(b.lo), static_cast<float>(b.hi)};
    } else {
      int_grid_params(x, static_cast<std::size_t>(n), 1, spec.grid, g.scale, g.zero);
      if (spec.f16_scales) g.scale = f16_scale(g.scale);
      g.hi = static_cast<float>(maxq);
    }
    return g;
  };
  // K-quants: the reference quantizer's block of each (row, super-block), whose scale fields the output keeps.
  const std::size_t super_bytes = kquant ? dtype_block_bytes(spec.block_type) : 0;
  std::vector<std::byte> headers(kquant ? static_cast<std::size_t>(rows * (cols / 256)) * super_bytes : 0);
  auto fit_into = [&](const float* x, std::int64_t n, GroupParams* dst, std::int64_t r, std::int64_t super) {
    if (!kquant) {
      dst[0] = fit(x, n);
      return;
    }
    GgmlBlockGrid grids[16];
    ggml_superblock_grids(spec.block_type, x, grids, headers.data() + static_cast<std::size_t>(r * (cols / 256) + super) * super_bytes);
    for (int k = 0; k < subs; ++k)
      dst[k] = {grids[k].scale, grids[k].zero, grids[k].offset, static_cast<float>(grids[k].lo), static_cast<float>(grids[k].hi)};
  };
  std::vector<GroupParams> params(static_cast<std::size_t>(rows * subs));  // the current fit's grids, per row
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
    for (int g = 0; g < out.groups; g += subs)
      fit_into(orig.data() + g * gs, fit_gs, &static_params[static_cast<std::size_t>(r * out.groups + g)], r, g / subs);
  });

  // Rows are independent given H, so each task takes a range of rows through
  // every block (the walk, then its slice of the lazy update) with no barrier
  // between blocks, and BLAS runs serially meanwhile: a threaded BLAS keeps its
  // workers spinning after each call, against the pool's threads (lapack.h).
  //
  // Within a task, rows go through a block 8 at a time (gptq_walk.h); the
  // block of those rows, [count][8], stays in L1, and so do its codes, values
  // and errors until they are written out row by row at the end of the block
  // (written per column, 8 rows cols*4 bytes apart share an L1 set and thrash
  // it). After the block, one GEMM pushes the task's errors onto every later
  // column.
  constexpr std::int64_t kLanes = detail::kGptqLanes;
  const std::int64_t lane_groups = (rows + kLanes - 1) / kLanes;
  static_assert(kGemmRows % kLanes == 0);
  const std::int64_t tasks = (rows + kGemmRows - 1) / kGemmRows;
  const bool dynamic_groups = gs > 0 && !spec.static_groups;
  // A block wider than the layer is the whole layer (a plan's huge block_size allocates nothing more).
  const std::int64_t block = std::min<std::int64_t>(spec.block_size, cols);
  const std::int64_t blocks_n = (cols + block - 1) / block;
  // Dynamic groups are fitted, as in the reference, on the weights as they
  // stand at the start of the block: W_j - sum_{k<i1} err_k U_kj. The matrix
  // W here holds W_j - sum_{m<i1} (Q_m - W_m) G_mj instead, a different
  // partial sum; since A U = I, the reference's is
  //     W0_j + sum_{k=i1..j} P_k U_kj,  P_k = (W_k - W0_k) A_kk,
  // which needs only the small block of U = A^-1 on [i1, e): one triangular
  // inverse of <= block + group columns per block (shared by the tasks) and
  // one small GEMM per block and task.
  std::vector<MatF> uloc(static_cast<std::size_t>(blocks_n));
  std::vector<std::int64_t> uloc_cols(static_cast<std::size_t>(blocks_n), 0);
  if (dynamic_groups) {
    pool.parallel_for(static_cast<std::size_t>(blocks_n), [&](std::size_t b, unsigned) {
      const std::int64_t i1 = static_cast<std::int64_t>(b) * block, i2 = std::min(cols, i1 + block);
      const std::int64_t first_start = (i1 + fit_gs - 1) / fit_gs * fit_gs;
      if (first_start >= i2) return;
      const std::int64_t last_start = (i2 - 1) / fit_gs * fit_gs, m = std::min(cols, last_start + fit_gs) - i1;
      MatF Aloc = MatF::Zero(m, m);
      for (std::int64_t k = 0; k < m; ++k)
        for (std::int64_t j = k; j < m; ++j) Aloc(k, j) = G(i1 + k, i1 + j) * adiag[static_cast<std::size_t>(i1 + j)];
      uloc[b] = Aloc.triangularView<Eigen::Upper>().solve(MatF::Identity(m, m));
      uloc_cols[b] = m;
    });
  }
  lapack::SerialBlas serial_blas;
  std::atomic<std::int64_t> steps_done{0};
  const double steps_total = static_cast<double>(tasks * blocks_n);
  pool.parallel_for(static_cast<std::size_t>(tasks), [&](std::size_t task, unsigned) {
    const std::int64_t g0 = static_cast<std::int64_t>(task) * (kGemmRows / kLanes),
                       g1 = std::min(lane_groups, g0 + kGemmRows / kLanes);
    const std::int64_t ra = g0 * kLanes, rb = std::min(rows, g1 * kLanes), n_rows = rb - ra;
    if (n_rows <= 0) return;
    // The task's GEMMs are kGemmRows high; rows past n_rows are zero.
    const std::int64_t padded = kGemmRows;
    MatF Err = MatF::Zero(padded, block), Wref, P, Tail;
    const std::size_t bs = static_cast<std::size_t>(block);
    // x[i][lane], x0 (the original weights), then the block's codes, values and errors; 32-byte aligned
    std::vector<float> storage(5 * bs * kLanes + kLanes);
    float* x = storage.data() + (kLanes - reinterpret_cast<std::uintptr_t>(storage.data()) / sizeof(float) % kLanes) % kLanes;
    float* x0 = x + bs * kLanes;
    float* qbuf = x0 + bs * kLanes;
    float* vbuf = qbuf + bs * kLanes;
    float* ebuf = vbuf + bs * kLanes;
    for (std::int64_t b = 0; b < blocks_n; ++b) {
      if (ctx.cancelled()) return;
      const std::int64_t i1 = b * block, i2 = std::min(cols, i1 + block), count = i2 - i1;
      const std::int64_t m = uloc_cols[static_cast<std::size_t>(b)];
      if (m > 0) {
        // kGemmRows high (test Gptq.WalkBuildsAgreeAndRowsAreIndependent).
        P.setZero(padded, m);
        Wref.setZero(padded, m);
        Wref.topRows(n_rows) = W0.block(ra, i1, n_rows, m);
        for (std::int64_t r = 0; r < n_rows; ++r)
          for (std::int64_t k = 0; k < m; ++k)
            P(r, k) = (W(ra + r, i1 + k) - W0(ra + r, i1 + k)) * adiag[static_cast<std::size_t>(i1 + k)];
        lapack::gemm(false, padded, m, m, 1.0f, P.data(), m, uloc[static_cast<std::size_t>(b)].data(), m, 1.0f,
                     Wref.data(), m);
      }
      // A column starts a new run of the walk where the lanes' grids change:
      // a dynamic group's fit, or another group (sub-block, static group).
      auto group_key = [&](std::int64_t i) -> std::int64_t {
        const std::int64_t p = i1 + i;
        return gs == 0 ? 0 : spec.static_groups ? perm[static_cast<std::size_t>(p)] / gs : p / gs;
      };
      auto refit_at = [&](std::int64_t i) { return dynamic_groups && (i1 + i) % fit_gs == 0; };
      for (std::int64_t lg = g0; lg < g1; ++lg) {
        const std::int64_t r0 = lg * kLanes, lanes = std::min(kLanes, rows - r0);
        // Idle lanes (past the last row) compute on zeros with a unit grid and write nothing.
        detail::GptqLaneGrid grid;
        for (std::int64_t l = 0; l < kLanes; ++l) {
          grid.scale[l] = 1.0f;
          grid.zero[l] = grid.offset[l] = grid.lo[l] = 0.0f;
          grid.hi[l] = static_cast<float>(maxq);
          for (std::int64_t i = 0; i < count; ++i) {
            x[i * kLanes + l] = l < lanes ? W(r0 + l, i1 + i) : 0.0f;
            x0[i * kLanes + l] = l < lanes ? W0(r0 + l, i1 + i) : 0.0f;
          }
        }
        for (std::int64_t i = 0; i < count;) {
          const std::int64_t p = i1 + i, c = perm[static_cast<std::size_t>(p)];
          const bool refit = refit_at(i);
          const int grp = out.g_idx[static_cast<std::size_t>(c)];
          for (std::int64_t l = 0; l < lanes; ++l) {
            const auto r = static_cast<std::size_t>(r0 + l);
            if (refit)  // the reference's block-start values (above)
              fit_into(Wref.data() + (r0 + l - ra) * m + (p - i1), std::min<std::int64_t>(fit_gs, cols - p),
                       &params[r * static_cast<std::size_t>(subs)], r0 + l, p / fit_gs);
            const GroupParams& g =
                gs > 0 && spec.static_groups
                    ? static_params[r * static_cast<std::size_t>(out.groups) + static_cast<std::size_t>(c / gs)]
                    : params[r * static_cast<std::size_t>(subs) + static_cast<std::size_t>(kquant ? (p % fit_gs) / gs : 0)];
            grid.scale[l] = g.scale;
            grid.zero[l] = g.zero;
            grid.offset[l] = g.offset;
            grid.lo[l] = g.lo;
            grid.hi[l] = g.hi;
            const std::size_t gi = r * static_cast<std::size_t>(out.groups) + static_cast<std::size_t>(grp);
            out.scales[gi] = g.scale;
            out.zeros[gi] = g.zero;
            if (blocks) out.offsets[gi] = g.offset;
          }
          const std::int64_t key = group_key(i);
          std::int64_t e = i + 1;
          while (e < count && !refit_at(e) && group_key(e) == key) ++e;
          detail::gptq_walk_lanes(x, x0, qbuf, vbuf, ebuf, i, e, count, G.data() + i1 * cols + i1, cols, grid);
          i = e;
        }
        for (std::int64_t l = 0; l < lanes; ++l) {  // the block's results, row by row
          const std::int64_t r = r0 + l;
          std::uint8_t* codes = out.codes.data() + r * cols;
          float* deq = out.dequantized.data() + r * cols;
          float* e = Err.data() + (r - ra) * block;
          for (std::int64_t i = 0; i < count; ++i) {
            const std::int64_t c = perm[static_cast<std::size_t>(i1 + i)];
            codes[c] = static_cast<std::uint8_t>(qbuf[i * kLanes + l]);
            deq[c] = vbuf[i * kLanes + l];
            e[i] = ebuf[i * kLanes + l];
          }
        }
      }
      if (i2 < cols) {
        // kGemmRows high: a short last task goes through a padded copy of its rows.
        const std::int64_t rest = cols - i2;
        float* c = W.data() + ra * cols + i2;
        if (n_rows == kGemmRows) {
          lapack::gemm_subtract(kGemmRows, rest, count, Err.data(), block, G.data() + i1 * cols + i2, cols, c, cols);
        } else {
          Tail.setZero(kGemmRows, rest);
          for (std::int64_t r = 0; r < n_rows; ++r) std::copy(c + r * cols, c + r * cols + rest, Tail.data() + r * rest);
          lapack::gemm_subtract(kGemmRows, rest, count, Err.data(), block, G.data() + i1 * cols + i2, cols, Tail.data(), rest);
          for (std::int64_t r = 0; r < n_rows; ++r)
            std::copy(Tail.data() + r * rest, Tail.data() + (r + 1) * rest, c + r * cols);
        }
      }
      ctx.progress(static_cast<double>(++steps_done) / steps_total);
    }
  });
  if (ctx.cancelled()) return Error::cancelled();
  if (kquant) {  // the reference's scale fields with the walk's codes
    const std::int64_t supers = cols / 256;
    out.ggml_blocks.resize(static_cast<std::size_t>(rows * supers) * super_bytes);
    pool.parallel_for(static_cast<std::size_t>(rows), [&](std::size_t r, unsigned) {
      for (std::int64_t sb = 0; sb < supers; ++sb) {
        const std::size_t at = (r * static_cast<std::size_t>(supers) + static_cast<std::size_t>(sb)) * super_bytes;
        pack_ggml_superblock(spec.block_type, headers.data() + at,
                             out.codes.data() + r * static_cast<std::size_t>(cols) + static_cast<std::size_t>(sb) * 256,
                             out.ggml_blocks.data() + at);
      }
    });
  } else if (blocks) {  // the codes and grids as ordinary ggml blocks
    const std::size_t bytes = dtype_block_bytes(spec.block_type);
    out.ggml_blocks.resize(static_cast<std::size_t>(rows) * static_cast<std::size_t>(out.groups) * bytes);
    pool.parallel_for(static_cast<std::size_t>(rows), [&](std::size_t r, unsigned) {
      for (int g = 0; g < out.groups; ++g) {
        const std::size_t gi = r * static_cast<std::size_t>(out.groups) + static_cast<std::size_t>(g);
        const GgmlBlockGrid grid{out.scales[gi], out.zeros[gi], out.offsets[gi], 0, 0};
        pack_ggml_block(spec.block_type, grid, out.codes.data() + r * static_cast<std::size_t>(cols) + static_cast<std::size_t>(g) * 32,
                        out.ggml_blocks.data() + gi * bytes);
      }
    });
  }
  return out;
}

}  // namespace qs
