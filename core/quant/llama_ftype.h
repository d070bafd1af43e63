#pragma once
// llama.cpp's file types ("Q4_K_M", "Q6_K", ...) as presets: the ggml type
// llama-quantize gives each tensor for a file type, with its per-tensor rules
// (more bits for some attn_v / ffn_down / output tensors) and its fallback
// when a row is not a whole number of blocks (Q4_K -> Q5_0, Q5_K -> Q5_1,
// Q6_K -> Q8_0, Q2_K/Q3_K -> IQ4_NL, then F16). Reproducing these choices
// exactly is what makes our GGUF exports byte-identical to llama-quantize's.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "model/dtype.h"

namespace qs {

// The values are llama.cpp's LLAMA_FTYPE_* numbers, written to general.file_type.
enum class LlamaFtype : std::uint32_t {
  F32 = 0, F16 = 1, Q4_0 = 2, Q4_1 = 3, Q8_0 = 7, Q5_0 = 8, Q5_1 = 9,
  Q2_K = 10, Q3_K_S = 11, Q3_K_M = 12, Q3_K_L = 13, Q4_K_S = 14, Q4_K_M = 15,
  Q5_K_S = 16, Q5_K_M = 17, Q6_K = 18, IQ2_XXS = 19, IQ2_XS = 20, IQ3_XXS = 23, IQ1_S = 24, IQ4_NL = 25, IQ3_S = 26, IQ3_M = 27, IQ2_S = 28, IQ2_M = 29, IQ1_M = 31, IQ4_XS = 30, BF16 = 32,
};

// "q4_k_m", "Q6_K", "f16", ... (case-insensitive); nullopt when unknown.
std::optional<LlamaFtype> parse_llama_ftype(std::string_view name);
std::string_view llama_ftype_name(LlamaFtype f);  // "Q4_K_M"
std::string llama_ftype_names();                  // all names, comma-separated, for help texts
DType llama_ftype_base_type(LlamaFtype f);        // Q4_K_M -> Q4_K

// A tensor as llama-quantize sees it: GGUF name and shape in our order (rows first).
struct FtypeTensor {
  std::string name;
  std::vector<std::int64_t> shape;
  DType dtype = DType::F32;  // its type in the source
};

struct FtypeModelFacts {
  std::int64_t num_layers = 0;  // llama.block_count
  std::int64_t num_heads = 0, num_kv_heads = 0;
  bool has_imatrix = false;  // the run quantizes with an importance matrix (some rules depend on it)
};

struct FtypeChoice {
  DType type = DType::F32;
  bool converted = false;  // false: the source bytes are copied (norms, 1-D, or already that type)
  std::string note;        // why the rule or the fallback changed the type; empty otherwise
};

// The type of every tensor, given in llama-quantize's order (llama_quantize_order):
// its layer counters advance in that order. One choice per tensor. `pure`:
// llama-quantize --pure, every weight matrix in the file type's base type (no
// per-tensor rules; rows the type cannot take still fall back, where
// llama-quantize would abort).
std::vector<FtypeChoice> llama_ftype_choices(const std::vector<FtypeTensor>& tensors, LlamaFtype ftype,
                                             const FtypeModelFacts& facts, bool pure = false);

// llama-quantize's fallback for rows of `row_length` that `wanted` cannot take
// (Q2_K/Q3_K -> IQ4_NL, Q4_K -> Q5_0, Q5_K -> Q5_1, Q6_K -> Q8_0, then F16; where
// llama.cpp has none, F16). Returns `wanted` when it fits.
DType llama_fallback_type(DType wanted, std::int64_t row_length);

// llama.cpp's tensor order: by block number (tensors outside blocks first), then by name.
bool llama_quantize_order(std::string_view a, std::string_view b);

}  // namespace qs
