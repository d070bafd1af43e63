#pragma once
// Checks shared by the NF4, FP8, MXFP4, NVFP4 and F16/BF16 quantizers: the
// row must hold whole blocks, and every weight must be finite (a NaN would
// poison a block's scale and every code in it).
#include <cmath>
#include <cstdint>
#include <string>

#include "util/result.h"

namespace qs::detail {

inline Result<void> check_whole_blocks(std::int64_t cols, std::int64_t block, const char* format) {
  if (block > 1 && cols % block != 0)
    return Error::unsupported(std::string("row length ").append(std::to_string(cols)).append(" is not a multiple of the ")
                                  .append(format).append(" block (").append(std::to_string(block)).append(")"));
  return {};
}

inline Result<void> check_finite(const float* w, std::int64_t rows, std::int64_t cols) {
  for (std::int64_t i = 0; i < rows * cols; ++i)
    if (!std::isfinite(w[i]))
      return Error::invalid(std::string("weight ").append(std::to_string(i)).append(" is not finite (row ")
                                .append(std::to_string(i / cols)).append(", column ").append(std::to_string(i % cols))
                                .append(")"));
  return {};
}

}  // namespace qs::detail
