#include "export/h5_encode.h"

#include <algorithm>
#include <cstring>
#include <string>

#include "quant/fp4_formats.h"
#include "quant/fp8_quant.h"
#include "quant/ggml_quantize.h"
#include "quant/int_grid.h"
#include "quant/nf4.h"
#include "util/half.h"

namespace qs {
namespace {

std::vector<std::uint8_t> as_u8(const std::vector<std::byte>& b) {
  std::vector<std::uint8_t> out(b.size());
  if (!b.empty()) std::memcpy(out.data(), b.data(), b.size());
  return out;
}

Result<void> encode_named(NamedFormat f, const float* x, std::int64_t rows, std::int64_t cols, QuantizedH5Tensor& desc,
                          QuantizedH5Stored& stored) {
  if (auto r = check_named_format_shape(f, cols); !r) return r.error();
  switch (f) {
    case NamedFormat::Nf4:
    case NamedFormat::Nf4Dq: {
      auto q = quantize_nf4(x, rows, cols, f == NamedFormat::Nf4Dq);
      if (!q) return q.error();
      desc.kind = "nf4";
      desc.double_quant = q->double_quant;
      desc.nf4_offset = q->offset;
      stored.bytes = std::move(q->packed);
      if (q->double_quant) {
        stored.scale_codes = std::move(q->absmax_codes);
        stored.scales = std::move(q->absmax2);
      } else {
        stored.scales = std::move(q->absmax);
      }
      return {};
    }
    case NamedFormat::Fp8E4M3:
    case NamedFormat::Fp8E4M3Ch:
    case NamedFormat::Fp8E5M2:
    case NamedFormat::Fp8E5M2Ch: {
      const bool e5m2 = f == NamedFormat::Fp8E5M2 || f == NamedFormat::Fp8E5M2Ch;
      const bool channel = f == NamedFormat::Fp8E4M3Ch || f == NamedFormat::Fp8E5M2Ch;
      auto q = quantize_fp8(x, rows, cols, {e5m2 ? Fp8Type::E5M2 : Fp8Type::E4M3, channel});
      if (!q) return q.error();
      desc.kind = "fp8";
      desc.fp8_e5m2 = e5m2;
      desc.per_channel = channel;
      stored.bytes = std::move(q->codes);
      stored.scales = std::move(q->scales);
      return {};
    }
    case NamedFormat::Mxfp4: {
      auto q = quantize_mxfp4(x, rows, cols);
      if (!q) return q.error();
      desc.kind = "mxfp4";
      stored.bytes = std::move(q->packed);
      stored.scale_codes = std::move(q->scales);
      return {};
    }
    case NamedFormat::Nvfp4: {
      auto q = quantize_nvfp4(x, rows, cols);
      if (!q) return q.error();
      desc.kind = "nvfp4";
      desc.tensor_scale = q->tensor_scale;
      stored.bytes = std::move(q->packed);
      stored.scale_codes = std::move(q->scales);
      return {};
    }
    case NamedFormat::F16:
    case NamedFormat::BF16:
      break;
  }
  return Error::unsupported(std::string(QuantChoice::named_format(f).row->label) + " is kept as a copy, not encoded");
}

}  // namespace

Result<void> encode_h5_tensor(const QuantChoice& choice, const float* x, std::int64_t rows, std::int64_t cols,
                              QuantizedH5Tensor& desc, QuantizedH5Stored& stored) {
  if (choice.row->h5 == H5Storage::None || choice.row->h5 == H5Storage::Copy16)
    return Error::unsupported(std::string(choice.row->label) + " has no quantized HDF5 layout");
  if (choice.kind == QuantChoice::Kind::IntGrid) {
    auto q = rtn_int(x, rows, cols, choice.grid);
    if (!q) return q.error();
    desc.kind = "int_grid";
    desc.bits = choice.grid.bits;
    desc.group_size = choice.grid.group_size;
    desc.symmetric = choice.grid.symmetric;
    stored.bytes = std::move(q->codes);
    stored.scales = std::move(q->scales);
    stored.zeros = std::move(q->zeros);
    return {};
  }
  if (choice.kind == QuantChoice::Kind::Ggml) {
    const auto block = static_cast<std::int64_t>(dtype_block_elems(choice.ggml_type));
    if (block <= 0 || cols % block != 0)
      return Error::unsupported(std::to_string(cols) + " columns are not whole " + std::string(dtype_name(choice.ggml_type)) +
                                " blocks");
    const std::size_t n = static_cast<std::size_t>(rows * cols / block);
    std::vector<std::byte> blocks(n * dtype_block_bytes(choice.ggml_type));
    if (auto r = quantize_ggml_blocks(choice.ggml_type, x, n, blocks.data()); !r) return r.error();
    desc.kind = "ggml";
    desc.ggml_type = choice.ggml_type;
    stored.bytes = as_u8(blocks);
    return {};
  }
  return encode_named(choice.named, x, rows, cols, desc, stored);
}

Result<void> encode_h5_tensor_with_outliers(const QuantChoice& choice, const OutlierResult& kept, const float* x,
                                            std::int64_t rows, std::int64_t cols, QuantizedH5Tensor& desc,
                                            QuantizedH5Stored& stored) {
  // The rest as outlier_keep quantized it: the kept weights zeroed first.
  std::vector<float> rest(x, x + rows * cols);
  for (std::size_t i = 0; i < kept.row.size(); ++i)
    rest[static_cast<std::size_t>(kept.row[i]) * static_cast<std::size_t>(cols) + static_cast<std::size_t>(kept.col[i])] = 0.0f;
  if (auto r = encode_h5_tensor(choice, rest.data(), rows, cols, desc, stored); !r) return r;
  if (kept.kept_columns.empty()) {
    desc.outliers = "weights";
    desc.outlier_count = static_cast<std::int64_t>(kept.row.size());
    stored.outlier_rows = kept.row;
    stored.outlier_cols = kept.col;
    stored.outlier_values.resize(kept.value.size());
    for (std::size_t i = 0; i < kept.value.size(); ++i) stored.outlier_values[i] = f32_to_f16(kept.value[i]);
    return {};
  }
  // Whole channels: every row of each, so the positions are the channel list alone.
  desc.outliers = "channels";
  desc.outlier_count = static_cast<std::int64_t>(kept.kept_columns.size());
  stored.outlier_cols = kept.kept_columns;
  const auto urows = static_cast<std::size_t>(rows);
  stored.outlier_values.assign(kept.kept_columns.size() * urows, 0);
  for (std::size_t i = 0; i < kept.row.size(); ++i) {
    const auto at = std::lower_bound(kept.kept_columns.begin(), kept.kept_columns.end(), kept.col[i]);
    if (at == kept.kept_columns.end() || *at != kept.col[i])
      return Error::invalid("outlier table: a kept weight outside the kept channels");
    const auto j = static_cast<std::size_t>(at - kept.kept_columns.begin());
    stored.outlier_values[j * urows + static_cast<std::size_t>(kept.row[i])] = f32_to_f16(kept.value[i]);
  }
  return {};
}

}  // namespace qs
