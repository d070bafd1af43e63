#pragma once
// The CUDA GPTQ path (kernels/gptq_kernels.cu) emulated on the host: the same
// plan (quant/gptq_plan.h), the same F64 factorization (Eigen in place of
// cuSOLVER/cuBLAS), the same per-row walk (kernels/gptq_walk.h, the very code
// the kernel runs) and the same between-block update (Eigen SGEMM in place of
// cuBLAS). Tests compare it with core's gptq() on the CPU, and with the device.
#include <Eigen/Cholesky>
#include <Eigen/Dense>

#include "gptq_walk.h"
#include "quant/gptq_plan.h"

namespace qs::test {

inline Result<GptqResult> emulate_device_gptq(const float* w, std::int64_t rows, std::int64_t cols, const float* h,
                                              const GptqSpec& spec) {
  using MatF = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  auto plan = plan_gptq(w, rows, cols, h, spec);
  if (!plan) return plan.error();
  const std::int64_t n = cols;
  // M's memory as build_m_kernel writes it; POTRF("L") reads its column-major lower triangle.
  Eigen::MatrixXd m(n, n);  // column-major: m(a, b) is memory a + b * n = row-major (b, a)
  for (std::int64_t i = 0; i < n; ++i)
    for (std::int64_t j = 0; j < n; ++j)
      m(j, i) = i == j ? plan->damped_diag[static_cast<std::size_t>(n - 1 - i)]
                       : h[static_cast<std::int64_t>(plan->perm[static_cast<std::size_t>(n - 1 - i)]) * n +
                           plan->perm[static_cast<std::size_t>(n - 1 - j)]];
  Eigen::LLT<Eigen::MatrixXd, Eigen::Lower> llt(m);
  if (llt.info() != Eigen::Success) return Error::invalid("GPTQ: the damped Hessian is not positive definite");
  const Eigen::MatrixXd linv = llt.matrixL().solve(Eigen::MatrixXd::Identity(n, n));
  MatF u = MatF::Zero(n, n);
  for (std::int64_t i = 0; i < n; ++i)
    for (std::int64_t j = i; j < n; ++j) u(i, j) = static_cast<float>(linv(n - 1 - i, n - 1 - j));

  MatF wd(rows, n);
  for (std::int64_t r = 0; r < rows; ++r)
    for (std::int64_t p = 0; p < n; ++p) {
      const std::int32_t c = plan->perm[static_cast<std::size_t>(p)];
      wd(r, p) = plan->dead[static_cast<std::size_t>(c)] ? 0.0f : w[r * n + c];
    }
  const int groups = plan->groups, gs = plan->group_size;
  const bool static_groups = gs > 0 && spec.static_groups;
  std::vector<float> cur_scale(static_cast<std::size_t>(rows), 1.0f), cur_zero(static_cast<std::size_t>(rows), 0.0f);
  std::vector<float> st_scale, st_zero;
  auto fit = [&](auto value, std::int64_t len, float& s, float& z) {
    float lo = value(0), hi = value(0);
    for (std::int64_t k = 1; k < len; ++k) {
      lo = grid_math::min_of(lo, value(k));
      hi = grid_math::max_of(hi, value(k));
    }
    grid_math::grid_from_range(lo, hi, spec.grid.bits, spec.grid.symmetric, s, z);
  };
  for (std::int64_t r = 0; r < rows; ++r) {
    if (gs == 0) fit([&](std::int64_t k) { return wd(r, k); }, n, cur_scale[static_cast<std::size_t>(r)], cur_zero[static_cast<std::size_t>(r)]);
  }
  if (static_groups) {
    st_scale.resize(static_cast<std::size_t>(rows * groups));
    st_zero.resize(st_scale.size());
    for (std::int64_t r = 0; r < rows; ++r)
      for (int g = 0; g < groups; ++g)
        fit([&](std::int64_t k) {
              const std::int64_t c = static_cast<std::int64_t>(g) * gs + k;
              return plan->dead[static_cast<std::size_t>(c)] ? 0.0f : w[r * n + c];
            },
            gs, st_scale[static_cast<std::size_t>(r * groups + g)], st_zero[static_cast<std::size_t>(r * groups + g)]);
  }
  GptqResult out;
  out.rows = rows;
  out.cols = cols;
  out.groups = groups;
  out.g_idx.assign(plan->g_idx.begin(), plan->g_idx.end());
  out.codes.resize(static_cast<std::size_t>(rows * n));
  out.dequantized.resize(out.codes.size());
  out.scales.resize(static_cast<std::size_t>(rows * groups));
  out.zeros.resize(out.scales.size());
  const int bs = spec.block_size;
  MatF err(rows, bs);
  gptq_walk::BlockParams p;
  p.w = wd.data();
  p.u = u.data();
  p.rows = rows;
  p.n = n;
  p.bits = spec.grid.bits;
  p.symmetric = spec.grid.symmetric;
  p.group_size = gs;
  p.static_groups = static_groups;
  p.groups = groups;
  p.perm = plan->perm.data();
  p.g_idx = plan->g_idx.data();
  p.static_scale = st_scale.data();
  p.static_zero = st_zero.data();
  p.cur_scale = cur_scale.data();
  p.cur_zero = cur_zero.data();
  p.codes = out.codes.data();
  p.dequantized = out.dequantized.data();
  p.scales = out.scales.data();
  p.zeros = out.zeros.data();
  p.err = err.data();
  p.err_ld = bs;
  std::vector<float> blk(static_cast<std::size_t>(bs));
  for (std::int64_t i1 = 0; i1 < n; i1 += bs) {
    const std::int64_t i2 = std::min(n, i1 + bs), count = i2 - i1;
    p.i1 = i1;
    p.count = static_cast<int>(count);
    for (std::int64_t r = 0; r < rows; ++r) {
      for (std::int64_t i = 0; i < count; ++i) blk[static_cast<std::size_t>(i)] = wd(r, i1 + i);
      gptq_walk::walk_block_row(p, r, blk.data(), 1);
    }
    if (i2 < n) wd.rightCols(n - i2).noalias() -= err.leftCols(count) * u.block(i1, i2, count, n - i2);
  }
  return out;
}

}  // namespace qs::test
