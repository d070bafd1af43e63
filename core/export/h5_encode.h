#pragma once
// How the HDF5 quantized checkpoint (docs/hdf5-checkpoint.md) stores one
// quantized tensor: its description (kind and the format's attributes) and
// its datasets, encoded from F32 weights. The exporter writes these and
// decodes them with the reader's own decoder (io/quantized_h5.h), so what the
// report measures is what a reader of the file gets.
#include <cstdint>

#include "io/quantized_h5.h"
#include "quant/measure.h"
#include "quant/outlier_keep.h"
#include "util/result.h"

namespace qs {

// Round to nearest of x [rows, cols] with `choice`: an integer grid, a ggml
// block type, NF4 (with or without double quantization), FP8 E4M3/E5M2 (per
// tensor or per channel), MXFP4 or NVFP4. F16/BF16 are Unsupported (the
// exporter keeps those tensors as copies). Sets desc.kind and the format's
// attributes; fills stored.
Result<void> encode_h5_tensor(const QuantChoice& choice, const float* x, std::int64_t rows, std::int64_t cols,
                              QuantizedH5Tensor& desc, QuantizedH5Stored& stored);

// Outlier keeping's result stored: the rest (x with the kept weights zeroed,
// as outlier_keep quantized it) encoded as above, plus the F16 side table as
// "weights" (row, col, value) or, for whole input channels, "channels"
// (channel, then every row's value).
Result<void> encode_h5_tensor_with_outliers(const QuantChoice& choice, const OutlierResult& kept, const float* x,
                                            std::int64_t rows, std::int64_t cols, QuantizedH5Tensor& desc,
                                            QuantizedH5Stored& stored);

}  // namespace qs
