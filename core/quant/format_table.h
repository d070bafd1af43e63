#pragma once
// The format table: one row per weight format QuantScope quantizes to, and
// the only place that knows a format's name. Like ggml's per-type traits: the
// row says what the format is (kind, block, exact storage cost), what each
// kind of file does with it (its GGUF type, how the HDF5 checkpoint stores it,
// whether GPTQ safetensors can pack it) and how to quantize onto it. Integer
// grids are one row for the whole family "int<bits>[-g<group>|-ch|-tensor][-sym]".
//
// Adding a format is adding a row here (and its quantizer's own file).
// Consumers ask the row — the plan editor's menus, measurement, evaluation,
// allocation, the exports and the size account — and never compare names.
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "model/dtype.h"
#include "quant/int_grid.h"
#include "quant/named_format.h"
#include "util/result.h"

namespace qs {

class ThreadPool;
struct QuantChoice;

// Bit flags, so that a method can name the kinds it targets.
enum class FormatKind : unsigned {
  Ggml = 1,     // ggml blocks (Q4_0, Q4_K, IQ4_NL, ...): what llama.cpp runs
  IntGrid = 2,  // integer grid with scale/zero per tensor, channel or group (GPTQ/AWQ checkpoints)
  Element = 4,  // element formats with their own scales: NF4, FP8, MXFP4/6, NVFP4, F16/BF16/F32
  Named = Element,
};
constexpr unsigned kind_bit(FormatKind k) { return static_cast<unsigned>(k); }

// How the HDF5 quantized checkpoint stores a tensor of the format
// (docs/hdf5-checkpoint.md); None: it cannot.
enum class H5Storage { None, IntGrid, GgmlBlocks, Nf4, Fp8, Mxfp4, Nvfp4, Copy16 };

struct FormatRow {
  std::string_view name;     // the plan's spelling; for the integer-grid family "int"
  std::string_view label;    // for people: "Q4_K", "NF4", "FP8 E4M3 per channel"
  std::string_view aliases;  // other spellings a plan may use, space separated
  FormatKind kind;
  int block;                 // a row must be whole blocks of this (1: any length); int grids: their group
  std::optional<DType> gguf; // the tensor type a GGUF file gets; none: GGUF cannot hold it
  H5Storage h5;
  bool gptq_packing;         // GPTQ safetensors (qweight/qzeros/scales) can hold it
  bool keeps_precision;      // f16/bf16/f32: a copy, not a quantization
  std::string_view about;    // one line for tooltips and --help
  std::optional<NamedFormat> element;  // Kind::Element: the quantizer's own enum

  // Exact storage cost of a [rows, cols] tensor: codes, scales, zeros and tensor scales.
  double (*bits)(const QuantChoice& c, std::int64_t rows, std::int64_t cols);
  // Why a row of `cols` values cannot take the format (Unsupported), or ok.
  Result<void> (*fits)(const QuantChoice& c, std::int64_t cols);
  // Reference round to nearest: out = dequantize(quantize(w)); null when no
  // quantizer exists yet (the reason is `missing`).
  Result<void> (*fake_quant)(const QuantChoice& c, const float* w, std::int64_t rows, std::int64_t cols, float* out,
                             ThreadPool* pool);
  std::string_view missing;  // why fake_quant is null
  // ggml types on a uniform grid: the bits of a code and whether the grid is
  // symmetric (no min), for the histogram's grid overlay; 0: no uniform grid.
  int code_bits = 0;
  bool symmetric_codes = false;
};

// Every row, in the order menus show them.
std::span<const FormatRow> format_table();
// The row of an exact name or alias (not the integer family: parse_quant_choice).
const FormatRow* find_format_row(std::string_view name);
// The row of a ggml/float storage type (Q4_K, F16, ...), if any.
const FormatRow* format_row_of(DType t);
// Every fixed spelling (canonical names), and a few integer grids, for menus and errors.
std::vector<std::string> format_menu();

// One parsed format: a row, and for integer grids the grid. The fields kind,
// ggml_type, grid and named mirror the row for the quantizers' own switches.
struct QuantChoice {
  const FormatRow* row = nullptr;
  using Kind = FormatKind;
  Kind kind = Kind::IntGrid;
  DType ggml_type = DType::Q8_0;         // Kind::Ggml
  IntGridSpec grid;                      // Kind::IntGrid
  NamedFormat named = NamedFormat::Nf4;  // Kind::Element
  std::string name;                      // canonical spelling ("int4-g128", "q4_k")

  // The choice for one row of the table (the quantizers' tests and methods name targets this way).
  static QuantChoice int_grid(const IntGridSpec& g);
  static QuantChoice ggml(DType t);  // a ggml block or float storage type
  static QuantChoice named_format(NamedFormat f);

  double bits_per_weight(std::int64_t rows, std::int64_t cols) const { return row->bits(*this, rows, cols); }
  // The columns one scale covers, for methods that normalise per group (AWQ's w̄):
  // the int group (all columns per channel), the ggml (sub-)block of 32, the element block.
  std::int64_t scale_group(std::int64_t cols) const;
  // Unsupported with the reason when a row of `cols` cannot take it, or when no quantizer exists.
  Result<void> fits(std::int64_t cols) const;
  std::optional<DType> gguf_type() const { return row->gguf; }
  bool keeps_precision() const { return row->keeps_precision; }
  // out = dequantize(quantize(w)), rows in parallel; checks fits() first.
  Result<void> fake_quantize(const float* w, std::int64_t rows, std::int64_t cols, float* out,
                             ThreadPool* pool = nullptr) const;
};

// A format name (canonical or alias; integer grids by their pattern). Unknown
// names are Invalid with the list of what is known.
Result<QuantChoice> parse_quant_choice(std::string_view text);
// The choice for a storage type (Q4_K, F16, ...): the GGUF export's fallbacks.
std::optional<QuantChoice> quant_choice_of(DType t);
// The canonical spelling of an integer grid.
std::string int_grid_name(const IntGridSpec& g);

}  // namespace qs
