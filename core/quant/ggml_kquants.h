#pragma once
// The ggml reference quantizers for the K-quant super-blocks Q2_K, Q3_K, Q4_K,
// Q5_K and Q6_K (docs/formats.md 3.6-3.10), without an importance matrix, as
// llama-quantize runs them: scale search per sub-block, 4-bit (Q2_K), 6-bit
// (Q3_K/Q4_K/Q5_K) or 8-bit (Q6_K) sub-block scales, then a re-quantization
// with the stored scales. (With one: ggml_imatrix_quants.h.)
#include <cstddef>
#include <cstdint>

namespace qs::kquant {

// One 256-value super-block into its 84 / 110 / 144 / 176 / 210 bytes.
void quantize_q2_k(const float* x, std::uint8_t* out);
void quantize_q3_k(const float* x, std::uint8_t* out);
void quantize_q4_k(const float* x, std::uint8_t* out);
void quantize_q5_k(const float* x, std::uint8_t* out);
void quantize_q6_k(const float* x, std::uint8_t* out);

// Tests: run the portable (SSE2) build of the Q4_K/Q5_K scale search even
// where the CPU has AVX2, to check that both write the same bytes.
void use_portable_kquants(bool portable);

}  // namespace qs::kquant
