#include "export/gguf_export.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <cstdint>
#include <cstring>
#include <span>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <numeric>
#include <system_error>

#include "backend/backend.h"
#include "model/model_files.h"
#include "export/content_hash.h"
#include "export/gguf_async_writer.h"
#include "export/gguf_source.h"
#include "export/gguf_writer.h"
#include "io/gguf.h"
#include "io/imatrix_file.h"
#include "model/convert.h"
#include "calib/activation_capture.h"
#include "quant/clip_search.h"
#include "quant/gptq.h"
#include "quant/ggml_dequant.h"
#include "quant/ggml_imatrix_quants.h"
#include "quant/ggml_quantize.h"
#include "quant/metrics.h"
#include "quant/capability.h"
#include "quant/layer_method.h"
#include "quant/method_table.h"
#include "quant/plan.h"
#include "backend/thread_pool.h"
#include "util/atomic_file.h"
#include "util/direct_read.h"
#include "util/disk_space.h"
#include "util/half.h"

namespace qs {
namespace {

// The tensor's values re-encoded as `to`, from F32.
// `importance`: the columns' importance (llama-quantize --imatrix), or null.
Result<void> encode(DType to, std::span<const float> x, std::vector<std::byte>& out, const std::string& name,
                    const std::vector<float>* importance = nullptr, std::int64_t cols = 0) {
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
  auto r = importance ? quantize_ggml_rows(to, x.data(), static_cast<std::int64_t>(x.size()) / cols, cols, importance->data(), out.data())
                      : quantize_ggml_blocks(to, x.data(), x.size() / dtype_block_elems(to), out.data());
  if (!r) return Error::invalid(name + ": " + r.error().message);
  return {};
}

// general.file_type for a plan: the llama.cpp file type of its default format.
LlamaFtype ftype_of(DType t) {
  switch (t) {
    case DType::F32: return LlamaFtype::F32;
    case DType::F16: return LlamaFtype::F16;
    case DType::BF16: return LlamaFtype::BF16;
    case DType::Q4_0: return LlamaFtype::Q4_0;
    case DType::Q4_1: return LlamaFtype::Q4_1;
    case DType::Q5_0: return LlamaFtype::Q5_0;
    case DType::Q5_1: return LlamaFtype::Q5_1;
    case DType::Q2_K: return LlamaFtype::Q2_K;
    case DType::Q3_K: return LlamaFtype::Q3_K_S;
    case DType::Q4_K: return LlamaFtype::Q4_K_S;
    case DType::Q5_K: return LlamaFtype::Q5_K_S;
    case DType::Q6_K: return LlamaFtype::Q6_K;
    case DType::IQ4_NL: return LlamaFtype::IQ4_NL;
    default: return LlamaFtype::Q8_0;
  }
}

// How a tensor's blocks are made: the reference quantizer (rtn), or the
// per-block clip search (clip_search.h), which writes ordinary ggml blocks that
// are never worse than the reference quantizer's.
struct TensorMethod {
  bool clip = false;
  ClipSearchSpec spec;
  const std::vector<float>* hessian = nullptr;  // method gptq: H of the layer's input
  // method clip with calibration: diag(H) weights the search's error, as every
  // other consumer's clip (quantize_with_method) does
  const std::vector<float>* clip_hessian = nullptr;
  GptqSpec gptq;
};

// Per-tensor choices from a plan, in the given order: each layer's format
// as the format table's GGUF type (llama-quantize's fallback where a row is
// not whole blocks), its method as the capability query allows it for GGUF.
Result<std::vector<FtypeChoice>> plan_choices(const Model& model, const Plan& plan, const std::vector<FtypeTensor>& in_order,
                                              const std::vector<const TensorInfo*>& sources,
                                              const ActivationCapture* capture, std::vector<TensorMethod>& methods,
                                              bool predict) {
  auto configs = resolve_plan(plan, model);
  if (!configs) return configs.error();
  std::map<std::string, std::size_t> layer_of;  // source weight name -> layer
  for (std::size_t i = 0; i < model.layers.size(); ++i) layer_of[model.tensors[model.layers[i].weight].name] = i;
  std::vector<FtypeChoice> out;
  for (std::size_t k = 0; k < in_order.size(); ++k) {
    FtypeChoice c;
    c.type = in_order[k].dtype;
    const auto it = layer_of.find(sources[k]->name);
    if (it != layer_of.end()) {
      const Layer& l = model.layers[it->second];
      // The embedding is a lookup and the head's input is not captured: no
      // Hessian there, so GPTQ gives way to RTN (as every consumer does).
      const LayerConfig cfg = config_for_layer(l, (*configs)[it->second]);
      const std::int64_t nx = in_order[k].shape.back();
      auto format = parse_quant_choice(cfg.format);
      if (!format) return Error::invalid(l.name + ": " + format.error().message);
      const MethodRow* method = find_method(cfg.method);
      if (!method) return Error::invalid(l.name + ": unknown method \"" + cfg.method + "\"");
      // A tensor the source already holds in the written type is copied: no quantizer needed (a Q3_K
      // GGUF re-exported by the q3_k_m preset).
      const auto stored = gguf_storage_of(*format, nx);
      const bool copy = stored && stored->gguf_type() == sources[k]->dtype && method->id == MethodId::Rtn &&
                        in_order[k].dtype == sources[k]->dtype;
      if (auto r = supports(Consumer::GgufExport, *format, *method, nx); !r && !copy)
        return Error::unsupported(l.name + ": " + r.error().message);
      if (auto r = check_method_params(*method, cfg.params); !r) return Error::invalid(l.name + ": " + r.error().message);
      if (!stored) return Error::unsupported(l.name + ": " + stored.error().message);
      c.type = *stored->gguf_type();
      if (c.type != *format->gguf_type())
        c.note = "fallback: rows of " + std::to_string(nx) + " are not whole " + std::string(format->row->label) +
                 " blocks, written as " + std::string(stored->row->label);
      TensorMethod m;
      if (method->id == MethodId::Clip) {
        m.clip = true;
        m.spec.min_ratio = static_cast<float>(method->param(cfg.params, "min_ratio"));
        m.spec.step = static_cast<float>(method->param(cfg.params, "step"));
        m.clip_hessian = capture ? capture->hessian_for(l.role, l.block) : nullptr;
      } else if (method->id == MethodId::Gptq && !stored->keeps_precision()) {
        m.gptq.percdamp = method->param(cfg.params, "percdamp");
        m.gptq.block_size = static_cast<int>(method->param(cfg.params, "block_size"));
        m.gptq.act_order = method->param(cfg.params, "act_order") != 0;
        m.gptq.static_groups = method->param(cfg.params, "static_groups") != 0;
        if (m.gptq.act_order && !m.gptq.static_groups)
          return Error::unsupported(l.name + ": GPTQ act_order onto ggml blocks needs static_groups = 1 (a block is a "
                                    "run of original columns)");
        if (!predict && !capture)
          return Error::unsupported(l.name + ": method \"gptq\" needs calibration: give calibration text (--calib) or a "
                                    "calibration file (--calib-file)");
        m.hessian = capture ? capture->hessian_for(l.role, l.block) : nullptr;
        if (!predict && !m.hessian)
          return Error::unsupported(l.name + ": GPTQ needs the Hessian of its input; calibration gives them for the "
                                    "linear layers of the blocks only");
      }
      methods[k] = m;
    }
    c.converted = c.type != sources[k]->dtype;
    out.push_back(std::move(c));
  }
  return out;
}

// Chunks of whole blocks of every type, for the passes below.
constexpr std::size_t kChunk = std::size_t{1} << 18;

// A tensor's hash (export/content_hash.h) over pieces of kChunk elements
// (the chunks the export encodes in parallel), so that the writer hashes each
// chunk while it is in cache and the verification reads the file back on
// every core.
std::size_t hash_piece_bytes(DType t) { return dtype_block_bytes(t) * (kChunk / dtype_block_elems(t)); }

// Sums of squared error and squared reference over x and its decoded y, in
// double, in kLanes interleaved partial sums: one serial sum is bound by the
// latency of its additions (it took a third of a Q8_0 export); lanes
// vectorise. Merged in a fixed order, so figures do not depend on threads.
constexpr std::size_t kLanes = 8;
struct ErrorSums {
  double err[kLanes] = {}, ref[kLanes] = {};
  void add(const float* x, const float* y, std::size_t n);
};

[[gnu::always_inline]] inline void add_error_sums(ErrorSums& s, const float* x, const float* y, std::size_t n) {
  std::size_t i = 0;
  for (; i + kLanes <= n; i += kLanes)
    for (std::size_t l = 0; l < kLanes; ++l) {
      const double d = static_cast<double>(x[i + l]) - y[i + l];
      s.err[l] += d * d;
      s.ref[l] += static_cast<double>(x[i + l]) * x[i + l];
    }
  for (std::size_t l = 0; i < n; ++i, ++l) {
    const double d = static_cast<double>(x[i]) - y[i];
    s.err[l] += d * d;
    s.ref[l] += static_cast<double>(x[i]) * x[i];
  }
}

#if defined(__x86_64__) && defined(__GNUC__)
// Four doubles per register where the CPU has AVX2 (two with SSE2); no FMA, so the same sums.
__attribute__((target("avx2"))) void add_error_sums_avx2(ErrorSums& s, const float* x, const float* y, std::size_t n) {
  add_error_sums(s, x, y, n);
}
#endif

void ErrorSums::add(const float* x, const float* y, std::size_t n) {
#if defined(__x86_64__) && defined(__GNUC__)
  static const bool avx2 = __builtin_cpu_supports("avx2");
  if (avx2) return add_error_sums_avx2(*this, x, y, n);
#endif
  add_error_sums(*this, x, y, n);
}

// SQNR in dB from per-chunk sums, merged in chunk order.
double sqnr_of(const std::vector<ErrorSums>& sums) {
  double e = 0, r = 0;
  for (const ErrorSums& s : sums)
    for (std::size_t l = 0; l < kLanes; ++l) {
      e += s.err[l];
      r += s.ref[l];
    }
  return e > 0 ? 10.0 * std::log10(r / e) : INFINITY;
}

// Decodes a tensor in parallel chunks (the F16/ggml decoders are single-threaded).
Result<void> convert_parallel(DType t, std::span<const std::byte> bytes, std::size_t count, float* dst) {
  const std::size_t chunks = (count + kChunk - 1) / kChunk;
  std::atomic<bool> ok{true};
  ThreadPool::global().parallel_for(chunks, [&](std::size_t c, unsigned) {
    const std::size_t first = c * kChunk, n = std::min(kChunk, count - first);
    const std::size_t at = first / dtype_block_elems(t) * dtype_block_bytes(t);
    if (!convert_to_f32(t, bytes.data() + at, n, dst + first)) ok = false;
  });
  if (!ok) return Error::unsupported(std::string(dtype_name(t)) + " cannot be decoded");
  return {};
}

// SQNR of a tensor's encoded bytes against its source values: decoded and
// compared chunk by chunk in parallel (no tensor-sized buffer), sums merged in
// chunk order so the figure does not depend on the thread count.
double encoded_sqnr(DType t, std::span<const std::byte> bytes, std::span<const float> x) {
  const std::size_t chunks = (x.size() + kChunk - 1) / kChunk;
  std::vector<ErrorSums> sums(chunks);
  std::vector<std::vector<float>> scratch(ThreadPool::global().size() + 1);
  std::atomic<bool> ok{true};
  ThreadPool::global().parallel_for(chunks, [&](std::size_t c, unsigned worker) {
    const std::size_t first = c * kChunk, n = std::min(kChunk, x.size() - first);
    std::vector<float>& y = scratch[worker];
    y.resize(n);
    if (!convert_to_f32(t, bytes.data() + first / dtype_block_elems(t) * dtype_block_bytes(t), n, y.data())) ok = false;
    sums[c].add(x.data() + first, y.data(), n);
  });
  if (!ok) return NAN;
  return sqnr_of(sums);
}

// The reference quantizer's path, fused: each chunk is decoded from the
// source, checked, quantized, decoded back and compared for the error, and its
// bytes hashed, in one visit while it is in cache (in sub-chunks that fit L2),
// chunks in parallel; no tensor-sized F32 copy. Same bytes, and the same SQNR
// to the bit, as decoding, encode() and encoded_sqnr() one after the other
// (the sums run in the same order).
struct StreamedTensor {
  double sqnr_db = 0;
  std::uint64_t hash = 0;
};
Result<StreamedTensor> encode_streamed(DType from, std::span<const std::byte> src, std::size_t count, DType to,
                                       std::vector<std::byte>& out, const std::string& name) {
  const GgmlBlockQuantizer quantize = ggml_block_quantizer(to);
  const std::size_t to_elems = dtype_block_elems(to), to_bytes = dtype_block_bytes(to);
  const std::size_t from_elems = dtype_block_elems(from), from_bytes = dtype_block_bytes(from);
  out.resize(count / to_elems * to_bytes);
  const std::size_t chunks = (count + kChunk - 1) / kChunk;
  std::vector<ErrorSums> sums(chunks);
  std::vector<std::uint64_t> hashes(chunks);
  constexpr std::size_t kSub = 8192;  // elements: a multiple of every block size
  std::vector<std::vector<float>> scratch(ThreadPool::global().size() + 1);
  std::atomic<std::size_t> bad{count};  // the first non-finite value, if any
  std::atomic<bool> decodable{true};
  const bool in_place = from == DType::F32 && reinterpret_cast<std::uintptr_t>(src.data()) % alignof(float) == 0;
  ThreadPool::global().parallel_for(chunks, [&](std::size_t c, unsigned worker) {
    const std::size_t first = c * kChunk, n = std::min(kChunk, count - first);
    std::vector<float>& buf = scratch[worker];
    buf.resize(2 * kSub);
    auto* dst = reinterpret_cast<std::uint8_t*>(out.data()) + first / to_elems * to_bytes;
    for (std::size_t s = 0; s < n; s += kSub) {
      const std::size_t m = std::min(kSub, n - s), at = first + s;
      const float* x = in_place ? reinterpret_cast<const float*>(src.data()) + at : buf.data();
      if (!in_place && !convert_to_f32(from, src.data() + at / from_elems * from_bytes, m, buf.data())) {
        decodable = false;
        return;
      }
      if (const std::size_t i = first_non_finite(x, m); i < m) {
        std::size_t seen = bad.load();
        while (at + i < seen && !bad.compare_exchange_weak(seen, at + i)) {
        }
        return;
      }
      std::uint8_t* q = dst + s / to_elems * to_bytes;
      for (std::size_t b = 0; b < m / to_elems; ++b) quantize(x + b * to_elems, q + b * to_bytes);
      float* y = buf.data() + kSub;
      dequantize_ggml_blocks(to, reinterpret_cast<const std::byte*>(q), m / to_elems, y);
      sums[c].add(x, y, m);
    }
    hashes[c] = piece_hash(reinterpret_cast<const std::byte*>(dst), n / to_elems * to_bytes);
  });
  if (!decodable) return Error::unsupported(name + ": " + std::string(dtype_name(from)) + " cannot be decoded");
  if (const std::size_t i = bad.load(); i < count) {
    // The offending value, decoded alone for the message.
    std::vector<float> block(from_elems);
    const std::size_t first = i / from_elems * from_elems;
    const float v = convert_to_f32(from, src.data() + first / from_elems * from_bytes, from_elems, block.data())
                        ? block[i - first]
                        : NAN;
    return Error::invalid(name + ": value " + std::to_string(i) + " is not finite (" + std::to_string(v) +
                          "): quantizing it would write undefined bytes");
  }
  return StreamedTensor{sqnr_of(sums), fold_hashes(hashes)};
}

// The file as our reader sees it must hold exactly what was written (names,
// types, shapes, and bytes by hash, so it also decodes to the error measured
// while writing); otherwise the export fails and nothing is renamed into place.
// The data is read again from the file (past the page cache where the file
// system allows: what is on the disk), one tensor at a time.
Result<void> verify_written(const std::string& temp, const std::string& out_path, const GgufWriter& writer,
                            const std::vector<std::uint64_t>& hashes) {
  auto back = read_gguf(temp);  // the header; the data pages are not touched through its map
  if (!back) return Error::io(out_path + ": verification: the written file does not read back: " + back.error().message);
  if (back->tensors.size() != hashes.size()) return Error::io(out_path + ": verification: tensor count differs");
  auto reader = DirectReader::open(temp);
  if (!reader) return Error::io(out_path + ": verification: " + reader.error().message);
  for (std::size_t k = 0; k < hashes.size(); ++k) {
    const TensorInfo& t = back->tensors[k];
    const GgufTensorLayout& layout = writer.tensors()[k];
    if (t.name != layout.name || t.dtype != layout.dtype || t.shape != layout.shape)
      return Error::io(out_path + ": verification: tensor " + layout.name + " does not read back as written");
    auto bytes = reader->read(t.offset, t.nbytes);
    if (!bytes) return Error::io(out_path + ": verification: " + bytes.error().message);
    if (content_hash(*bytes, hash_piece_bytes(t.dtype)) != hashes[k])
      return Error::io(out_path + ": verification: tensor " + layout.name + " does not read back as written");
  }
  return {};
}

FtypeModelFacts facts_of(const Model& m) {
  FtypeModelFacts f;
  f.num_layers = m.arch.num_layers;
  f.num_heads = m.arch.num_heads;
  f.num_kv_heads = m.arch.num_kv_heads;
  return f;
}

// general.file_type for a plan. llama.cpp shows it as the file's type ("Q4_K -
// Medium"), so a plan whose tensors get exactly the types llama-quantize gives
// a file type is labelled with that file type: first the one its preset names
// (plan --preset q4_k_m must not read "Q4_K - Small"), then the one of its
// default format. Otherwise the default format's file type, as llama-quantize
// would label a file of mostly that type.
LlamaFtype plan_file_type(const Plan& plan, const std::vector<FtypeChoice>& choices,
                          const std::vector<FtypeTensor>& in_order, const FtypeModelFacts& facts) {
  const auto base = parse_quant_choice(plan.base.format);
  const LlamaFtype by_default = ftype_of(base && base->gguf_type() ? *base->gguf_type() : DType::Q8_0);
  std::vector<LlamaFtype> candidates;
  if (auto named = parse_llama_ftype(plan.preset)) candidates.push_back(*named);
  candidates.push_back(by_default);
  for (LlamaFtype f : candidates) {
    const auto reference = llama_ftype_choices(in_order, f, facts);
    const bool same = std::equal(reference.begin(), reference.end(), choices.begin(), choices.end(),
                                 [](const FtypeChoice& a, const FtypeChoice& b) { return a.type == b.type; });
    if (same) return f;
  }
  return by_default;
}

// Everything an export decides before it reads a weight: the source's
// tensors in llama-quantize's order, their types, the methods, the header.
// The export writes exactly this; the size account reads its bytes.
struct GgufLayout {
  GgufSource src;
  std::vector<std::size_t> order;
  std::vector<FtypeChoice> choices;
  std::vector<TensorMethod> methods;
  std::unique_ptr<GgufWriter> writer;
};

Result<GgufLayout> gguf_layout(const Model& source, const GgufExportOptions& options, bool predict) {
  if (options.plan && options.imatrix)
    return Error::invalid("an importance matrix weights a llama.cpp file type's quantizers; a plan's layers are "
                          "written as the plan is measured, and plans do not take one yet");
  auto src = gguf_source_of(source);
  if (!src) return src.error();
  GgufLayout out;
  out.src = std::move(*src);

  // llama-quantize's order and types.
  out.order.resize(out.src.tensors.size());
  std::iota(out.order.begin(), out.order.end(), std::size_t{0});
  std::stable_sort(out.order.begin(), out.order.end(), [&](std::size_t a, std::size_t b) {
    return llama_quantize_order(out.src.tensors[a].name, out.src.tensors[b].name);
  });
  std::vector<FtypeTensor> in_order;
  std::vector<const TensorInfo*> sources;
  in_order.reserve(out.order.size());
  for (std::size_t i : out.order) {
    in_order.push_back({out.src.tensors[i].name, out.src.tensors[i].shape, out.src.tensors[i].natural});
    sources.push_back(out.src.tensors[i].info);
  }
  out.methods.resize(in_order.size());
  LlamaFtype file_type = options.ftype;
  if (options.plan) {
    auto c = plan_choices(source, *options.plan, in_order, sources, options.capture, out.methods, predict);
    if (!c) return c.error();
    out.choices = std::move(*c);
    file_type = plan_file_type(*options.plan, out.choices, in_order, facts_of(source));
  } else {
    FtypeModelFacts facts = facts_of(source);
    facts.has_imatrix = options.imatrix != nullptr;
    out.choices = llama_ftype_choices(in_order, options.ftype, facts, options.pure);
  }

  out.writer = std::make_unique<GgufWriter>(out.src.alignment);
  GgufWriter& writer = *out.writer;
  for (const auto& [key, value] : out.src.metadata) writer.set(key, value);
  for (const char* key : {"split.no", "split.count", "split.tensors.count"}) writer.remove(key);
  writer.set_u32("general.quantization_version", 2);  // GGML_QNT_VERSION
  writer.set_u32("general.file_type", static_cast<std::uint32_t>(file_type));
  if (const ImportanceMatrix* m = options.imatrix) {
    // What llama-quantize --imatrix records, in its order.
    if (!m->file.empty()) writer.set_string("quantize.imatrix.file", m->file);
    if (!m->dataset.empty()) writer.set_string("quantize.imatrix.dataset", m->dataset);
    writer.set_i32("quantize.imatrix.entries_count", static_cast<std::int32_t>(m->columns.size()));
    if (m->chunks > 0) writer.set_i32("quantize.imatrix.chunks_count", m->chunks);
  }
  for (std::size_t k = 0; k < out.order.size(); ++k) {
    const GgufSourceTensor& t = out.src.tensors[out.order[k]];
    if (auto r = writer.add_tensor(t.name, t.shape, out.choices[k].type); !r) return r.error();
  }
  return out;
}

}  // namespace

Result<GgufPrediction> predict_gguf(const Model& source, const GgufExportOptions& options) {
  auto layout = gguf_layout(source, options, true);
  if (!layout) return layout.error();
  auto header = layout->writer->header();
  if (!header) return header.error();
  GgufPrediction p;
  p.header_bytes = header->size();
  p.bytes = header->size() + layout->writer->data_bytes();
  for (std::size_t k = 0; k < layout->order.size(); ++k) {
    const GgufSourceTensor& t = layout->src.tensors[layout->order[k]];
    const GgufTensorLayout& l = layout->writer->tensors()[k];
    std::uint64_t n = 1;
    for (auto d : t.shape) n *= static_cast<std::uint64_t>(d);
    p.tensors.push_back({t.name, t.info->name, l.dtype, n, l.nbytes, layout->choices[k].note});
    p.tensor_bytes += l.nbytes;
    p.elements += n;
  }
  return p;
}

Result<GgufExportReport> export_gguf(const Model& source, const std::string& out_path, const GgufExportOptions& options,
                                     OpContext& ctx) {
  if (auto r = refuse_model_file(source, out_path); !r) return r.error();
  auto planned = gguf_layout(source, options, false);
  if (!planned) return planned.error();
  GgufLayout& lay = *planned;
  const GgufSource* src = &lay.src;
  const std::vector<std::size_t>& order = lay.order;
  const std::vector<FtypeChoice>& choices = lay.choices;
  const std::vector<TensorMethod>& methods = lay.methods;
  GgufWriter& writer = *lay.writer;

  // Refused before any work, as llama-quantize does: the types that cannot do without an importance matrix.
  for (std::size_t k = 0; k < order.size(); ++k) {
    const std::string& name = src->tensors[order[k]].name;
    if (choices[k].converted && ggml_needs_importance(choices[k].type) && !(options.imatrix && options.imatrix->find(name)))
      return Error::invalid(name + ": " + std::string(dtype_name(choices[k].type)) + " needs an importance matrix" +
                            (options.imatrix ? " and " + options.imatrix->file + " has none for it"
                                             : " (--imatrix; quantscope-cli calibrate --imatrix makes one)"));
  }
  GgufExportReport report;
  std::uint64_t work = 0, done = 0;
  for (std::size_t k = 0; k < order.size(); ++k) {
    const GgufSourceTensor& t = src->tensors[order[k]];
    report.tensors.push_back({t.name, t.info->dtype, choices[k].type, choices[k].note});
    work += t.info->nbytes;
  }
  auto header = writer.header();
  if (!header) return header.error();

  if (auto r = ensure_free_space(out_path, header->size() + writer.data_bytes()); !r) return r.error();
  auto file = AtomicFile::create(out_path);
  if (!file) return file.error();
  if (auto r = file->write(header->data(), header->size()); !r) return r.error();
  if (options.direct_io) file->use_direct_io();  // plain writes where it cannot
  std::vector<float> f32, permuted;
  std::vector<std::byte> buffers[2];  // tensor k is encoded into one while the other is written
  std::vector<std::uint64_t> hashes(order.size());
  auto async = std::make_unique<GgufAsyncWriter>(*file, writer.alignment());
  for (std::size_t k = 0; k < order.size(); ++k) {
    if (ctx.cancelled()) return Error::cancelled();  // the temporary file goes with `file`
    const GgufSourceTensor& t = src->tensors[order[k]];
    const TensorInfo& info = *t.info;
    const GgufTensorLayout& layout = writer.tensors()[k];
    std::vector<std::byte>& encoded = buffers[k % 2];
    std::span<const std::byte> bytes = info.bytes();
    std::optional<std::uint64_t> hash;
    const bool plain = !methods[k].hessian && !methods[k].clip;
    // The importance of its columns, as llama-quantize takes it: by the tensor's GGUF name, for the
    // quantizers that read one; a tensor the matrix does not name is quantized without.
    const std::vector<float>* importance = nullptr;
    if (options.imatrix && plain && layout.dtype != info.dtype && ggml_uses_importance(layout.dtype))
      if ((importance = options.imatrix->find(t.name)); importance && static_cast<std::int64_t>(importance->size()) != t.shape.back())
        return Error::invalid(t.name + ": the importance matrix has " + std::to_string(importance->size()) +
                              " columns for its " + std::to_string(t.shape.back()));
    if (plain && !importance && t.permute_heads == 0 && layout.dtype != info.dtype && ggml_block_quantizer(layout.dtype) &&
        dtype_is_float_convertible(info.dtype)) {
      auto s = encode_streamed(info.dtype, bytes, static_cast<std::size_t>(info.numel()), layout.dtype, encoded, info.where());
      if (!s) return s.error();
      bytes = encoded;
      report.tensors[k].sqnr_db = s->sqnr_db;
      hash = s->hash;
    } else if (layout.dtype != info.dtype || t.permute_heads > 0) {
      // F32 sources are read in place from the map (no copy: the peak stays one
      // tensor); others are decoded, and Q/K rows reordered, into a buffer.
      std::span<const float> x;
      if (info.dtype == DType::F32 && t.permute_heads == 0 &&
          reinterpret_cast<std::uintptr_t>(bytes.data()) % alignof(float) == 0) {
        x = {reinterpret_cast<const float*>(bytes.data()), static_cast<std::size_t>(info.numel())};
      } else {
        if (auto fits = check_f32_memory(info); !fits) return fits.error();
        f32.resize(info.numel());
        if (auto r = convert_parallel(info.dtype, bytes, f32.size(), f32.data()); !r)
          return Error::unsupported(info.where() + ": " + r.error().message);
        if (t.permute_heads > 0) {
          permuted.resize(f32.size());
          permute_rope_rows(f32.data(), permuted.data(), info.rows(), info.cols(), t.permute_heads);
          f32.swap(permuted);
        }
        x = f32;
      }
      if (methods[k].hessian && dtype_is_block_quantized(layout.dtype)) {
        const std::int64_t cols = t.shape.back(), rows = static_cast<std::int64_t>(x.size()) / cols;
        if (methods[k].hessian->size() != static_cast<std::size_t>(cols * cols))
          return Error::invalid(t.name + ": the calibration Hessian does not match its " + std::to_string(cols) + " inputs");
        GptqSpec spec = methods[k].gptq;
        spec.block_type = layout.dtype;
        OpStep step(ctx, work ? static_cast<double>(done) / static_cast<double>(work) : 0.0,
                    work ? static_cast<double>(done + info.nbytes) / static_cast<double>(work) : 1.0);
        auto q = options.backend->gptq(x.data(), rows, cols, methods[k].hessian->data(), spec, step.context());
        if (!q && ctx.cancelled()) return Error::cancelled();
        if (!q) return Error{q.error().code, info.where() + ": " + q.error().message};
        encoded = std::move(q->ggml_blocks);
        report.tensors[k].note = "gptq";
      } else if (methods[k].clip && dtype_is_block_quantized(layout.dtype)) {
        const std::int64_t cols = t.shape.back(), rows = static_cast<std::int64_t>(x.size()) / cols;
        OpStep step(ctx, work ? static_cast<double>(done) / static_cast<double>(work) : 0.0,
                    work ? static_cast<double>(done + info.nbytes) / static_cast<double>(work) : 1.0);
        ClipSearchSpec spec = methods[k].spec;
        std::vector<float> diag;
        if (const std::vector<float>* h = methods[k].clip_hessian; h && h->size() == static_cast<std::size_t>(cols * cols)) {
          diag.resize(static_cast<std::size_t>(cols));
          for (std::int64_t c = 0; c < cols; ++c) diag[static_cast<std::size_t>(c)] = std::max(0.0f, (*h)[static_cast<std::size_t>(c * cols + c)]);
          spec.column_weight = diag.data();
        }
        auto clipped = clip_search_ggml(x.data(), rows, cols, layout.dtype, spec, step.context());
        if (!clipped && ctx.cancelled()) return Error::cancelled();
        if (!clipped) return Error{clipped.error().code, info.where() + ": " + clipped.error().message};
        encoded = std::move(clipped->bytes);
        char note[96];
        std::snprintf(note, sizeof note, "clip search: SQNR %.2f -> %.2f dB", clipped->plain_error.sqnr_db,
                      clipped->error.sqnr_db);
        report.tensors[k].note = note;
      } else if (auto r = encode(layout.dtype, x, encoded, t.name, importance, t.shape.back()); !r) {
        return r.error();
      }
      if (importance) report.tensors[k].note += std::string(report.tensors[k].note.empty() ? "" : "; ") + "importance matrix";
      bytes = encoded;
      report.tensors[k].sqnr_db = encoded_sqnr(layout.dtype, bytes, x);
    }
    hashes[k] = hash ? *hash : content_hash(bytes, hash_piece_bytes(layout.dtype));
    // Stream: keep one tensor resident (a source written as it is goes once written).
    const bool copied = bytes.data() == info.bytes().data();
    if (info.file && !copied) info.file->release(info.offset, info.nbytes);
    std::function<void()> after;
    if (info.file && copied) after = [&info] { info.file->release(info.offset, info.nbytes); };
    if (auto r = async->submit(layout, bytes, std::move(after)); !r) return Error::io(out_path + ": " + r.error().message);
    done += info.nbytes;
    ctx.progress(work ? static_cast<double>(done) / static_cast<double>(work) : 1.0);
  }
  if (auto r = async->finish(); !r) return Error::io(out_path + ": " + r.error().message);
  async.reset();
  if (auto r = file->flush(); !r) return r.error();
  f32 = {};  // the write buffers go before the verification pass maps the output
  permuted = {};
  buffers[0] = {};
  buffers[1] = {};
  if (auto r = verify_written(file->temp_path(), out_path, writer, hashes); !r) return r.error();
  report.verified = true;
  if (auto r = file->commit(); !r) return r.error();
  report.bytes = header->size() + writer.data_bytes();
  for (const GgufTensorLayout& l : writer.tensors()) {
    std::uint64_t n = 1;
    for (auto d : l.shape) n *= static_cast<std::uint64_t>(d);
    report.tensor_bytes += l.nbytes;
    report.elements += n;
  }
  return report;
}

}  // namespace qs
