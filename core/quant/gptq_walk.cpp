#include "quant/gptq_walk.h"

#include <atomic>

namespace qs::detail {
namespace {

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wpsabi"  // the vectors never cross a call: the body is inlined into each build
typedef float v8f __attribute__((vector_size(32)));
typedef std::int32_t v8i __attribute__((vector_size(32)));

[[gnu::always_inline]] inline void walk_body(float* x, const float* x0, float* codes, float* values, float* errors,
                                             std::int64_t i_begin, std::int64_t i_end, std::int64_t count, const float* g,
                                             std::int64_t g_stride, const GptqLaneGrid& grid) {
  const v8f scale = *reinterpret_cast<const v8f*>(grid.scale), zero = *reinterpret_cast<const v8f*>(grid.zero),
            offset = *reinterpret_cast<const v8f*>(grid.offset), lo = *reinterpret_cast<const v8f*>(grid.lo),
            hi = *reinterpret_cast<const v8f*>(grid.hi);
  const v8f one = v8f{} + 1.0f, magic = v8f{} + 12582912.0f, limit = v8f{} + 4194304.0f;
  const v8i abs_mask = v8i{} + 0x7FFFFFFF;
  const v8f divisor = scale != 0.0f ? scale : one;
  for (std::int64_t i = i_begin; i < i_end; ++i) {
    // int_grid_code's arithmetic: a true division, round half to even (the
    // magic-number add/subtract, exact below 2^22), clamp.
    const v8f t = (*reinterpret_cast<const v8f*>(x + i * kGptqLanes) - offset) / divisor;
    const v8f mag = reinterpret_cast<v8f>(reinterpret_cast<v8i>(t) & abs_mask);
    v8f q = (mag < limit ? (t + magic) - magic : t) + zero;
    q = q < lo ? lo : (q > hi ? hi : q);
    const v8f value = scale * (q - zero) + offset;
    const v8f err = value - *reinterpret_cast<const v8f*>(x0 + i * kGptqLanes);  // Q - W_original
    *reinterpret_cast<v8f*>(codes + i * kGptqLanes) = q;
    *reinterpret_cast<v8f*>(values + i * kGptqLanes) = value;
    *reinterpret_cast<v8f*>(errors + i * kGptqLanes) = err;
    // Push the error onto the rest of the block: x[j] -= err * G[i][j].
    const float* u = g + i * g_stride;
    for (std::int64_t j = i + 1; j < count; ++j) {
      v8f* xj = reinterpret_cast<v8f*>(x + j * kGptqLanes);
      *xj -= err * u[j];
    }
  }
}

void walk_portable(float* x, const float* x0, float* codes, float* values, float* errors, std::int64_t i_begin,
                   std::int64_t i_end, std::int64_t count, const float* g, std::int64_t g_stride, const GptqLaneGrid& grid) {
  walk_body(x, x0, codes, values, errors, i_begin, i_end, count, g, g_stride, grid);
}
#if defined(__x86_64__) && defined(__GNUC__)
// One register per vector instead of two; "avx2" without "fma", so the same IEEE operations.
__attribute__((target("avx2"))) void walk_avx2(float* x, const float* x0, float* codes, float* values, float* errors,
                                               std::int64_t i_begin, std::int64_t i_end, std::int64_t count,
                                               const float* g, std::int64_t g_stride, const GptqLaneGrid& grid) {
  walk_body(x, x0, codes, values, errors, i_begin, i_end, count, g, g_stride, grid);
}
#endif
#pragma GCC diagnostic pop

std::atomic<bool> g_portable{false};

}  // namespace

void gptq_walk_lanes(float* x, const float* x0, float* codes, float* values, float* errors, std::int64_t i_begin,
                     std::int64_t i_end, std::int64_t count, const float* g, std::int64_t g_stride,
                     const GptqLaneGrid& grid) {
#if defined(__x86_64__) && defined(__GNUC__)
  static const bool has_avx2 = __builtin_cpu_supports("avx2");
  if (has_avx2 && !g_portable.load(std::memory_order_relaxed))
    return walk_avx2(x, x0, codes, values, errors, i_begin, i_end, count, g, g_stride, grid);
#endif
  walk_portable(x, x0, codes, values, errors, i_begin, i_end, count, g, g_stride, grid);
}

void use_portable_gptq_walk(bool portable) { g_portable = portable; }

}  // namespace qs::detail
