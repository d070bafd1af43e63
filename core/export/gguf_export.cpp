#include "export/gguf_export.h"

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <numeric>
#include <system_error>

#include "export/gguf_source.h"
#include "export/gguf_writer.h"
#include "io/gguf.h"
#include "model/convert.h"
#include "quant/ggml_quantize.h"
#include "util/atomic_file.h"
#include "util/half.h"

namespace qs {
namespace {

bool same_file(const std::string& a, const std::string& b) {
  std::error_code ec;
  return std::filesystem::exists(a, ec) && std::filesystem::exists(b, ec) && std::filesystem::equivalent(a, b, ec);
}

// The tensor's values re-encoded as `to`, from F32.
Result<void> encode(DType to, const std::vector<float>& x, std::vector<std::byte>& out, const std::string& name) {
  const auto nbytes = dtype_bytes(to, x.size());
  if (!nbytes) return Error::invalid(name + ": not whole " + std::string(dtype_name(to)) + " blocks");
  out.resize(*nbytes);
  switch (to) {
    case DType::F32:
      std::memcpy(out.data(), x.data(), *nbytes);
      return {};
    case DType::F16:
    case DType::BF16: {
      auto* dst = reinterpret_cast<std::uint16_t*>(out.data());
      for (std::size_t i = 0; i < x.size(); ++i) dst[i] = to == DType::F16 ? f32_to_f16(x[i]) : f32_to_bf16(x[i]);
      return {};
    }
    default:
      break;
  }
  if (!ggml_quantize_supported(to))
    return Error::unsupported(name + ": writing " + std::string(dtype_name(to)) + " is not implemented yet");
  if (auto r = quantize_ggml_blocks(to, x.data(), x.size() / dtype_block_elems(to), out.data()); !r)
    return Error::invalid(name + ": " + r.error().message);
  return {};
}

FtypeModelFacts facts_of(const Model& m) {
  FtypeModelFacts f;
  f.num_layers = m.arch.num_layers;
  f.num_heads = m.arch.num_heads;
  f.num_kv_heads = m.arch.num_kv_heads;
  return f;
}

}  // namespace

Result<GgufExportReport> export_gguf(const Model& source, const std::string& out_path, const GgufExportOptions& options,
                                     OpContext& ctx) {
  if (same_file(out_path, source.path)) return Error::invalid(out_path + ": is the source model; choose another output file");
  for (const auto& f : source.weight_files)
    if (same_file(out_path, f)) return Error::invalid(out_path + ": is a file of the source model; choose another output file");
  auto src = gguf_source_of(source);
  if (!src) return src.error();

  // llama-quantize's order and types.
  std::vector<std::size_t> order(src->tensors.size());
  std::iota(order.begin(), order.end(), std::size_t{0});
  std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
    return llama_quantize_order(src->tensors[a].name, src->tensors[b].name);
  });
  std::vector<FtypeTensor> in_order;
  in_order.reserve(order.size());
  for (std::size_t i : order) in_order.push_back({src->tensors[i].name, src->tensors[i].shape, src->tensors[i].natural});
  const auto choices = llama_ftype_choices(in_order, options.ftype, facts_of(source));

  GgufWriter writer(src->alignment);
  for (const auto& [key, value] : src->metadata) writer.set(key, value);
  for (const char* key : {"split.no", "split.count", "split.tensors.count"}) writer.remove(key);
  writer.set_u32("general.quantization_version", 2);  // GGML_QNT_VERSION
  writer.set_u32("general.file_type", static_cast<std::uint32_t>(options.ftype));

  GgufExportReport report;
  std::uint64_t work = 0, done = 0;
  for (std::size_t k = 0; k < order.size(); ++k) {
    const GgufSourceTensor& t = src->tensors[order[k]];
    if (auto r = writer.add_tensor(t.name, t.shape, choices[k].type); !r) return r.error();
    report.tensors.push_back({t.name, t.info->dtype, choices[k].type, choices[k].note});
    work += t.info->nbytes;
  }
  auto header = writer.header();
  if (!header) return header.error();

  auto file = AtomicFile::create(out_path);
  if (!file) return file.error();
  if (auto r = file->write(header->data(), header->size()); !r) return r.error();
  std::vector<float> f32, permuted;
  std::vector<std::byte> encoded;
  for (std::size_t k = 0; k < order.size(); ++k) {
    if (ctx.cancelled()) return Error::cancelled();  // the temporary file goes with `file`
    const GgufSourceTensor& t = src->tensors[order[k]];
    const TensorInfo& info = *t.info;
    const GgufTensorLayout& layout = writer.tensors()[k];
    std::span<const std::byte> bytes = info.bytes();
    if (layout.dtype != info.dtype || t.permute_heads > 0) {
      f32.resize(info.numel());
      if (auto r = convert_to_f32(info.dtype, bytes.data(), f32.size(), f32.data()); !r)
        return Error::unsupported(info.name + ": " + r.error().message);
      if (t.permute_heads > 0) {
        permuted.resize(f32.size());
        permute_rope_rows(f32.data(), permuted.data(), info.rows(), info.cols(), t.permute_heads);
        f32.swap(permuted);
      }
      if (auto r = encode(layout.dtype, f32, encoded, t.name); !r) return r.error();
      bytes = encoded;
    }
    if (auto r = GgufWriter::write_tensor(*file, layout, bytes, writer.alignment()); !r)
      return Error::io(out_path + ": " + r.error().message);
    done += info.nbytes;
    ctx.progress(work ? static_cast<double>(done) / static_cast<double>(work) : 1.0);
  }
  if (auto r = file->commit(); !r) return r.error();
  report.bytes = header->size() + writer.data_bytes();
  return report;
}

}  // namespace qs
