#include "calib/device_forward_plan.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "calib/llama_forward.h"

namespace qs {

std::vector<double> rope_inv_freq(const LlamaConfig& c) {
  const int half = c.head_dim / 2;
  std::vector<double> inv(static_cast<std::size_t>(std::max(half, 0)));
  for (int i = 0; i < half; ++i)
    inv[static_cast<std::size_t>(i)] =
        std::pow(c.rope_theta, -2.0 * i / c.head_dim) / c.rope_linear_factor /
        (c.rope_freq_factors.empty() ? 1.0 : static_cast<double>(c.rope_freq_factors[static_cast<std::size_t>(i)]));
  return inv;
}

RopeTables make_rope_tables(const LlamaConfig& c, int positions) {
  RopeTables t;
  t.positions = std::max(positions, 0);
  t.half = c.head_dim / 2;
  const auto inv = rope_inv_freq(c);
  const std::size_t n = static_cast<std::size_t>(t.positions) * static_cast<std::size_t>(t.half);
  t.cos.resize(n);
  t.sin.resize(n);
  for (int p = 0; p < t.positions; ++p)
    for (int i = 0; i < t.half; ++i) {
      const double a = static_cast<double>(p) * inv[static_cast<std::size_t>(i)];
      const std::size_t k = static_cast<std::size_t>(p) * static_cast<std::size_t>(t.half) + static_cast<std::size_t>(i);
      t.cos[k] = static_cast<float>(std::cos(a));
      t.sin[k] = static_cast<float>(std::sin(a));
    }
  return t;
}

DeviceForwardMemory device_forward_memory(const LlamaConfig& c, int capacity) {
  const std::uint64_t f = sizeof(float), h = static_cast<std::uint64_t>(c.hidden),
                      d = static_cast<std::uint64_t>(c.head_dim), qd = static_cast<std::uint64_t>(c.heads) * d,
                      kvd = static_cast<std::uint64_t>(c.kv_heads) * d, ffn = static_cast<std::uint64_t>(c.ffn),
                      v = static_cast<std::uint64_t>(c.vocab), layers = static_cast<std::uint64_t>(c.layers),
                      n = static_cast<std::uint64_t>(std::max(capacity, 0));
  DeviceForwardMemory m;
  const std::uint64_t per_layer = 2 * h /* norms */ + 2 * qd * h /* q, o */ + 2 * kvd * h /* k, v */ + 3 * h * ffn +
                                  (c.qkv_bias ? qd + 2 * kvd : 0);
  m.weights = f * (v * h /* embedding */ + h /* final norm */ + (c.tied_embeddings ? 0 : v * h) + layers * per_layer);
  m.kv_cache = f * 2 * layers * n * kvd;
  // x [n, h], xn [n, max(h, qd)], q [n, qd], attention output [n, qd], gate and up [n, ffn], token ids.
  m.activations = f * n * (h + std::max(h, qd) + 2 * qd + 2 * ffn) + sizeof(std::int32_t) * n;
  m.logits = f * n * v;
  m.rope = f * 2 * n * d / 2;
  return m;
}

std::string describe_device_shortfall(const DeviceForwardMemory& need, std::uint64_t free_bytes) {
  auto mib = [](std::uint64_t b) { return static_cast<double>(b) / (1024.0 * 1024.0); };
  char buf[256];
  std::snprintf(buf, sizeof buf,
                "needs %.1f MiB on the device (weights %.1f, KV cache %.1f, activations %.1f, logits %.1f MiB), %.1f MiB free",
                mib(need.total()), mib(need.weights), mib(need.kv_cache), mib(need.activations), mib(need.logits),
                mib(free_bytes));
  return buf;
}

}  // namespace qs
