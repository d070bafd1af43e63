#include "quant/named_format.h"

#include <cmath>
#include <string>

#include "backend/thread_pool.h"
#include "quant/format_checks.h"
#include "quant/fp4_formats.h"
#include "quant/fp8_quant.h"
#include "quant/nf4.h"
#include "util/half.h"

namespace qs {
namespace {

// The quantizers' blocks (the format table's rows repeat them for consumers).
struct Entry {
  NamedFormat f;
  std::string_view label;
  int block;
};
constexpr Entry kFormats[] = {
    {NamedFormat::Nf4, "NF4", kNf4Block},       {NamedFormat::Nf4Dq, "NF4", kNf4Block},
    {NamedFormat::Fp8E4M3, "FP8 E4M3", 1},      {NamedFormat::Fp8E4M3Ch, "FP8 E4M3", 1},
    {NamedFormat::Fp8E5M2, "FP8 E5M2", 1},      {NamedFormat::Fp8E5M2Ch, "FP8 E5M2", 1},
    {NamedFormat::Mxfp4, "MXFP4", kMxfp4Block}, {NamedFormat::Nvfp4, "NVFP4", kNvfp4Block},
    {NamedFormat::F16, "F16", 1},               {NamedFormat::BF16, "BF16", 1},
};

const Entry& entry(NamedFormat f) {
  for (const Entry& e : kFormats)
    if (e.f == f) return e;
  return kFormats[0];
}

Fp8Spec fp8_spec(NamedFormat f) {
  return {f == NamedFormat::Fp8E5M2 || f == NamedFormat::Fp8E5M2Ch ? Fp8Type::E5M2 : Fp8Type::E4M3,
          f == NamedFormat::Fp8E4M3Ch || f == NamedFormat::Fp8E5M2Ch};
}

}  // namespace

int named_format_block(NamedFormat f) { return entry(f).block; }

double named_format_bits_per_weight(NamedFormat f, std::int64_t rows, std::int64_t cols) {
  switch (f) {
    case NamedFormat::Nf4: return nf4_bits_per_weight(rows, cols, false);
    case NamedFormat::Nf4Dq: return nf4_bits_per_weight(rows, cols, true);
    case NamedFormat::Fp8E4M3: case NamedFormat::Fp8E4M3Ch: case NamedFormat::Fp8E5M2: case NamedFormat::Fp8E5M2Ch:
      return fp8_bits_per_weight(fp8_spec(f), rows, cols);
    case NamedFormat::Mxfp4: return 4.25;
    case NamedFormat::Nvfp4: return nvfp4_bits_per_weight(rows, cols);
    case NamedFormat::F16: case NamedFormat::BF16: return 16.0;
  }
  return 0.0;
}

Result<void> check_named_format_shape(NamedFormat f, std::int64_t cols) {
  const Entry& e = entry(f);
  return detail::check_whole_blocks(cols, e.block, std::string(e.label).c_str());
}

Result<void> rtn_named_format(NamedFormat f, const float* w, std::int64_t rows, std::int64_t cols, float* deq,
                              ThreadPool* pool) {
  if (auto r = check_named_format_shape(f, cols); !r) return r.error();
  switch (f) {
    case NamedFormat::Nf4: case NamedFormat::Nf4Dq: {
      auto q = quantize_nf4(w, rows, cols, f == NamedFormat::Nf4Dq, pool);
      if (!q) return q.error();
      dequantize_nf4_into(*q, deq);
      return {};
    }
    case NamedFormat::Fp8E4M3: case NamedFormat::Fp8E4M3Ch: case NamedFormat::Fp8E5M2: case NamedFormat::Fp8E5M2Ch: {
      auto q = quantize_fp8(w, rows, cols, fp8_spec(f), pool);
      if (!q) return q.error();
      dequantize_fp8_into(*q, deq);
      return {};
    }
    case NamedFormat::Mxfp4: {
      auto q = quantize_mxfp4(w, rows, cols, pool);
      if (!q) return q.error();
      dequantize_mxfp4_into(*q, deq);
      return {};
    }
    case NamedFormat::Nvfp4: {
      auto q = quantize_nvfp4(w, rows, cols, pool);
      if (!q) return q.error();
      dequantize_nvfp4_into(*q, deq);
      return {};
    }
    case NamedFormat::F16: case NamedFormat::BF16: {
      // Keeping 16 bits is rounding (RNE) to the type; F16 overflow past 65504 would become Inf: refused too.
      if (auto r = detail::check_finite(w, rows, cols); !r) return r.error();
      const bool half = f == NamedFormat::F16;
      ThreadPool& tp = pool ? *pool : ThreadPool::global();
      tp.parallel_for(static_cast<std::size_t>(rows), [&](std::size_t r, unsigned) {
        const std::int64_t base = static_cast<std::int64_t>(r) * cols;
        for (std::int64_t i = base; i < base + cols; ++i)
          deq[i] = half ? f16_to_f32(f32_to_f16(w[i])) : bf16_to_f32(f32_to_bf16(w[i]));
      });
      for (std::int64_t i = 0; i < rows * cols; ++i) {
        if (!std::isfinite(deq[i]))
          return Error::invalid(std::string("weight ").append(std::to_string(i)).append(" (")
                                    .append(std::to_string(w[i])).append(") overflows ").append(half ? "F16" : "BF16"));
      }
      return {};
    }
  }
  return Error::invalid("unknown named format");
}

}  // namespace qs
