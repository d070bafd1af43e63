#pragma once
// Damaged variants of a good file, for the reliability corpus: truncations at
// the format's structural points, bit flips, zeroed ranges, lying lengths and
// counts, wrong JSON types and deep nesting. Each generator walks the format
// itself (independently of the readers under test) to find where its fields
// are, and is deterministic: the same input gives the same variants, so a
// failure names a case that can be made again.
#include <cstdint>
#include <string>
#include <vector>

namespace qs::reliability {

struct Variant {
  std::string what;   // "gguf: tensor[3].dims[0] = 2^40"
  std::string bytes;  // the damaged file
};

// GGUF: header counts, every metadata key/type/length, tensor infos (n_dims,
// dims, type, offset), the data start; `budget` bounds how many variants.
std::vector<Variant> gguf_variants(const std::string& good, std::size_t budget);

// safetensors: the 8-byte header length and the JSON header's dtype, shape
// and data_offsets of a sample of tensors, metadata, truncations.
std::vector<Variant> safetensors_variants(const std::string& good, std::size_t budget);

// Any JSON document: values at a sample of paths replaced by other types,
// absurd numbers or nesting, keys removed, truncation, invalid UTF-8, deep nesting.
std::vector<Variant> json_variants(const std::string& good, std::size_t budget);

// A binary file whose structure is not walked here (HDF5, protobuf, the legacy
// imatrix): truncations (dense near the start, where headers live), bit flips,
// zeroed ranges and all-ones words.
std::vector<Variant> binary_variants(const std::string& good, std::size_t budget);

}  // namespace qs::reliability
