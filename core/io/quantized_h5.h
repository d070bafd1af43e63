#pragma once
// Reads a QuantScope quantized checkpoint (docs/hdf5-checkpoint.md) back:
// every tensor's description and metrics, and its dequantized values on demand.
#include <cstdint>
#include <string>
#include <vector>

#include "model/dtype.h"
#include "util/result.h"

namespace qs {

struct QuantizedH5Tensor {
  std::string name, kind;  // kind: "copy", "int_grid", "ggml", "nf4", "fp8", "mxfp4", "nvfp4"
  std::vector<std::int64_t> shape;
  DType source_dtype = DType::F32;
  std::string format, method;  // quantized tensors
  double bits_per_weight = 0, sqnr_db = 0, max_abs_error = 0;
  int bits = 0, group_size = 0;  // int_grid
  bool symmetric = false;
  DType ggml_type = DType::Unknown;  // ggml
  bool double_quant = false;         // nf4: absmax double-quantized (codes per 64, absmax2 per 256 blocks)
  float nf4_offset = 0.0f;           // nf4 with double quantization
  bool fp8_e5m2 = false;             // fp8: E5M2 (else E4M3)
  bool per_channel = false;          // fp8: one scale per row (else one per tensor)
  float tensor_scale = 1.0f;         // nvfp4
  // Outlier keeping: "weights" or "channels" when an F16 side table is added
  // to the decoded values; outlier_count: its weights, or its channels.
  std::string outliers;
  std::int64_t outlier_count = 0;
  int group = 0;                    // the HDF5 group number (/tensors/NNNNNN)
};

struct QuantizedH5 {
  std::string path, plan_json, source_path, source_format;
  std::vector<QuantizedH5Tensor> tensors;
};

// A file from outside is read once in a child first (io/hdf5_guard.h: libhdf5
// is not safe on damaged files); `vet` false is for the file this process has
// just written (an export's read-back), which nothing else touched.
Result<QuantizedH5> read_quantized_h5(const std::string& path, bool vet = true);
// The tensor's values as F32 (copies decoded from their source type).
Result<std::vector<float>> read_quantized_h5_values(const QuantizedH5& file, const QuantizedH5Tensor& t);

// A tensor's datasets as stored.
struct QuantizedH5Stored {
  // The copy's data (its source bytes), the integer grid's or FP8's codes
  // (u8, [rows, cols]), the ggml blocks, or the 4-bit codes two to a byte
  // (NF4, MXFP4, NVFP4).
  std::vector<std::uint8_t> bytes;
  // scales: integer grid [rows, groups], FP8 [1 or rows], NF4 absmax per 64
  // weights (with double quantization: absmax2 per 256 blocks); zeros: integer grid.
  std::vector<float> scales, zeros;
  std::vector<std::uint8_t> scale_codes;  // MXFP4 E8M0 per 32, NVFP4 E4M3 per 16, NF4 absmax codes per 64 (double quantized)
  // Outliers: "weights" rows and cols of each kept weight; "channels" the kept input channels in outlier_cols.
  std::vector<std::int32_t> outlier_rows, outlier_cols;
  std::vector<std::uint16_t> outlier_values;  // F16 bits; "channels": [channel][row]
};
Result<QuantizedH5Stored> read_quantized_h5_stored(const QuantizedH5& file, const QuantizedH5Tensor& t);
// Its values as F32, from what read_quantized_h5_stored gave (read_quantized_h5_values is both).
Result<std::vector<float>> decode_quantized_h5(const QuantizedH5& file, const QuantizedH5Tensor& t,
                                               const QuantizedH5Stored& stored);

}  // namespace qs
