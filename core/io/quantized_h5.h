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
  std::string name, kind;  // kind: "copy", "int_grid", "ggml"
  std::vector<std::int64_t> shape;
  DType source_dtype = DType::F32;
  std::string format, method;  // quantized tensors
  double bits_per_weight = 0, sqnr_db = 0, max_abs_error = 0;
  int bits = 0, group_size = 0;  // int_grid
  bool symmetric = false;
  DType ggml_type = DType::Unknown;  // ggml
  int group = 0;                    // the HDF5 group number (/tensors/NNNNNN)
};

struct QuantizedH5 {
  std::string path, plan_json, source_path, source_format;
  std::vector<QuantizedH5Tensor> tensors;
};

Result<QuantizedH5> read_quantized_h5(const std::string& path);
// The tensor's values as F32 (copies decoded from their source type).
Result<std::vector<float>> read_quantized_h5_values(const QuantizedH5& file, const QuantizedH5Tensor& t);

// A tensor's datasets as stored: `bytes` is the copy's data (its source
// bytes), the integer grid's codes (u8, [rows, cols]) or the ggml blocks;
// scales and zeros ([rows, groups]) only for an integer grid.
struct QuantizedH5Stored {
  std::vector<std::uint8_t> bytes;
  std::vector<float> scales, zeros;
};
Result<QuantizedH5Stored> read_quantized_h5_stored(const QuantizedH5& file, const QuantizedH5Tensor& t);
// Its values as F32, from what read_quantized_h5_stored gave (read_quantized_h5_values is both).
Result<std::vector<float>> decode_quantized_h5(const QuantizedH5& file, const QuantizedH5Tensor& t,
                                               const QuantizedH5Stored& stored);

}  // namespace qs
