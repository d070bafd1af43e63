#include "calib/llama_forward.h"

#include <Eigen/Dense>
#include <algorithm>
#include <cmath>
#include <functional>

#include <unistd.h>

#include "backend/thread_pool.h"
#include "calib/device_forward_plan.h"
#include "calib/forward_runner.h"
#include "model/convert.h"
#include "util/memory_budget.h"
#include "model/model.h"
#include "quant/smoothquant.h"

#ifdef QS_HAVE_LAPACK
#include <cblas.h>
#endif

namespace qs {

namespace {

using RowMat = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using Stride = Eigen::OuterStride<>;

// Y [n, out] = X [n, in] * W^T, W row-major [out, in] (our weight convention).
void linear(const float* x, std::int64_t n, std::int64_t in, const float* w, std::int64_t out, float* y) {
#ifdef QS_HAVE_LAPACK
  if (n == 1)  // decoding: a matrix-vector product (sgemm would pack W first)
    cblas_sgemv(CblasRowMajor, CblasNoTrans, static_cast<int>(out), static_cast<int>(in), 1.0f, w, static_cast<int>(in), x,
                1, 0.0f, y, 1);
  else
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(n), static_cast<int>(out), static_cast<int>(in),
                1.0f, x, static_cast<int>(in), w, static_cast<int>(in), 0.0f, y, static_cast<int>(out));
#else
  Eigen::Map<const RowMat> X(x, n, in), W(w, out, in);
  Eigen::Map<RowMat> Y(y, n, out);
  Y.noalias() = X * W.transpose();
#endif
}

void add_bias(float* y, std::int64_t n, const std::vector<float>& b) {
  if (b.empty()) return;
  const auto m = static_cast<std::int64_t>(b.size());
  for (std::int64_t i = 0; i < n; ++i)
    for (std::int64_t j = 0; j < m; ++j) y[i * m + j] += b[static_cast<std::size_t>(j)];
}

// out = x / sqrt(mean(x^2) + eps) * w, row by row.
void rms_norm(const float* x, std::int64_t n, std::int64_t h, const std::vector<float>& w, float eps, float* out) {
  for (std::int64_t i = 0; i < n; ++i) {
    const float* r = x + i * h;
    double ss = 0;
    for (std::int64_t j = 0; j < h; ++j) ss += static_cast<double>(r[j]) * r[j];
    const auto scale = static_cast<float>(1.0 / std::sqrt(ss / static_cast<double>(h) + eps));
    float* o = out + i * h;
    for (std::int64_t j = 0; j < h; ++j) o[j] = r[j] * scale * w[static_cast<std::size_t>(j)];
  }
}

// Rotates every head of rows [n, heads * d] at positions pos0, pos0 + 1, ...
void rope(float* x, std::int64_t n, int heads, int d, int pos0, const LlamaConfig& c) {
  const int half = d / 2;
  const std::vector<double> inv_freq = rope_inv_freq(c);  // shared with the device runners' tables
  std::vector<float> cs(static_cast<std::size_t>(half)), sn(static_cast<std::size_t>(half));
  for (std::int64_t t = 0; t < n; ++t) {
    const double p = static_cast<double>(pos0 + t);
    for (int i = 0; i < half; ++i) {
      const double a = p * inv_freq[static_cast<std::size_t>(i)];
      cs[static_cast<std::size_t>(i)] = static_cast<float>(std::cos(a));
      sn[static_cast<std::size_t>(i)] = static_cast<float>(std::sin(a));
    }
    for (int h = 0; h < heads; ++h) {
      float* v = x + (t * heads + h) * d;
      for (int i = 0; i < half; ++i) {
        const int a = c.rope_interleaved ? 2 * i : i;
        const int b = c.rope_interleaved ? 2 * i + 1 : i + half;
        const float x0 = v[a], x1 = v[b];
        const float co = cs[static_cast<std::size_t>(i)], si = sn[static_cast<std::size_t>(i)];
        v[a] = x0 * co - x1 * si;
        v[b] = x0 * si + x1 * co;
      }
    }
  }
}

struct Loader {
  const Model& m;
  std::string error;
  const LlamaModel::WeightTransform* transform = nullptr;

  // The tensor `name` as F32 with exactly `shape`; empty when absent and not required.
  std::vector<float> read(const std::string& name, std::vector<std::int64_t> shape, bool required = true) {
    if (!error.empty()) return {};
    const auto idx = m.find_tensor(name);
    if (!idx) {
      if (required) error = m.weights_label() + ": tensor " + name + " is missing";
      return {};
    }
    const TensorInfo& t = m.tensors[*idx];
    // GGUF writes 1-D norms as [n]; some writers keep a leading 1.
    std::vector<std::int64_t> got = t.shape;
    while (got.size() > shape.size() && got.front() == 1) got.erase(got.begin());
    if (got != shape) {
      std::string want = "[";
      for (std::size_t i = 0; i < shape.size(); ++i) want.append(i ? ", " : "").append(std::to_string(shape[i]));
      want.append("]");
      error = t.where() + " has shape " + t.shape_string() + ", but " + m.architecture_file() + " makes it " + want;
      return {};
    }
    if (t.channels_last) {
      error = t.where() + " is stored transposed; not a llama checkpoint";
      return {};
    }
    std::vector<float> out(t.numel());
    if (auto r = convert_to_f32(t.dtype, t.bytes().data(), out.size(), out.data()); !r) {
      error = t.where() + ": " + r.error().message;
      return {};
    }
    if (transform && *transform)
      if (auto r = (*transform)(t, out); !r) {
        error = t.where() + ": " + r.error().message;
        return {};
      }
    return out;
  }
};

}  // namespace

void LlamaModel::set_input_quant(int layer, LlamaLinearInput input, InputQuant q) {
  if (input_quant_.empty()) input_quant_.resize(static_cast<std::size_t>(cfg_.layers) * 4);
  input_quant_[static_cast<std::size_t>(layer) * 4 + static_cast<std::size_t>(input)] = std::move(q);
}

const LlamaModel::InputQuant* LlamaModel::input_quant(int layer, LlamaLinearInput input) const {
  if (input_quant_.empty()) return nullptr;
  const InputQuant& q = input_quant_[static_cast<std::size_t>(layer) * 4 + static_cast<std::size_t>(input)];
  return q.bits > 0 ? &q : nullptr;
}

std::uint64_t LlamaModel::weight_bytes() const {
  std::uint64_t n = embed_.size() + out_norm_.size() + lm_head_.size();
  for (const Block& b : blocks_)
    for (const auto* v : {&b.attn_norm, &b.wq, &b.wk, &b.wv, &b.wo, &b.bq, &b.bk, &b.bv, &b.ffn_norm, &b.w_gate, &b.w_up,
                          &b.w_down})
      n += v->size();
  return n * sizeof(float);
}

Result<LlamaModel> LlamaModel::load(const Model& m, OpContext& ctx) { return load(m, ctx, WeightTransform()); }

Result<LlamaModel> LlamaModel::load(const Model& m, OpContext& ctx, const WeightTransform& transform) {
  const ArchInfo& a = m.arch;
  const bool gguf = m.format == ModelFormat::Gguf;
  if (!a.is_llama_family())
    return Error::unsupported(m.architecture_file() + ": the forward pass supports llama, mistral and qwen2 models, not '" +
                              (a.model_type.empty() ? std::string("unknown") : a.model_type) + "'");
  if (!a.rope.scaling_type.empty() && a.rope.scaling_type != "linear")
    return Error::unsupported(m.architecture_file() + ": RoPE scaling '" + a.rope.scaling_type + "' is not supported yet");
  const std::string embed_name = gguf ? "token_embd.weight" : "model.embed_tokens.weight";
  const auto ei = m.find_tensor(embed_name);
  if (!ei) return Error::format(m.weights_label() + ": tensor " + embed_name + " is missing");
  const TensorInfo& et = m.tensors[*ei];
  if (et.shape.size() != 2) return Error::format(et.where() + " must be 2-D, is " + et.shape_string());

  LlamaModel lm;
  LlamaConfig& c = lm.cfg_;
  c.vocab = static_cast<int>(et.shape[0]);
  c.hidden = static_cast<int>(et.shape[1]);
  c.layers = static_cast<int>(a.num_layers > 0 ? a.num_layers : m.block_count());
  c.heads = static_cast<int>(a.num_heads);
  c.kv_heads = static_cast<int>(a.num_kv_heads > 0 ? a.num_kv_heads : a.num_heads);
  c.head_dim = static_cast<int>(a.head_dim > 0 ? a.head_dim : (a.num_heads > 0 ? a.hidden_size / a.num_heads : 0));
  c.max_position = static_cast<int>(a.max_position);
  c.rms_eps = static_cast<float>(a.rms_norm_eps > 0 ? a.rms_norm_eps : (gguf ? 1e-5 : 1e-6));
  c.rope_theta = a.rope.theta > 0 ? a.rope.theta : 10000.0;
  if (a.rope.scaling_type == "linear" && a.rope.scaling_factor > 0) c.rope_linear_factor = a.rope.scaling_factor;
  c.rope_interleaved = gguf && a.model_type != "qwen2";
  if (c.layers <= 0 || c.heads <= 0 || c.kv_heads <= 0 || c.head_dim <= 0 || c.head_dim % 2 != 0 ||
      c.heads % c.kv_heads != 0 || c.hidden <= 0 || c.vocab <= 0)
    return Error::format(m.architecture_file() + ": inconsistent architecture: layers " + std::to_string(c.layers) + ", heads " +
                         std::to_string(c.heads) + ", KV heads " + std::to_string(c.kv_heads) + ", head_dim " +
                         std::to_string(c.head_dim) + ", hidden " + std::to_string(c.hidden));
  const std::string gate0 = gguf ? "blk.0.ffn_gate.weight" : "model.layers.0.mlp.gate_proj.weight";
  const auto gi = m.find_tensor(gate0);
  if (!gi || m.tensors[*gi].shape.size() != 2) return Error::format(m.weights_label() + ": tensor " + gate0 + " is missing or not 2-D");
  c.ffn = static_cast<int>(m.tensors[*gi].shape[0]);
  const std::string q0b = gguf ? "blk.0.attn_q.bias" : "model.layers.0.self_attn.q_proj.bias";
  c.qkv_bias = m.find_tensor(q0b).has_value();
  const std::string head_name = gguf ? "output.weight" : "lm_head.weight";
  c.tied_embeddings = !m.find_tensor(head_name).has_value();

  const std::int64_t h = c.hidden, qd = std::int64_t{c.heads} * c.head_dim, kvd = std::int64_t{c.kv_heads} * c.head_dim,
                     f = c.ffn, v = c.vocab;
  // Every weight is held as F32: refuse up front, with the figure, what this machine cannot hold.
  const double need = 4.0 * (static_cast<double>(v) * h * (c.tied_embeddings ? 1 : 2) +
                             static_cast<double>(c.layers) * (2.0 * h * qd + 2.0 * h * kvd + 3.0 * h * f));
  if (auto fits = check_memory(need, m.path + ": the forward pass's F32 weights"); !fits) return fits.error();
  Loader ld{m, {}, &transform};
  lm.embed_ = ld.read(embed_name, {v, h});
  lm.out_norm_ = ld.read(gguf ? "output_norm.weight" : "model.norm.weight", {h});
  if (gguf) c.rope_freq_factors = ld.read("rope_freqs.weight", {c.head_dim / 2}, false);
  if (!c.tied_embeddings) lm.lm_head_ = ld.read(head_name, {v, h});
  lm.blocks_.resize(static_cast<std::size_t>(c.layers));
  for (int i = 0; i < c.layers && ld.error.empty(); ++i) {
    if (ctx.cancelled()) return Error::cancelled();
    Block& b = lm.blocks_[static_cast<std::size_t>(i)];
    const std::string p = gguf ? "blk." + std::to_string(i) + "." : "model.layers." + std::to_string(i) + ".";
    auto name = [&](const char* g, const char* hf) { return p + (gguf ? g : hf); };
    b.attn_norm = ld.read(name("attn_norm.weight", "input_layernorm.weight"), {h});
    b.wq = ld.read(name("attn_q.weight", "self_attn.q_proj.weight"), {qd, h});
    b.wk = ld.read(name("attn_k.weight", "self_attn.k_proj.weight"), {kvd, h});
    b.wv = ld.read(name("attn_v.weight", "self_attn.v_proj.weight"), {kvd, h});
    b.wo = ld.read(name("attn_output.weight", "self_attn.o_proj.weight"), {h, qd});
    if (c.qkv_bias) {
      b.bq = ld.read(name("attn_q.bias", "self_attn.q_proj.bias"), {qd});
      b.bk = ld.read(name("attn_k.bias", "self_attn.k_proj.bias"), {kvd});
      b.bv = ld.read(name("attn_v.bias", "self_attn.v_proj.bias"), {kvd});
    }
    b.ffn_norm = ld.read(name("ffn_norm.weight", "post_attention_layernorm.weight"), {h});
    b.w_gate = ld.read(name("ffn_gate.weight", "mlp.gate_proj.weight"), {f, h});
    b.w_up = ld.read(name("ffn_up.weight", "mlp.up_proj.weight"), {f, h});
    b.w_down = ld.read(name("ffn_down.weight", "mlp.down_proj.weight"), {h, f});
    ctx.progress(static_cast<double>(i + 1) / c.layers);
  }
  if (!ld.error.empty()) return Error::format(ld.error);
  return lm;
}

LlamaCache::LlamaCache(const LlamaConfig& cfg, int capacity)
    : capacity_(std::max(capacity, 0)), kv_dim_(cfg.kv_heads * cfg.head_dim) {
  k_.assign(static_cast<std::size_t>(cfg.layers),
            std::vector<float>(static_cast<std::size_t>(capacity_) * static_cast<std::size_t>(kv_dim_)));
  v_ = k_;
}

LlamaRunner::LlamaRunner(const LlamaModel& model, ThreadPool* pool)
    : model_(model), pool_(pool ? pool : &ThreadPool::global()) {}

void LlamaRunner::quantize_input(int layer, LinearInput input, float* x, std::int64_t rows, std::int64_t cols) {
  const LlamaModel::InputQuant* q = model_.input_quant(layer, input);
  if (!q) return;
  const float* s = q->smooth.empty() ? nullptr : q->smooth.data();
  constexpr std::int64_t kChunk = 16;  // rows are independent: chunks over the pool
  const std::int64_t tasks = (rows + kChunk - 1) / kChunk;
  pool_->parallel_for(static_cast<std::size_t>(tasks), [&](std::size_t t, unsigned) {
    const std::int64_t r0 = static_cast<std::int64_t>(t) * kChunk;
    fake_quant_activation_rows(x + r0 * cols, std::min(kChunk, rows - r0), cols, q->bits, s);
  });
}

Result<void> LlamaRunner::forward(LlamaCache& cache, std::span<const std::int32_t> tokens, std::vector<float>& logits,
                                  int logit_rows) {
  const LlamaConfig& c = model_.config();
  const auto n = static_cast<std::int64_t>(tokens.size());
  if (n == 0) return Error::invalid("forward: no tokens");
  if (cache.kv_dim_ != c.kv_heads * c.head_dim || cache.k_.size() != static_cast<std::size_t>(c.layers))
    return Error::invalid("forward: the cache was made for another model");
  if (cache.pos_ + n > cache.capacity_)
    return Error::invalid("forward: " + std::to_string(cache.pos_ + n) + " positions exceed the cache's " +
                          std::to_string(cache.capacity_));
  for (const std::int32_t t : tokens)
    if (t < 0 || t >= c.vocab) return Error::invalid("forward: token id " + std::to_string(t) + " is outside the vocabulary");

  const std::int64_t h = c.hidden, d = c.head_dim, qd = std::int64_t{c.heads} * d, kvd = std::int64_t{c.kv_heads} * d,
                     f = c.ffn;
  const int pos0 = cache.pos_;
  const std::int64_t total = pos0 + n;  // keys visible to the last query
  auto sz = [](std::int64_t a) { return static_cast<std::size_t>(a); };
  x_.resize(sz(n * h));
  xn_.resize(sz(n * std::max(h, qd)));
  q_.resize(sz(n * qd));
  att_.resize(sz(n * qd));
  gate_.resize(sz(n * f));
  up_.resize(sz(n * f));

  const std::vector<float>& emb = model_.embedding();
  for (std::int64_t i = 0; i < n; ++i)
    std::copy_n(emb.data() + static_cast<std::int64_t>(tokens[sz(i)]) * h, h, x_.data() + i * h);

  // Row-wise steps are split over the pool in row ranges.
  const std::int64_t row_chunk = 64, row_tasks = (n + row_chunk - 1) / row_chunk;
  auto rows = [&](auto&& fn) {
    pool_->parallel_for(sz(row_tasks), [&](std::size_t t, unsigned) {
      const std::int64_t r0 = static_cast<std::int64_t>(t) * row_chunk;
      fn(r0, std::min(n, r0 + row_chunk));
    });
  };
  const std::int64_t q_block = 64, q_blocks = (n + q_block - 1) / q_block;
  const int group = c.heads / c.kv_heads;
  const float scale = 1.0f / std::sqrt(static_cast<float>(d));
  std::vector<RowMat> scores(pool_->size());

  for (int l = 0; l < c.layers; ++l) {
    const LlamaModel::Block& b = model_.blocks()[sz(l)];
    rows([&](std::int64_t r0, std::int64_t r1) { rms_norm(x_.data() + r0 * h, r1 - r0, h, b.attn_norm, c.rms_eps, xn_.data() + r0 * h); });
    float* kc = cache.k_[sz(l)].data() + sz(pos0 * kvd);
    float* vc = cache.v_[sz(l)].data() + sz(pos0 * kvd);
    if (observer_) observer_(l, LinearInput::Attention, xn_.data(), n, h);
    quantize_input(l, LinearInput::Attention, xn_.data(), n, h);
    linear(xn_.data(), n, h, b.wq.data(), qd, q_.data());
    linear(xn_.data(), n, h, b.wk.data(), kvd, kc);
    linear(xn_.data(), n, h, b.wv.data(), kvd, vc);
    add_bias(q_.data(), n, b.bq);
    add_bias(kc, n, b.bk);
    add_bias(vc, n, b.bv);
    rows([&](std::int64_t r0, std::int64_t r1) {
      rope(q_.data() + r0 * qd, r1 - r0, c.heads, c.head_dim, pos0 + static_cast<int>(r0), c);
      rope(kc + r0 * kvd, r1 - r0, c.kv_heads, c.head_dim, pos0 + static_cast<int>(r0), c);
    });

    // Attention: one task per (head, block of queries).
    const float* kl = cache.k_[sz(l)].data();
    const float* vl = cache.v_[sz(l)].data();
    // Small problems (decoding one token) run inline: waking the pool costs more than the work.
    const double attn_flops = 4.0 * static_cast<double>(c.heads) * static_cast<double>(n) * static_cast<double>(total) *
                              static_cast<double>(d);
    auto attn_for = [&](std::size_t tasks, const std::function<void(std::size_t, unsigned)>& fn) {
      if (attn_flops < 2e5) {
        for (std::size_t t = 0; t < tasks; ++t) fn(t, 0);
      } else {
        pool_->parallel_for(tasks, fn);
      }
    };
    attn_for(sz(std::int64_t{c.heads} * q_blocks), [&](std::size_t task, unsigned worker) {
      const std::int64_t head = static_cast<std::int64_t>(task) / q_blocks;
      const std::int64_t i0 = (static_cast<std::int64_t>(task) % q_blocks) * q_block;
      const std::int64_t rows_here = std::min(q_block, n - i0);
      const std::int64_t keys = pos0 + i0 + rows_here;  // causal: the last query sees this many
      const std::int64_t kvh = head / group;
      const float* Q = q_.data() + i0 * qd + head * d;
      const float* K = kl + kvh * d;
      const float* V = vl + kvh * d;
      float* O = att_.data() + i0 * qd + head * d;
      RowMat& S = scores[worker];
      S.resize(rows_here, keys);
      // S = scale * Q K^T over the keys this block may see
#ifdef QS_HAVE_LAPACK
      if (rows_here == 1)
        cblas_sgemv(CblasRowMajor, CblasNoTrans, static_cast<int>(keys), static_cast<int>(d), scale, K,
                    static_cast<int>(kvd), Q, 1, 0.0f, S.data(), 1);
      else
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(rows_here), static_cast<int>(keys),
                    static_cast<int>(d), scale, Q, static_cast<int>(qd), K, static_cast<int>(kvd), 0.0f, S.data(),
                    static_cast<int>(keys));
#else
      S.noalias() = scale * (Eigen::Map<const RowMat, 0, Stride>(Q, rows_here, d, Stride(qd)) *
                             Eigen::Map<const RowMat, 0, Stride>(K, keys, d, Stride(kvd)).transpose());
#endif
      for (std::int64_t i = 0; i < rows_here; ++i) {  // causal softmax, row by row
        const std::int64_t visible = pos0 + i0 + i + 1;
        Eigen::Map<Eigen::ArrayXf> row(S.data() + i * keys, visible);  // vectorised exp
        row = (row - row.maxCoeff()).exp();
        row *= 1.0f / row.sum();
        std::fill(S.data() + i * keys + visible, S.data() + (i + 1) * keys, 0.0f);
      }
      // O = P V
#ifdef QS_HAVE_LAPACK
      if (rows_here == 1)
        cblas_sgemv(CblasRowMajor, CblasTrans, static_cast<int>(keys), static_cast<int>(d), 1.0f, V, static_cast<int>(kvd),
                    S.data(), 1, 0.0f, O, 1);
      else
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, static_cast<int>(rows_here), static_cast<int>(d),
                    static_cast<int>(keys), 1.0f, S.data(), static_cast<int>(keys), V, static_cast<int>(kvd), 0.0f, O,
                    static_cast<int>(qd));
#else
      Eigen::Map<RowMat, 0, Stride>(O, rows_here, d, Stride(qd)).noalias() =
          S * Eigen::Map<const RowMat, 0, Stride>(V, keys, d, Stride(kvd));
#endif
    });
    if (observer_) observer_(l, LinearInput::AttentionOutput, att_.data(), n, qd);
    quantize_input(l, LinearInput::AttentionOutput, att_.data(), n, qd);
    linear(att_.data(), n, qd, b.wo.data(), h, xn_.data());
    rows([&](std::int64_t r0, std::int64_t r1) {
      for (std::int64_t i = r0 * h; i < r1 * h; ++i) x_[sz(i)] += xn_[sz(i)];
      rms_norm(x_.data() + r0 * h, r1 - r0, h, b.ffn_norm, c.rms_eps, xn_.data() + r0 * h);
    });
    if (observer_) observer_(l, LinearInput::Mlp, xn_.data(), n, h);
    quantize_input(l, LinearInput::Mlp, xn_.data(), n, h);
    linear(xn_.data(), n, h, b.w_gate.data(), f, gate_.data());
    linear(xn_.data(), n, h, b.w_up.data(), f, up_.data());
    rows([&](std::int64_t r0, std::int64_t r1) {
      Eigen::Map<Eigen::ArrayXf> g(gate_.data() + r0 * f, (r1 - r0) * f);
      Eigen::Map<const Eigen::ArrayXf> u(up_.data() + r0 * f, (r1 - r0) * f);
      g = g / (1.0f + (-g).exp()) * u;  // SiLU(gate) * up
    });
    if (observer_) observer_(l, LinearInput::MlpDown, gate_.data(), n, f);
    quantize_input(l, LinearInput::MlpDown, gate_.data(), n, f);
    linear(gate_.data(), n, f, b.w_down.data(), h, xn_.data());
    rows([&](std::int64_t r0, std::int64_t r1) {
      for (std::int64_t i = r0 * h; i < r1 * h; ++i) x_[sz(i)] += xn_[sz(i)];
    });
  }
  cache.pos_ = static_cast<int>(total);

  const std::int64_t out_rows = logit_rows < 0 ? n : std::min<std::int64_t>(logit_rows, n);
  const std::int64_t first = n - out_rows;
  rms_norm(x_.data() + first * h, out_rows, h, model_.output_norm(), c.rms_eps, xn_.data());
  logits.resize(sz(out_rows * c.vocab));
  if (out_rows > 0) linear(xn_.data(), out_rows, h, model_.lm_head().data(), c.vocab, logits.data());
  return {};
}

Result<std::vector<std::int32_t>> generate_greedy(const LlamaModel& model, std::span<const std::int32_t> prompt,
                                                  int max_new_tokens, std::int32_t stop_token, OpContext& ctx) {
  const int capacity = static_cast<int>(prompt.size()) + std::max(max_new_tokens, 0);
  auto runner = make_cpu_forward_runner(model, capacity);
  return generate_greedy(*runner, prompt, max_new_tokens, stop_token, ctx);
}

}  // namespace qs
