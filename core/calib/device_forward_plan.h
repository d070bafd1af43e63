#pragma once
// Host-side planning for device forward runners (kernels/), kept in core so
// that it is unit-tested on machines without a GPU:
// - the RoPE angle tables, computed exactly as the CPU forward computes them
//   (same double-precision formula, same float rounding), so the device
//   rotates with bit-identical cos/sin and parity does not hinge on the
//   device's transcendental functions;
// - the device memory a runner needs for a model and a cache size, so that a
//   model that does not fit is refused with the figures before any upload.
#include <cstdint>
#include <string>
#include <vector>

namespace qs {

struct LlamaConfig;

// 1 / (theta^(2i/d) * linear_factor * freq_factor[i]) for i < head_dim / 2:
// the angle of pair i at position p is p * inv_freq[i].
std::vector<double> rope_inv_freq(const LlamaConfig& c);

struct RopeTables {
  int positions = 0, half = 0;
  std::vector<float> cos, sin;  // [positions, half], row p = position p
};
RopeTables make_rope_tables(const LlamaConfig& c, int positions);

struct DeviceForwardMemory {
  std::uint64_t weights = 0;      // F32 weights, norms and biases
  std::uint64_t kv_cache = 0;     // K and V, every layer, `capacity` positions
  std::uint64_t activations = 0;  // per-token scratch for a chunk of `capacity` tokens
  std::uint64_t logits = 0;       // [capacity, vocab]
  std::uint64_t rope = 0;         // the cos/sin tables
  std::uint64_t total() const { return weights + kv_cache + activations + logits + rope; }
};
// What a runner that takes up to `capacity` tokens per call allocates.
DeviceForwardMemory device_forward_memory(const LlamaConfig& c, int capacity);

// "needs 123.4 MiB on the device (weights 100.0, KV cache 20.0, ...), 50.0 MiB free".
std::string describe_device_shortfall(const DeviceForwardMemory& need, std::uint64_t free_bytes);

}  // namespace qs
