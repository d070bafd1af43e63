#include "quant/ggml_block_pack.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "util/half.h"

namespace qs {
namespace {

float f16_round(float v) { return f16_to_f32(f32_to_f16(v)); }

void put_f16(std::byte* out, float v) {
  const std::uint16_t h = f32_to_f16(v);
  std::memcpy(out, &h, 2);
}

// Low nibbles hold elements 0-15, high nibbles 16-31; bit 4 (5-bit types) goes to qh, a little-endian u32.
void put_nibbles(const std::uint8_t* codes, std::byte* qs) {
  for (int j = 0; j < 16; ++j) qs[j] = static_cast<std::byte>((codes[j] & 0x0F) | ((codes[j + 16] & 0x0F) << 4));
}
void put_high_bits(const std::uint8_t* codes, std::byte* qh) {
  std::uint32_t h = 0;
  for (int j = 0; j < 32; ++j) h |= static_cast<std::uint32_t>((codes[j] >> 4) & 1u) << j;
  const unsigned char b[4] = {static_cast<unsigned char>(h), static_cast<unsigned char>(h >> 8),
                              static_cast<unsigned char>(h >> 16), static_cast<unsigned char>(h >> 24)};
  std::memcpy(qh, b, 4);
}

}  // namespace

bool ggml_block_pack_supported(DType t) {
  return t == DType::Q8_0 || t == DType::Q4_0 || t == DType::Q4_1 || t == DType::Q5_0 || t == DType::Q5_1;
}

GgmlBlockGrid ggml_block_grid(DType t, const float* x) {
  GgmlBlockGrid g;
  switch (t) {
    case DType::Q8_0: {
      float amax = 0;
      for (int j = 0; j < 32; ++j) amax = std::max(amax, std::fabs(x[j]));
      g.scale = f16_round(amax / 127.0f);
      g.zero = 128;  // int8 code + 128; -128 is never used
      g.lo = 1;
      g.hi = 255;
      break;
    }
    case DType::Q4_0:
    case DType::Q5_0: {
      float amax = 0, max = 0;  // the value of largest magnitude, with its sign (first on ties)
      for (int j = 0; j < 32; ++j)
        if (amax < std::fabs(x[j])) {
          amax = std::fabs(x[j]);
          max = x[j];
        }
      const bool five = t == DType::Q5_0;
      g.scale = f16_round(max / (five ? -16.0f : -8.0f));
      g.zero = five ? 16.0f : 8.0f;
      g.hi = five ? 31 : 15;
      break;
    }
    case DType::Q4_1:
    case DType::Q5_1: {
      float min = x[0], max = x[0];
      for (int j = 1; j < 32; ++j) {
        min = std::min(min, x[j]);
        max = std::max(max, x[j]);
      }
      const bool five = t == DType::Q5_1;
      g.scale = f16_round((max - min) / (five ? 31.0f : 15.0f));
      g.offset = f16_round(min);
      g.hi = five ? 31 : 15;
      break;
    }
    default:
      break;
  }
  return g;
}

void pack_ggml_block(DType t, const GgmlBlockGrid& g, const std::uint8_t* codes, std::byte* out) {
  switch (t) {
    case DType::Q8_0:
      put_f16(out, g.scale);
      for (int j = 0; j < 32; ++j) out[2 + j] = static_cast<std::byte>(static_cast<std::int8_t>(static_cast<int>(codes[j]) - 128));
      return;
    case DType::Q4_0:
      put_f16(out, g.scale);
      put_nibbles(codes, out + 2);
      return;
    case DType::Q4_1:
      put_f16(out, g.scale);
      put_f16(out + 2, g.offset);
      put_nibbles(codes, out + 4);
      return;
    case DType::Q5_0:
      put_f16(out, g.scale);
      put_high_bits(codes, out + 2);
      put_nibbles(codes, out + 6);
      return;
    case DType::Q5_1:
      put_f16(out, g.scale);
      put_f16(out + 2, g.offset);
      put_high_bits(codes, out + 4);
      put_nibbles(codes, out + 8);
      return;
    default:
      return;
  }
}

}  // namespace qs
