#pragma once
// Importance matrices as llama.cpp writes and reads them: for each weight
// matrix (by its GGUF name), the mean of x^2 over the calibration activations
// entering each of its input columns. llama-quantize --imatrix weights every
// ggml quantizer's scale search with it (quant/ggml_imatrix_quants.h).
//
// Two layouts are read: the legacy binary one of llama-imatrix (int32 count;
// per entry int32 name length, name, int32 ncall, int32 nval, float32[nval]
// holding ncall x the mean; then int32 chunk count, int32 length, dataset
// name), and the GGUF one of newer llama.cpp (per matrix "<name>.in_sum2",
// the sums, and "<name>.counts", how many activations they hold). The legacy
// layout is written, so that any llama-quantize reads ours.
#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <vector>

#include "util/result.h"

namespace qs {

struct ImportanceMatrix {
  std::map<std::string, std::vector<float>> columns;  // GGUF tensor name -> mean x^2 per input column
  std::int32_t chunks = 0;                            // calibration chunks (the legacy ncall)
  std::string dataset;                                // the calibration text it came from
  std::string file;                                   // the path it was read from (read_imatrix)
  const std::vector<float>* find(const std::string& tensor) const {
    auto it = columns.find(tensor);
    return it == columns.end() ? nullptr : &it->second;
  }
};

// Either layout (told apart by the GGUF magic). A truncated, lying or hostile
// file is an error naming the file and the entry; no allocation exceeds what
// the file's size can hold.
Result<ImportanceMatrix> read_imatrix(const std::string& path);
// The same from bytes in memory; `label` starts every error message (the fuzzer's entry).
Result<ImportanceMatrix> parse_imatrix(std::span<const std::byte> bytes, const std::string& label);

// The legacy layout, atomically (a temporary renamed into place). Refuses
// non-finite or negative values and empty entries.
Result<void> write_imatrix(const std::string& path, const ImportanceMatrix& m);

}  // namespace qs
