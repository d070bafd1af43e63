#include "quant/fake_quant.h"

#include <cstddef>
#include <vector>

#include "backend/thread_pool.h"
#include "quant/ggml_dequant.h"
#include "quant/ggml_quantize.h"

namespace qs {

double QuantTarget::bits_per_weight(std::int64_t rows, std::int64_t cols) const {
  if (kind == Kind::Ggml) return 8.0 * dtype_block_bytes(ggml_type) / dtype_block_elems(ggml_type);
  if (kind == Kind::Named) return named_format_bits_per_weight(named, rows, cols);
  IntQuantized shape;  // only the shape and spec matter for the cost
  shape.rows = rows;
  shape.cols = cols;
  shape.spec = grid;
  return shape.bits_per_weight();
}

std::string QuantTarget::name() const {
  if (kind == Kind::Ggml) return std::string(dtype_name(ggml_type));
  if (kind == Kind::Named) return std::string(named_format_name(named));
  std::string s = "int";
  s.append(std::to_string(grid.bits));
  if (grid.group_size > 0) s.append("-g").append(std::to_string(grid.group_size));
  else s.append(grid.group_size == 0 ? "-ch" : "-tensor");
  if (grid.symmetric) s.append("-sym");
  return s;
}

std::int64_t QuantTarget::scale_group(std::int64_t cols) const {
  if (kind == Kind::IntGrid) return grid.group_size > 0 ? grid.group_size : cols;
  if (kind == Kind::Named) {
    const int block = named_format_block(named);
    return block > 1 ? block : cols;
  }
  return 32;
}

Result<void> validate_target(const QuantTarget& t, std::int64_t cols) {
  if (t.kind == QuantTarget::Kind::IntGrid) return validate_int_grid(t.grid, cols);
  if (t.kind == QuantTarget::Kind::Named) return check_named_format_shape(t.named, cols);
  if (!ggml_quantize_supported(t.ggml_type))
    return Error::unsupported(std::string("no quantizer for ggml type ").append(dtype_name(t.ggml_type)));
  const auto block = static_cast<std::int64_t>(dtype_block_elems(t.ggml_type));
  if (cols % block != 0)
    return Error::unsupported(std::to_string(cols).append(" columns are not a multiple of the ")
                                  .append(dtype_name(t.ggml_type)).append(" block of ").append(std::to_string(block)));
  return {};
}

Result<void> fake_quantize(const QuantTarget& t, const float* w, std::int64_t rows, std::int64_t cols, float* out) {
  if (auto r = validate_target(t, cols); !r) return r.error();
  if (t.kind == QuantTarget::Kind::IntGrid) {
    IntQuantized q;
    if (auto r = rtn_int_into(q, w, rows, cols, t.grid); !r) return r.error();
    dequantize_int_into(q, out);
    return {};
  }
  if (t.kind == QuantTarget::Kind::Named) return rtn_named_format(t.named, w, rows, cols, out, &ThreadPool::global());
  const std::size_t n = static_cast<std::size_t>(rows * cols), blocks = n / dtype_block_elems(t.ggml_type);
  std::vector<std::byte> bytes(blocks * dtype_block_bytes(t.ggml_type));
  if (auto r = quantize_ggml_blocks(t.ggml_type, w, blocks, bytes.data()); !r) return r.error();
  if (!dequantize_ggml_blocks(t.ggml_type, bytes.data(), blocks, out))
    return Error::unsupported(std::string("cannot decode ggml type ").append(dtype_name(t.ggml_type)));
  return {};
}

}  // namespace qs
