#include "demo/demo_model.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "io/safetensors.h"
#include "util/atomic_file.h"
#include "util/half.h"
#include "util/read_text_file.h"
#include "util/json_depth.h"

namespace qs {
namespace fs = std::filesystem;

namespace {

// Bumped whenever the generator's output changes, so cached demos are rewritten.
constexpr int kGeneratorVersion = 1;

// xoshiro256** seeded by splitmix64: small, fast, and the same on every platform
// (std::normal_distribution is not, across standard libraries).
class Rng {
 public:
  explicit Rng(std::uint64_t seed) {
    for (auto& s : s_) {
      seed += 0x9E3779B97F4A7C15ull;
      std::uint64_t z = seed;
      z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
      z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
      s = z ^ (z >> 31);
    }
  }
  std::uint64_t next() {
    const std::uint64_t r = rotl(s_[1] * 5, 7) * 9, t = s_[1] << 17;
    s_[2] ^= s_[0]; s_[3] ^= s_[1]; s_[1] ^= s_[2]; s_[0] ^= s_[3];
    s_[2] ^= t; s_[3] = rotl(s_[3], 45);
    return r;
  }
  double uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }  // [0, 1)
  double normal() {  // Box-Muller, one value per call
    const double u1 = 1.0 - uniform(), u2 = uniform();
    return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
  }
  int below(int n) { return static_cast<int>(uniform() * n); }

 private:
  static std::uint64_t rotl(std::uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  std::uint64_t s_[4];
};

struct Tensor {
  std::string name;
  std::vector<std::int64_t> shape;
  std::vector<float> values;
};

// Heavy-tailed weights: a Gaussian scale mixture (log-normal scale), as the
// weights of trained LLMs are leptokurtic. `tail` sets how heavy (0 = Gaussian).
Tensor linear(Rng& rng, std::string name, int out, int in, double tail) {
  Tensor t{std::move(name), {out, in}, std::vector<float>(static_cast<std::size_t>(out) * in)};
  const double sigma = 1.0 / std::sqrt(static_cast<double>(in));
  const double norm = std::exp(-tail * tail);  // keeps the overall scale near sigma
  for (auto& v : t.values) v = static_cast<float>(sigma * norm * rng.normal() * std::exp(tail * rng.normal()));
  return t;
}

void scale_columns(Tensor& t, const std::vector<int>& cols, const std::vector<float>& factors) {
  const auto in = static_cast<std::size_t>(t.shape[1]);
  for (std::size_t r = 0; r < static_cast<std::size_t>(t.shape[0]); ++r)
    for (std::size_t i = 0; i < cols.size(); ++i) t.values[r * in + static_cast<std::size_t>(cols[i])] *= factors[i];
}

Tensor norm_weight(Rng& rng, std::string name, int n, double base) {
  Tensor t{std::move(name), {n}, std::vector<float>(static_cast<std::size_t>(n))};
  for (auto& v : t.values) v = static_cast<float>(base + 0.05 * rng.normal());
  return t;
}

std::vector<std::byte> encode(const std::vector<float>& v, DType dtype) {
  const unsigned es = dtype_bits(dtype) / 8;
  std::vector<std::byte> out(v.size() * es);
  for (std::size_t i = 0; i < v.size(); ++i) {
    if (dtype == DType::F32) {
      std::memcpy(&out[i * 4], &v[i], 4);
    } else {
      const std::uint16_t h = dtype == DType::F16 ? f32_to_f16(v[i]) : f32_to_bf16(v[i]);
      std::memcpy(&out[i * 2], &h, 2);
    }
  }
  return out;
}

std::vector<int> distinct_channels(Rng& rng, int count, int n) {
  std::vector<int> out;
  while (static_cast<int>(out.size()) < count) {
    const int c = rng.below(n);
    if (std::find(out.begin(), out.end(), c) == out.end()) out.push_back(c);
  }
  std::sort(out.begin(), out.end());
  return out;
}

Result<void> write_text_atomic(const std::string& path, const std::string& text) {
  auto f = AtomicFile::create(path);
  if (!f) return f.error();
  if (auto r = f->write(text.data(), text.size()); !r) return r;
  return f->commit();
}

std::string dtype_config_name(DType t) {
  return t == DType::F16 ? "float16" : t == DType::BF16 ? "bfloat16" : "float32";
}

}  // namespace

DemoTruth demo_truth(const DemoSpec& spec) {
  // A separate stream from the weights, so the truth is cheap to recompute.
  Rng rng(spec.seed ^ 0x5EED0F0u);
  DemoTruth t;
  t.hidden_outlier_channels = distinct_channels(rng, 4, spec.hidden);
  for (std::size_t i = 0; i < t.hidden_outlier_channels.size(); ++i)
    t.hidden_outlier_factors.push_back(static_cast<float>(20.0 + 80.0 * rng.uniform()));
  for (int b = 0; b < spec.layers; ++b) t.down_outlier_channels.push_back(distinct_channels(rng, 2, spec.intermediate));
  return t;
}

Result<void> write_demo_model(const std::string& dir, const DemoSpec& spec) {
  if (spec.dtype != DType::F16 && spec.dtype != DType::BF16 && spec.dtype != DType::F32)
    return Error::invalid("demo model dtype must be F16, BF16 or F32");
  if (spec.hidden < 8 || spec.heads < 1 || spec.hidden % spec.heads || spec.kv_heads < 1 || spec.heads % spec.kv_heads ||
      spec.layers < 1 || spec.intermediate < 8 || spec.vocab < 8)
    return Error::invalid("demo model: inconsistent shape settings");
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return Error::io(dir + ": cannot create directory: " + ec.message());

  const DemoTruth truth = demo_truth(spec);
  const int hd = spec.hidden / spec.heads, kv = spec.kv_heads * hd;
  Rng rng(spec.seed);
  std::vector<Tensor> tensors;
  tensors.push_back(linear(rng, "model.embed_tokens.weight", spec.vocab, spec.hidden, 0.3));
  for (int b = 0; b < spec.layers; ++b) {
    const std::string p = "model.layers." + std::to_string(b) + ".";
    // Deeper blocks get heavier tails, as measured kurtosis grows with depth in real LLMs.
    const double tail = 0.3 + 0.06 * b;
    tensors.push_back(norm_weight(rng, p + "input_layernorm.weight", spec.hidden, 1.0));
    tensors.push_back(linear(rng, p + "self_attn.q_proj.weight", spec.hidden, spec.hidden, tail));
    tensors.push_back(linear(rng, p + "self_attn.k_proj.weight", kv, spec.hidden, tail));
    tensors.push_back(linear(rng, p + "self_attn.v_proj.weight", kv, spec.hidden, 0.3));
    tensors.push_back(linear(rng, p + "self_attn.o_proj.weight", spec.hidden, spec.hidden, 0.3));
    tensors.push_back(norm_weight(rng, p + "post_attention_layernorm.weight", spec.hidden, 1.0));
    tensors.push_back(linear(rng, p + "mlp.gate_proj.weight", spec.intermediate, spec.hidden, tail));
    tensors.push_back(linear(rng, p + "mlp.up_proj.weight", spec.intermediate, spec.hidden, 0.3));
    tensors.push_back(linear(rng, p + "mlp.down_proj.weight", spec.hidden, spec.intermediate, tail + 0.15));
    // Outlier input channels: the hidden dimensions every block reads, and a
    // couple of intermediate dimensions per down_proj ("massive activations").
    for (std::size_t i = tensors.size() - 8; i < tensors.size(); ++i) {
      const auto& n = tensors[i].name;
      if (n.find("q_proj") != n.npos || n.find("k_proj") != n.npos || n.find("v_proj") != n.npos ||
          n.find("gate_proj") != n.npos || n.find("up_proj") != n.npos)
        scale_columns(tensors[i], truth.hidden_outlier_channels, truth.hidden_outlier_factors);
    }
    scale_columns(tensors.back(), truth.down_outlier_channels[static_cast<std::size_t>(b)], {30.0f, 60.0f});
  }
  tensors.push_back(norm_weight(rng, "model.norm.weight", spec.hidden, 1.0));
  tensors.push_back(linear(rng, "lm_head.weight", spec.vocab, spec.hidden, 0.3));

  std::vector<std::vector<std::byte>> storage;
  std::vector<SafetensorsWriteEntry> entries;
  storage.reserve(tensors.size());
  for (const auto& t : tensors) {
    storage.push_back(encode(t.values, spec.dtype));
    entries.push_back({t.name, spec.dtype, t.shape, storage.back()});
  }
  if (auto r = write_safetensors((fs::path(dir) / "model.safetensors").string(), std::move(entries)); !r) return r;

  nlohmann::ordered_json cfg;
  cfg["architectures"] = {"LlamaForCausalLM"};
  cfg["model_type"] = "llama";
  cfg["hidden_size"] = spec.hidden;
  cfg["intermediate_size"] = spec.intermediate;
  cfg["num_hidden_layers"] = spec.layers;
  cfg["num_attention_heads"] = spec.heads;
  cfg["num_key_value_heads"] = spec.kv_heads;
  cfg["head_dim"] = hd;
  cfg["vocab_size"] = spec.vocab;
  cfg["max_position_embeddings"] = 2048;
  cfg["rms_norm_eps"] = 1e-5;
  cfg["rope_theta"] = 10000.0;
  cfg["rope_scaling"] = nullptr;
  cfg["tie_word_embeddings"] = false;
  cfg["torch_dtype"] = dtype_config_name(spec.dtype);
  if (auto r = write_text_atomic((fs::path(dir) / "config.json").string(), cfg.dump(2) + "\n"); !r) return r;

  nlohmann::ordered_json info;
  info["generator"] = "QuantScope demo model";
  info["generator_version"] = kGeneratorVersion;
  info["seed"] = spec.seed;
  info["note"] = "Synthetic weights, not a trained model: heavy-tailed with planted outlier input channels.";
  info["hidden_outlier_channels"] = truth.hidden_outlier_channels;
  info["hidden_outlier_factors"] = truth.hidden_outlier_factors;
  info["down_proj_outlier_channels"] = truth.down_outlier_channels;
  return write_text_atomic((fs::path(dir) / "quantscope_demo.json").string(), info.dump(2) + "\n");
}

std::string default_demo_dir() {
  if (const char* xdg = std::getenv("XDG_CACHE_HOME"); xdg && *xdg) return (fs::path(xdg) / "quantscope" / "demo").string();
  if (const char* home = std::getenv("HOME"); home && *home) return (fs::path(home) / ".cache" / "quantscope" / "demo").string();
  return (fs::temp_directory_path() / "quantscope-demo").string();
}

Result<std::string> ensure_demo_model(const std::string& dir) {
  const fs::path info = fs::path(dir) / "quantscope_demo.json";
  if (fs::exists(info) && fs::exists(fs::path(dir) / "model.safetensors") && fs::exists(fs::path(dir) / "config.json")) {
    if (auto text = read_text_file(info.string(), 1 << 20); text && check_json_depth(*text, info.string())) {
      const auto j = nlohmann::json::parse(*text, nullptr, false);
      if (!j.is_discarded() && j.is_object() && j.value("generator_version", 0) == kGeneratorVersion) return dir;
    }
  }
  if (auto r = write_demo_model(dir); !r) return r.error();
  return dir;
}

}  // namespace qs
