#include "quant/format_table.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstring>

#include "backend/thread_pool.h"
#include "quant/format_checks.h"
#include "quant/ggml_dequant.h"
#include "quant/ggml_quantize.h"
#include "quant/mxfp6.h"

namespace qs {
namespace {

// ---- the kinds' shared behaviour ------------------------------------------

double ggml_bits(const QuantChoice& c, std::int64_t, std::int64_t) {
  return 8.0 * dtype_block_bytes(c.ggml_type) / dtype_block_elems(c.ggml_type);
}
Result<void> ggml_fits(const QuantChoice& c, std::int64_t cols) {
  return detail::check_whole_blocks(cols, dtype_block_elems(c.ggml_type), std::string(c.row->label).c_str());
}
// In slices of whole blocks on the pool (inline when called from a pool task):
// every block is quantized on its own, so the result does not depend on the split.
constexpr std::size_t kBlocksPerTask = 2048;

Result<void> ggml_fake_quant(const QuantChoice& c, const float* w, std::int64_t rows, std::int64_t cols, float* out,
                             ThreadPool* pool) {
  const std::size_t elems = dtype_block_elems(c.ggml_type), bytes = dtype_block_bytes(c.ggml_type);
  const std::size_t blocks = static_cast<std::size_t>(rows * cols) / elems;
  const std::size_t tasks = (blocks + kBlocksPerTask - 1) / kBlocksPerTask;
  std::vector<Result<void>> results(tasks);
  (pool ? *pool : ThreadPool::global()).parallel_for(tasks, [&](std::size_t task, unsigned) {
    const std::size_t b0 = task * kBlocksPerTask, n = std::min(blocks - b0, kBlocksPerTask);
    std::vector<std::byte> packed(n * bytes);
    results[task] = quantize_ggml_blocks(c.ggml_type, w + b0 * elems, n, packed.data());
    if (results[task] && !dequantize_ggml_blocks(c.ggml_type, packed.data(), n, out + b0 * elems))
      results[task] = Error::unsupported(std::string("cannot decode ").append(c.row->label));
  });
  for (auto& r : results)
    if (!r) return r;  // the first failing slice names the problem
  return {};
}

double grid_bits(const QuantChoice& c, std::int64_t rows, std::int64_t cols) {
  IntQuantized shape;  // only the shape and spec matter for the cost
  shape.rows = rows;
  shape.cols = cols;
  shape.spec = c.grid;
  return shape.bits_per_weight();
}
Result<void> grid_fits(const QuantChoice& c, std::int64_t cols) { return validate_int_grid(c.grid, cols); }
Result<void> grid_fake_quant(const QuantChoice& c, const float* w, std::int64_t rows, std::int64_t cols, float* out,
                             ThreadPool* pool) {
  IntQuantized q;
  if (auto r = rtn_int_into(q, w, rows, cols, c.grid, pool); !r) return r.error();
  dequantize_int_into(q, out);
  return {};
}

double element_bits(const QuantChoice& c, std::int64_t rows, std::int64_t cols) {
  return named_format_bits_per_weight(c.named, rows, cols);
}
Result<void> element_fits(const QuantChoice& c, std::int64_t cols) {
  return detail::check_whole_blocks(cols, c.row->block, std::string(c.row->label).c_str());
}
Result<void> element_fake_quant(const QuantChoice& c, const float* w, std::int64_t rows, std::int64_t cols, float* out,
                                ThreadPool* pool) {
  return rtn_named_format(c.named, w, rows, cols, out, pool ? pool : &ThreadPool::global());
}

double f32_bits(const QuantChoice&, std::int64_t, std::int64_t) { return 32.0; }
Result<void> any_fits(const QuantChoice&, std::int64_t) { return {}; }
Result<void> f32_copy(const QuantChoice&, const float* w, std::int64_t rows, std::int64_t cols, float* out, ThreadPool*) {
  if (auto r = detail::check_finite(w, rows, cols); !r) return r.error();
  std::memcpy(out, w, static_cast<std::size_t>(rows * cols) * sizeof(float));
  return {};
}

double mxfp6_bits(const QuantChoice&, std::int64_t, std::int64_t) { return kMxfp6BitsPerWeight; }
Result<void> mxfp6_fake_quant(const QuantChoice&, const float* w, std::int64_t rows, std::int64_t cols, float* out,
                              ThreadPool* pool) {
  return fake_quantize_mxfp6(w, rows, cols, out, pool);
}

// ---- the table --------------------------------------------------------------

using K = FormatKind;
using H = H5Storage;
using N = NamedFormat;

// `no_quantizer`: why QuantScope cannot quantize to the type without more (empty: it can).
constexpr FormatRow ggml_row(std::string_view name, std::string_view label, DType t, int block, int code_bits,
                             bool symmetric, std::string_view about, std::string_view no_quantizer = "") {
  return {name, label, "", K::Ggml, block, t, H::GgmlBlocks, false, false, about, std::nullopt,
          ggml_bits, ggml_fits, no_quantizer.empty() ? ggml_fake_quant : nullptr, no_quantizer, code_bits, symmetric};
}
constexpr std::string_view kNeedsImatrix =
    "needs an importance matrix (GGUF export with --imatrix; plans and measurement do not take one yet)";
constexpr FormatRow element_row(std::string_view name, std::string_view label, std::string_view aliases, N f, int block,
                                std::optional<DType> gguf, H h5, bool keeps, std::string_view about) {
  return {name, label, aliases, K::Element, block, gguf, h5, false, keeps, about, f,
          element_bits, element_fits, element_fake_quant, ""};
}

// Menus list rows in this order.
const FormatRow kRows[] = {
    ggml_row("q8_0", "Q8_0", DType::Q8_0, 32, 8, true, "ggml: 8-bit codes, one F16 scale per 32 (8.5 bits/weight)"),
    ggml_row("q6_k", "Q6_K", DType::Q6_K, 256, 6, true, "ggml k-quant: 6-bit codes in 256-blocks with 8-bit sub-scales (6.5625)"),
    ggml_row("q5_k", "Q5_K", DType::Q5_K, 256, 5, false, "ggml k-quant: 5-bit codes in 256-blocks, 6-bit sub-scales and mins (5.5)"),
    ggml_row("q5_1", "Q5_1", DType::Q5_1, 32, 5, false, "ggml: 5-bit codes, F16 scale and min per 32 (6.0)"),
    ggml_row("q5_0", "Q5_0", DType::Q5_0, 32, 5, true, "ggml: 5-bit symmetric codes, F16 scale per 32 (5.5)"),
    ggml_row("q4_k", "Q4_K", DType::Q4_K, 256, 4, false, "ggml k-quant: 4-bit codes in 256-blocks, 6-bit sub-scales and mins (4.5)"),
    ggml_row("q4_1", "Q4_1", DType::Q4_1, 32, 4, false, "ggml: 4-bit codes, F16 scale and min per 32 (5.0)"),
    ggml_row("q4_0", "Q4_0", DType::Q4_0, 32, 4, true, "ggml: 4-bit symmetric codes, F16 scale per 32 (4.5)"),
    ggml_row("iq4_nl", "IQ4_NL", DType::IQ4_NL, 32, 0, false, "ggml: 4-bit non-linear codebook, F16 scale per 32 (4.5)"),
    ggml_row("iq4_xs", "IQ4_XS", DType::IQ4_XS, 256, 0, false,
             "ggml: 4-bit non-linear codebook in 256-blocks with 6-bit sub-scales (4.25)"),
    ggml_row("iq3_xxs", "IQ3_XXS", DType::IQ3_XXS, 256, 0, true,
             "ggml i-quant: magnitudes of 4 as one of 256 lattice points, 7 sign bits per 8 (3.0625)"),
    ggml_row("iq3_s", "IQ3_S", DType::IQ3_S, 256, 0, true,
             "ggml i-quant: magnitudes of 4 as one of 512 lattice points, 8 sign bits, 4-bit scales per 32 (3.4375)"),
    ggml_row("q3_k", "Q3_K", DType::Q3_K, 256, 3, true, "ggml k-quant: 3-bit codes in 256-blocks, 6-bit sub-scales (3.4375)"),
    ggml_row("q2_k", "Q2_K", DType::Q2_K, 256, 2, false, "ggml k-quant: 2-bit codes in 256-blocks, 4-bit sub-scales and mins (2.625)"),
    ggml_row("iq2_s", "IQ2_S", DType::IQ2_S, 256, 0, false,
             "ggml i-quant: magnitudes of 8 as one of 1024 lattice points, 8 sign bits, 4-bit scales per 16 (2.5625)"),
    ggml_row("iq2_xs", "IQ2_XS", DType::IQ2_XS, 256, 0, false,
             "ggml i-quant: magnitudes of 8 as one of 512 lattice points, 7 sign bits, 4-bit scales per 16 (2.3125)",
             kNeedsImatrix),
    ggml_row("iq2_xxs", "IQ2_XXS", DType::IQ2_XXS, 256, 0, false,
             "ggml i-quant: magnitudes of 8 as one of 256 lattice points, 7 sign bits, 4-bit scales per 32 (2.0625)",
             kNeedsImatrix),
    ggml_row("iq1_m", "IQ1_M", DType::IQ1_M, 256, 0, false,
             "ggml i-quant: -1/0/1 plus a shift of 1/8, groups of 8 as one of 2048 lattice points, 3-bit scales per 16 (1.75)",
             kNeedsImatrix),
    ggml_row("iq1_s", "IQ1_S", DType::IQ1_S, 256, 0, false,
             "ggml i-quant: -1/0/1 plus a shift of 1/8, groups of 8 as one of 2048 lattice points, 3-bit scales per 32 (1.5625)",
             kNeedsImatrix),
    element_row("nf4", "NF4", "", N::Nf4, 64, std::nullopt, H::Nf4, false,
                "bitsandbytes NormalFloat4: 16 normal quantiles, F32 absmax per 64"),
    element_row("nf4-dq", "NF4 (double quant.)", "", N::Nf4Dq, 64, std::nullopt, H::Nf4, false,
                "NF4 with the absmax values quantized to 8 bits per 256 blocks (QLoRA)"),
    element_row("fp8-e4m3", "FP8 E4M3", "fp8", N::Fp8E4M3, 1, std::nullopt, H::Fp8, false,
                "OCP FP8 E4M3 elements, one F32 scale per tensor"),
    element_row("fp8-e4m3-ch", "FP8 E4M3 per channel", "", N::Fp8E4M3Ch, 1, std::nullopt, H::Fp8, false,
                "OCP FP8 E4M3 elements, one F32 scale per output channel"),
    element_row("fp8-e5m2", "FP8 E5M2", "", N::Fp8E5M2, 1, std::nullopt, H::Fp8, false,
                "OCP FP8 E5M2 elements, one F32 scale per tensor"),
    element_row("fp8-e5m2-ch", "FP8 E5M2 per channel", "", N::Fp8E5M2Ch, 1, std::nullopt, H::Fp8, false,
                "OCP FP8 E5M2 elements, one F32 scale per output channel"),
    element_row("mxfp4", "MXFP4", "", N::Mxfp4, 32, std::nullopt, H::Mxfp4, false,
                "OCP microscaling FP4 (E2M1), E8M0 scale per 32 (4.25)"),
    element_row("nvfp4", "NVFP4", "", N::Nvfp4, 16, std::nullopt, H::Nvfp4, false,
                "NVIDIA FP4 (E2M1), FP8 E4M3 scale per 16 and an F32 tensor scale (4.5)"),
    {"mxfp6", "MXFP6 E3M2", "fp6-e3m2-g32", K::Element, 32, std::nullopt, H::None, false, false,
     "OCP microscaling FP6 (E3M2), E8M0 scale per 32 (6.25)", std::nullopt, mxfp6_bits, element_fits,
     mxfp6_fake_quant, ""},
    element_row("f16", "F16", "fp16 half", N::F16, 1, DType::F16, H::Copy16, true, "keep 16-bit: IEEE half"),
    element_row("bf16", "BF16", "", N::BF16, 1, DType::BF16, H::Copy16, true, "keep 16-bit: bfloat16"),
    {"f32", "F32", "fp32 float", K::Element, 1, DType::F32, H::None, false, true, "keep 32-bit floats", std::nullopt,
     f32_bits, any_fits, f32_copy, ""},
    {"int", "integer grid", "", K::IntGrid, 1, std::nullopt, H::IntGrid, true, false,
     "int<bits>[-g<group>|-ch|-tensor][-sym]: scale (and zero) per group, channel or tensor", std::nullopt, grid_bits,
     grid_fits, grid_fake_quant, ""},
};

const FormatRow& int_row() { return kRows[std::size(kRows) - 1]; }

// A ggml type no row describes (IQ2_XXS, ...): it parses from nothing and fits nothing.
constexpr FormatRow kUnknownGgml{"", "ggml type", "", K::Ggml, 0, std::nullopt, H::None, false, false, "", std::nullopt,
                                 ggml_bits, ggml_fits, nullptr, "QuantScope has no quantizer for this ggml type"};

bool parse_int(std::string_view s, int& out) {
  const auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && p == s.data() + s.size();
}

bool has_alias(const FormatRow& r, std::string_view name) {
  for (std::size_t start = 0; start < r.aliases.size();) {
    const std::size_t space = std::min(r.aliases.find(' ', start), r.aliases.size());
    if (r.aliases.substr(start, space - start) == name) return true;
    start = space + 1;
  }
  return false;
}

QuantChoice choice_of(const FormatRow& r) {
  QuantChoice c;
  c.row = &r;
  c.kind = r.kind;
  c.name = std::string(r.name);
  if (r.kind == K::Ggml) c.ggml_type = *r.gguf;
  if (r.element) c.named = *r.element;
  return c;
}

// Lower case, so that "Q4_K" and "NF4" read as their rows.
std::string lowered(std::string_view s) {
  std::string out(s);
  for (char& ch : out) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  return out;
}

}  // namespace

std::span<const FormatRow> format_table() { return kRows; }

const FormatRow* find_format_row(std::string_view name) {
  const std::string n = lowered(name);
  for (const FormatRow& r : kRows)
    if (&r != &int_row() && (r.name == n || has_alias(r, n))) return &r;
  return nullptr;
}

const FormatRow* format_row_of(DType t) {
  for (const FormatRow& r : kRows)
    if (r.gguf == t) return &r;
  return nullptr;
}

std::vector<std::string> format_menu() {
  std::vector<std::string> out;
  for (const FormatRow& r : kRows)
    if (&r != &int_row()) out.emplace_back(r.name);
  return out;
}

std::string int_grid_name(const IntGridSpec& g) {
  std::string s = "int" + std::to_string(g.bits);
  if (g.group_size > 0) s += "-g" + std::to_string(g.group_size);
  else s += g.group_size == 0 ? "-ch" : "-tensor";
  if (g.symmetric) s += "-sym";
  return s;
}

QuantChoice QuantChoice::int_grid(const IntGridSpec& g) {
  QuantChoice c = choice_of(int_row());
  c.grid = g;
  c.name = int_grid_name(g);
  return c;
}

QuantChoice QuantChoice::ggml(DType t) {
  if (const FormatRow* r = format_row_of(t)) return choice_of(*r);
  QuantChoice c;
  c.row = &kUnknownGgml;  // fits() refuses it, naming why
  c.kind = K::Ggml;
  c.ggml_type = t;
  c.name = std::string(dtype_name(t));
  return c;
}

QuantChoice QuantChoice::named_format(NamedFormat f) {
  for (const FormatRow& r : kRows)
    if (r.element == f) return choice_of(r);
  return choice_of(kRows[0]);
}

std::optional<QuantChoice> quant_choice_of(DType t) {
  if (const FormatRow* r = format_row_of(t)) return choice_of(*r);
  return std::nullopt;
}

std::int64_t QuantChoice::scale_group(std::int64_t cols) const {
  if (kind == Kind::IntGrid) return grid.group_size > 0 ? grid.group_size : cols;
  if (kind == Kind::Element) return row->block > 1 ? row->block : cols;
  return 32;
}

Result<void> QuantChoice::fits(std::int64_t cols) const {
  if (!row->fake_quant) return Error::unsupported(std::string(row->label).append(": ").append(row->missing));
  return row->fits(*this, cols);
}

Result<void> QuantChoice::fake_quantize(const float* w, std::int64_t rows, std::int64_t cols, float* out,
                                        ThreadPool* pool) const {
  if (auto r = fits(cols); !r) return r.error();
  return row->fake_quant(*this, w, rows, cols, out, pool);
}

Result<QuantChoice> parse_quant_choice(std::string_view text) {
  if (const FormatRow* r = find_format_row(text)) return choice_of(*r);
  const auto bad = [&] {
    std::string known;
    for (const std::string& n : format_menu()) known += n + ", ";
    return Error::invalid("unknown format \"" + std::string(text) + "\": use " + known +
                          "or int<bits>[-g<group>|-ch|-tensor][-sym]");
  };
  // int<bits> followed by -options.
  std::vector<std::string_view> parts;
  for (std::size_t start = 0;;) {
    const std::size_t dash = text.find('-', start);
    parts.push_back(text.substr(start, dash == std::string_view::npos ? std::string_view::npos : dash - start));
    if (dash == std::string_view::npos) break;
    start = dash + 1;
  }
  IntGridSpec g;
  if (parts[0].substr(0, 3) != "int" || !parse_int(parts[0].substr(3), g.bits)) return bad();
  g.group_size = 128;
  g.symmetric = false;
  for (std::size_t i = 1; i < parts.size(); ++i) {
    const std::string_view part = parts[i];
    if (part == "sym") g.symmetric = true;
    else if (part == "ch") g.group_size = 0;
    else if (part == "tensor") g.group_size = -1;
    else if (part.size() > 1 && part[0] == 'g' && parse_int(part.substr(1), g.group_size) && g.group_size > 0) continue;
    else return bad();
  }
  if (auto r = validate_int_grid(g, g.group_size > 0 ? g.group_size : 1); !r) return r.error();
  return QuantChoice::int_grid(g);
}

}  // namespace qs
