#pragma once
// What quantization does to one layer's value distribution, for the plan
// editor's "before / after" view: the weights' histogram before and after a
// quantize-dequantize round trip on the same bins (the after one collapses onto
// the grid's levels), and the histogram of the error Q(W) - W, whose spread and
// tails show what the SQNR figure summarises.
#include "model/tensor_info.h"
#include "quant/measure.h"
#include "stats/tensor_stats.h"
#include "util/op_context.h"
#include "util/result.h"

namespace qs {

struct QuantErrorHistograms {
  Histogram before;    // W over [lo, hi] = the range of W and Q(W) together
  Histogram after;     // Q(W) over the same bins
  Histogram error;     // Q(W) - W over [-m, m], m = max |Q(W) - W| (a tiny range when exact)
  WeightError figures;  // as measure_quantization reports them
};

// The histograms of a weight `w` and its quantized image `deq` (n finite values
// each), for methods that produce `deq` themselves (clip, GPTQ, AWQ).
// `bins` in [1, kMaxHistogramBins].
Result<QuantErrorHistograms> error_histograms_of(const float* w, const float* deq, std::size_t n, int bins);

// RTN with `choice`, then error_histograms_of. Errors as quantize_dequantize's.
Result<QuantErrorHistograms> quant_error_histograms(const TensorInfo& t, const QuantChoice& choice, int bins,
                                                    OpContext& ctx);

}  // namespace qs
