#include "quant/ggml_dequant.h"

#include <cstring>

#include "quant/iq1_quantize.h"
#include "quant/iq2_quantize.h"
#include "quant/iq3_quantize.h"
#include "util/half.h"

namespace qs {

const std::int8_t kIq4nlValues[16] = {-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113};

namespace {

using u8 = std::uint8_t;

inline float half_at(const u8* p) {
  std::uint16_t h;
  std::memcpy(&h, p, 2);
  return f16_to_f32(h);
}

// Q4_0 / Q4_1 / IQ4_NL nibble order: low nibbles are elements 0-15, high nibbles 16-31.
void q4_0(const u8* b, float* y) {
  const float d = half_at(b);
  const u8* qs = b + 2;
  for (int j = 0; j < 16; ++j) {
    y[j] = static_cast<float>((qs[j] & 0x0F) - 8) * d;
    y[j + 16] = static_cast<float>((qs[j] >> 4) - 8) * d;
  }
}

void q4_1(const u8* b, float* y) {
  const float d = half_at(b), m = half_at(b + 2);
  const u8* qs = b + 4;
  for (int j = 0; j < 16; ++j) {
    y[j] = static_cast<float>(qs[j] & 0x0F) * d + m;
    y[j + 16] = static_cast<float>(qs[j] >> 4) * d + m;
  }
}

inline std::uint32_t u32_at(const u8* p) {
  std::uint32_t v;
  std::memcpy(&v, p, 4);
  return v;  // little-endian hosts only (as every reader here)
}

// Q5: bit 4 of element j is bit j of qh (read as a little-endian u32).
void q5_0(const u8* b, float* y) {
  const float d = half_at(b);
  const std::uint32_t qh = u32_at(b + 2);
  const u8* qs = b + 6;
  for (int j = 0; j < 16; ++j) {
    const int lo = (qs[j] & 0x0F) | static_cast<int>(((qh >> j) & 1u) << 4);
    const int hi = (qs[j] >> 4) | static_cast<int>(((qh >> (j + 16)) & 1u) << 4);
    y[j] = static_cast<float>(lo - 16) * d;
    y[j + 16] = static_cast<float>(hi - 16) * d;
  }
}

void q5_1(const u8* b, float* y) {
  const float d = half_at(b), m = half_at(b + 2);
  const std::uint32_t qh = u32_at(b + 4);
  const u8* qs = b + 8;
  for (int j = 0; j < 16; ++j) {
    const int lo = (qs[j] & 0x0F) | static_cast<int>(((qh >> j) & 1u) << 4);
    const int hi = (qs[j] >> 4) | static_cast<int>(((qh >> (j + 16)) & 1u) << 4);
    y[j] = static_cast<float>(lo) * d + m;
    y[j + 16] = static_cast<float>(hi) * d + m;
  }
}

void q8_0(const u8* b, float* y) {
  const float d = half_at(b);
  for (int j = 0; j < 32; ++j) y[j] = static_cast<float>(static_cast<std::int8_t>(b[2 + j])) * d;
}

void iq4_nl(const u8* b, float* y) {
  const float d = half_at(b);
  const u8* qs = b + 2;
  for (int j = 0; j < 16; ++j) {
    y[j] = d * static_cast<float>(kIq4nlValues[qs[j] & 0x0F]);
    y[j + 16] = d * static_cast<float>(kIq4nlValues[qs[j] >> 4]);
  }
}

// IQ4_XS: d, u16 high scale bits, 4 bytes of low scale nibbles, then 8 blocks
// of 32 as IQ4_NL's codes, each scaled by d * (its 6-bit scale - 32).
void iq4_xs(const u8* b, float* y) {
  const float d = half_at(b);
  std::uint16_t high;
  std::memcpy(&high, b + 2, 2);
  const u8* low = b + 4;
  const u8* qs = b + 8;
  for (int ib = 0; ib < 8; ++ib, qs += 16, y += 32) {
    const int ls = ((low[ib / 2] >> (4 * (ib % 2))) & 0x0F) | (((high >> (2 * ib)) & 3) << 4);
    const float dl = d * static_cast<float>(ls - 32);
    for (int j = 0; j < 16; ++j) {
      y[j] = dl * static_cast<float>(kIq4nlValues[qs[j] & 0x0F]);
      y[j + 16] = dl * static_cast<float>(kIq4nlValues[qs[j] >> 4]);
    }
  }
}

// Q2_K: scales[16] (low nibble scale, high nibble min), qs[64], d, dmin.
// Per 128-element half: 4 shifts x 2 groups of 16, 2-bit codes.
void q2_k(const u8* b, float* y) {
  const u8* scales = b;
  const u8* q = b + 16;
  const float d = half_at(b + 80), dmin = half_at(b + 82);
  int is = 0;
  for (int half = 0; half < 2; ++half, q += 32)
    for (int shift = 0; shift < 8; shift += 2)
      for (int g = 0; g < 2; ++g) {
        const u8 sc = scales[is++];
        const float dl = d * static_cast<float>(sc & 0x0F), ml = dmin * static_cast<float>(sc >> 4);
        for (int l = 0; l < 16; ++l) *y++ = dl * static_cast<float>((q[l + 16 * g] >> shift) & 3) - ml;
      }
}

// Q3_K: hmask[32], qs[64], scales[12] (sixteen 6-bit signed scales, offset 32), d.
void q3_k(const u8* b, float* y) {
  const u8* hm = b;
  const u8* q = b + 32;
  const u8* s = b + 96;
  const float d = half_at(b + 108);
  // Scale j: low 4 bits from s[j] (j < 8: low nibble, else s[j-8] high nibble),
  // high 2 bits from s[8 + j % 4] at bit offset 2 * (j / 4).
  int scales[16];
  for (int j = 0; j < 16; ++j) {
    const int lo = j < 8 ? (s[j] & 0x0F) : (s[j - 8] >> 4);
    const int hi = (s[8 + j % 4] >> (2 * (j / 4))) & 3;
    scales[j] = (lo | (hi << 4)) - 32;
  }
  int is = 0;
  u8 m = 1;
  for (int half = 0; half < 2; ++half, q += 32)
    for (int shift = 0; shift < 8; shift += 2, m = static_cast<u8>(m << 1))
      for (int g = 0; g < 2; ++g) {
        const float dl = d * static_cast<float>(scales[is++]);
        for (int l = 0; l < 16; ++l) {
          const int idx = l + 16 * g;
          const int code = ((q[idx] >> shift) & 3) - ((hm[idx] & m) ? 0 : 4);
          *y++ = dl * static_cast<float>(code);
        }
      }
}

// Scale and offset of the two sub-blocks of chunk c (formats.md 3.8): y = d*sc*q - dmin*m.
struct ChunkScales {
  float d0, m0, d1, m1;
};
inline ChunkScales chunk_scales(int c, float d, float dmin, const u8* s) {
  int sc0, mn0, sc1, mn1;
  ggml_k4_scale_min(2 * c, s, sc0, mn0);
  ggml_k4_scale_min(2 * c + 1, s, sc1, mn1);
  return {d * static_cast<float>(sc0), dmin * static_cast<float>(mn0), d * static_cast<float>(sc1),
          dmin * static_cast<float>(mn1)};
}

void q4_k(const u8* b, float* y) {
  const float d = half_at(b), dmin = half_at(b + 2);
  const u8* qs = b + 16;
  for (int c = 0; c < 4; ++c) {
    const ChunkScales k = chunk_scales(c, d, dmin, b + 4);
    for (int l = 0; l < 32; ++l) y[64 * c + l] = k.d0 * static_cast<float>(qs[32 * c + l] & 0x0F) - k.m0;
    for (int l = 0; l < 32; ++l) y[64 * c + 32 + l] = k.d1 * static_cast<float>(qs[32 * c + l] >> 4) - k.m1;
  }
}

void q5_k(const u8* b, float* y) {
  const float d = half_at(b), dmin = half_at(b + 2);
  const u8* qh = b + 16;
  const u8* qs = b + 48;
  for (int c = 0; c < 4; ++c) {
    const ChunkScales k = chunk_scales(c, d, dmin, b + 4);
    for (int l = 0; l < 32; ++l) {
      const int lo = (qs[32 * c + l] & 0x0F) + (((qh[l] >> (2 * c)) & 1) << 4);
      const int hi = (qs[32 * c + l] >> 4) + (((qh[l] >> (2 * c + 1)) & 1) << 4);
      y[64 * c + l] = k.d0 * static_cast<float>(lo) - k.m0;
      y[64 * c + 32 + l] = k.d1 * static_cast<float>(hi) - k.m1;
    }
  }
}

// Q6_K: ql[128], qh[64], scales[16] (i8), d last (formats.md 3.10).
void q6_k(const u8* b, float* y) {
  const u8* ql = b;
  const u8* qh = b + 128;
  const auto* sc = reinterpret_cast<const std::int8_t*>(b + 192);
  const float d = half_at(b + 208);
  for (int h = 0; h < 2; ++h) {
    const u8* l8 = ql + 64 * h;
    const u8* h8 = qh + 32 * h;
    for (int l = 0; l < 32; ++l) {
      const int q[4] = {
          ((l8[l] & 0x0F) | (((h8[l] >> 0) & 3) << 4)) - 32,
          ((l8[l + 32] & 0x0F) | (((h8[l] >> 2) & 3) << 4)) - 32,
          ((l8[l] >> 4) | (((h8[l] >> 4) & 3) << 4)) - 32,
          ((l8[l + 32] >> 4) | (((h8[l] >> 6) & 3) << 4)) - 32,
      };
      for (int k = 0; k < 4; ++k) {
        const int e = 128 * h + l + 32 * k;
        y[e] = d * static_cast<float>(sc[e / 16]) * static_cast<float>(q[k]);
      }
    }
  }
}

}  // namespace

bool dequantize_ggml_blocks(DType t, const std::byte* src, std::size_t blocks, float* dst) {
  void (*fn)(const u8*, float*) = nullptr;
  switch (t) {
    case DType::Q4_0: fn = q4_0; break;
    case DType::Q4_1: fn = q4_1; break;
    case DType::Q5_0: fn = q5_0; break;
    case DType::Q5_1: fn = q5_1; break;
    case DType::Q8_0: fn = q8_0; break;
    case DType::IQ4_NL: fn = iq4_nl; break;
    case DType::IQ4_XS: fn = iq4_xs; break;
    case DType::IQ3_XXS: fn = iq::dequantize_iq3_xxs; break;
    case DType::IQ3_S: fn = iq::dequantize_iq3_s; break;
    case DType::IQ2_XXS: fn = iq::dequantize_iq2_xxs; break;
    case DType::IQ2_XS: fn = iq::dequantize_iq2_xs; break;
    case DType::IQ2_S: fn = iq::dequantize_iq2_s; break;
    case DType::IQ1_S: fn = iq::dequantize_iq1_s; break;
    case DType::IQ1_M: fn = iq::dequantize_iq1_m; break;
    case DType::Q2_K: fn = q2_k; break;
    case DType::Q3_K: fn = q3_k; break;
    case DType::Q4_K: fn = q4_k; break;
    case DType::Q5_K: fn = q5_k; break;
    case DType::Q6_K: fn = q6_k; break;
    default: return false;
  }
  const std::size_t in = dtype_block_bytes(t), out = dtype_block_elems(t);
  const auto* p = reinterpret_cast<const u8*>(src);
  for (std::size_t i = 0; i < blocks; ++i) fn(p + i * in, dst + i * out);
  return true;
}

void ggml_k4_scale_min(int j, const std::uint8_t* s, int& sc, int& m) {
  if (j < 4) {
    sc = s[j] & 63;
    m = s[j + 4] & 63;
  } else {
    sc = (s[j + 4] & 0x0F) | ((s[j - 4] >> 6) << 4);
    m = (s[j + 4] >> 4) | ((s[j] >> 6) << 4);
  }
}

}  // namespace qs
