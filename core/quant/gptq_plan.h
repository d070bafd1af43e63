#pragma once
// The host-side part of a GPTQ run that does not depend on where the walk
// runs: input checks, the column order (act-order), dead inputs, the damped
// Hessian diagonal and each column's group. quant/gptq.cpp's CPU walk derives
// the same things inline; device backends (kernels/) take them from here, and
// tests check the two agree.
#include <cstdint>
#include <string>
#include <vector>

#include "quant/gptq.h"
#include "util/result.h"

namespace qs {

struct GptqPlan {
  std::int64_t rows = 0, cols = 0;
  int group_size = 0;                // > 0: groups of input columns; 0: one grid per row
  int groups = 1;                    // per row
  std::vector<std::int32_t> perm;    // walk position -> original column (identity, or by descending H_cc)
  std::vector<std::uint8_t> dead;    // per original column: H_cc == 0 (input never active; its weight is zeroed)
  // Per walk position: H_pp after the dead inputs' diagonal is set to 1 and the
  // damping percdamp * mean(diag) is added, in F32 exactly as gptq.cpp does.
  std::vector<float> damped_diag;
  std::vector<std::int32_t> g_idx;   // per original column: its group (GptqResult::g_idx)
};

// Checks the spec and the inputs as gptq() does (same messages) and plans the
// run. Only integer grids: a ggml block_type is an InvalidArgument here.
Result<GptqPlan> plan_gptq(const float* w, std::int64_t rows, std::int64_t cols, const float* h, const GptqSpec& spec);

}  // namespace qs
