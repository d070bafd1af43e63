#include "stats/tensor_stats.h"

namespace qs {

void resolve_histogram_range(const HistogramSpec& spec, double min, double max, double min_abs_nonzero,
                             double abs_max, double& lo, double& hi) {
  if (spec.scale == HistogramScale::Linear) {
    lo = spec.lo.value_or(min);
    hi = spec.hi.value_or(max);
  } else {
    lo = spec.lo.value_or(min_abs_nonzero > 0 ? std::log10(min_abs_nonzero) : 0.0);
    hi = spec.hi.value_or(abs_max > 0 ? std::log10(abs_max) : 0.0);
  }
  if (!(hi > lo)) {  // constant tensor or empty: a unit-wide range around the value
    const double c = lo;
    lo = c - 0.5;
    hi = c + 0.5;
  }
}

}  // namespace qs
