#include "quant/ggml_block_pack.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "quant/ggml_dequant.h"
#include "quant/ggml_quantize.h"
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

bool ggml_superblock_supported(DType t) { return t == DType::Q4_K || t == DType::Q5_K || t == DType::Q6_K; }

int ggml_superblock_sub(DType t) { return t == DType::Q6_K ? 16 : 32; }

void ggml_superblock_grids(DType t, const float* x, GgmlBlockGrid* grids, std::byte* reference) {
  (void)quantize_ggml_blocks(t, x, 1, reference);  // finite input: checked by the caller
  const auto* b = reinterpret_cast<const unsigned char*>(reference);
  auto half_at = [](const unsigned char* p) {
    std::uint16_t h;
    std::memcpy(&h, p, 2);
    return f16_to_f32(h);
  };
  if (t == DType::Q6_K) {
    const float d = half_at(b + 208);
    const auto* sc = reinterpret_cast<const std::int8_t*>(b + 192);
    for (int k = 0; k < 16; ++k) grids[k] = {d * static_cast<float>(sc[k]), 32.0f, 0.0f, 0, 63};
    return;
  }
  const float d = half_at(b), dmin = half_at(b + 2);
  const unsigned char* s = b + 4;
  for (int j = 0; j < 8; ++j) {
    int sc, m;
    ggml_k4_scale_min(j, s, sc, m);
    grids[j] = {d * static_cast<float>(sc), 0.0f, -(dmin * static_cast<float>(m)), 0, t == DType::Q5_K ? 31 : 15};
  }
}

void pack_ggml_superblock(DType t, const std::byte* reference, const std::uint8_t* codes, std::byte* out) {
  std::memcpy(out, reference, dtype_block_bytes(t));
  auto* o = reinterpret_cast<unsigned char*>(out);
  if (t == DType::Q6_K) {
    unsigned char* ql = o;
    unsigned char* qh = o + 128;
    for (int h = 0; h < 2; ++h)
      for (int l = 0; l < 32; ++l) {
        const std::uint8_t* e = codes + 128 * h + l;
        ql[64 * h + l] = static_cast<unsigned char>((e[0] & 0x0F) | ((e[64] & 0x0F) << 4));
        ql[64 * h + l + 32] = static_cast<unsigned char>((e[32] & 0x0F) | ((e[96] & 0x0F) << 4));
        qh[32 * h + l] = static_cast<unsigned char>((e[0] >> 4) | ((e[32] >> 4) << 2) | ((e[64] >> 4) << 4) | ((e[96] >> 4) << 6));
      }
    return;
  }
  const bool five = t == DType::Q5_K;
  unsigned char* qs = o + (five ? 48 : 16);
  unsigned char* qh = o + 16;
  if (five) std::memset(qh, 0, 32);
  for (int c = 0; c < 4; ++c)
    for (int l = 0; l < 32; ++l) {
      const std::uint8_t lo = codes[64 * c + l], hi = codes[64 * c + 32 + l];
      qs[32 * c + l] = static_cast<unsigned char>((lo & 0x0F) | ((hi & 0x0F) << 4));
      if (five) qh[l] = static_cast<unsigned char>(qh[l] | (((lo >> 4) & 1) << (2 * c)) | (((hi >> 4) & 1) << (2 * c + 1)));
    }
}

}  // namespace qs
