#include "quant/llama_ftype.h"

#include <algorithm>
#include <cctype>
#include <charconv>

namespace qs {
namespace {

struct FtypeRow {
  LlamaFtype ftype;
  std::string_view name;
  DType base;
};

// The file types llama-quantize offers that we can write (base types we can
// quantize, or that fall back to ones we can, as on small models).
constexpr FtypeRow kFtypes[] = {
    {LlamaFtype::F32, "F32", DType::F32},       {LlamaFtype::F16, "F16", DType::F16},
    {LlamaFtype::BF16, "BF16", DType::BF16},    {LlamaFtype::Q8_0, "Q8_0", DType::Q8_0},
    {LlamaFtype::Q4_0, "Q4_0", DType::Q4_0},    {LlamaFtype::Q4_1, "Q4_1", DType::Q4_1},
    {LlamaFtype::Q5_0, "Q5_0", DType::Q5_0},    {LlamaFtype::Q5_1, "Q5_1", DType::Q5_1},
    {LlamaFtype::Q2_K, "Q2_K", DType::Q2_K},    {LlamaFtype::Q3_K_S, "Q3_K_S", DType::Q3_K},
    {LlamaFtype::Q3_K_M, "Q3_K_M", DType::Q3_K}, {LlamaFtype::Q3_K_L, "Q3_K_L", DType::Q3_K},
    {LlamaFtype::Q4_K_S, "Q4_K_S", DType::Q4_K}, {LlamaFtype::Q4_K_M, "Q4_K_M", DType::Q4_K},
    {LlamaFtype::Q5_K_S, "Q5_K_S", DType::Q5_K}, {LlamaFtype::Q5_K_M, "Q5_K_M", DType::Q5_K},
    {LlamaFtype::Q6_K, "Q6_K", DType::Q6_K},    {LlamaFtype::IQ4_NL, "IQ4_NL", DType::IQ4_NL},
    {LlamaFtype::IQ4_XS, "IQ4_XS", DType::IQ4_XS}, {LlamaFtype::IQ3_XXS, "IQ3_XXS", DType::IQ3_XXS},
    {LlamaFtype::IQ3_S, "IQ3_S", DType::IQ3_S},    {LlamaFtype::IQ3_M, "IQ3_M", DType::IQ3_S},
    {LlamaFtype::IQ2_XXS, "IQ2_XXS", DType::IQ2_XXS}, {LlamaFtype::IQ2_XS, "IQ2_XS", DType::IQ2_XS},
    // llama.cpp gives its IQ2_S file type IQ2_XS tensors (its IQ2_M is the one of IQ2_S).
    {LlamaFtype::IQ2_S, "IQ2_S", DType::IQ2_XS},   {LlamaFtype::IQ2_M, "IQ2_M", DType::IQ2_S},
    {LlamaFtype::IQ1_S, "IQ1_S", DType::IQ1_S},    {LlamaFtype::IQ1_M, "IQ1_M", DType::IQ1_M},
};

bool is_quantized(DType t) { return dtype_is_block_quantized(t); }

bool contains(std::string_view s, std::string_view part) { return s.find(part) != std::string_view::npos; }

int block_number(std::string_view name) {
  if (name.substr(0, 4) != "blk.") return -1;
  int n = -1;
  const auto* begin = name.data() + 4;
  const auto r = std::from_chars(begin, name.data() + name.size(), n);
  return r.ec == std::errc{} && r.ptr < name.data() + name.size() && *r.ptr == '.' ? n : -1;
}

// ggml_n_dims: trailing ggml dimensions of 1 do not count (our leading ones).
int ggml_n_dims(const std::vector<std::int64_t>& shape) {
  std::size_t i = 0;
  while (i + 1 < shape.size() && shape[i] == 1) ++i;
  return static_cast<int>(shape.size() - i);
}

// llama-quantize's test for "is this a weight matrix to quantize".
bool quantizable(const FtypeTensor& t) {
  const std::string_view n = t.name;
  return n.size() >= 6 && n.substr(n.size() - 6) == "weight" && ggml_n_dims(t.shape) >= 2 &&
         !contains(n, "_norm.weight") && !contains(n, "ffn_gate_inp.weight") && n != "position_embd.weight" &&
         n != "token_types.weight" && !contains(n, "ssm_conv1d.weight") && !contains(n, "attn_rel_b.weight");
}

bool use_more_bits(int i_layer, int n_layers) {
  return i_layer < n_layers / 8 || i_layer >= 7 * n_layers / 8 || (i_layer - n_layers / 8) % 3 == 2;
}

std::string type_name(DType t) { return std::string(dtype_name(t)); }

}  // namespace

std::optional<LlamaFtype> parse_llama_ftype(std::string_view name) {
  std::string upper(name);
  for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  // llama-quantize's aliases: the bare K names mean the _M mix.
  if (upper == "Q3_K") upper = "Q3_K_M";
  if (upper == "Q4_K") upper = "Q4_K_M";
  if (upper == "Q5_K") upper = "Q5_K_M";
  for (const auto& r : kFtypes)
    if (r.name == upper) return r.ftype;
  return std::nullopt;
}

std::string_view llama_ftype_name(LlamaFtype f) {
  for (const auto& r : kFtypes)
    if (r.ftype == f) return r.name;
  return "?";
}

std::string llama_ftype_names() {
  std::string out;
  for (const auto& r : kFtypes) {
    if (!out.empty()) out.append(", ");
    out.append(r.name);
  }
  return out;
}

DType llama_ftype_base_type(LlamaFtype f) {
  for (const auto& r : kFtypes)
    if (r.ftype == f) return r.base;
  return DType::F32;
}

DType llama_fallback_type(DType wanted, std::int64_t nx) {
  if (nx % dtype_block_elems(wanted) == 0) return wanted;
  DType type = DType::F16;  // llama-quantize refuses where it has no fallback; we keep the weights in F16
  switch (wanted) {
    case DType::Q2_K: case DType::Q3_K: case DType::IQ4_XS: type = DType::IQ4_NL; break;
    case DType::Q4_K: type = DType::Q5_0; break;
    case DType::Q5_K: type = DType::Q5_1; break;
    case DType::Q6_K: type = DType::Q8_0; break;
    default: break;
  }
  return nx % dtype_block_elems(type) == 0 ? type : DType::F16;
}

bool llama_quantize_order(std::string_view a, std::string_view b) {
  const int la = block_number(a), lb = block_number(b);
  if (la != lb) return la < lb;
  return a < b;
}

std::vector<FtypeChoice> llama_ftype_choices(const std::vector<FtypeTensor>& tensors, LlamaFtype ftype,
                                             const FtypeModelFacts& facts, bool pure) {
  using F = LlamaFtype;
  const DType base = llama_ftype_base_type(ftype);
  int n_attention_wv = 0, i_attention_wv = 0, i_ffn_down = 0;
  bool has_output = false;
  for (const auto& t : tensors) {
    if (contains(t.name, "attn_v.weight") || contains(t.name, "attn_qkv.weight") || contains(t.name, "attn_kv_b.weight"))
      ++n_attention_wv;
    if (t.name == "output.weight") has_output = true;
  }
  const int n_ffn_down = static_cast<int>(facts.num_layers);
  const std::int64_t n_gqa = facts.num_kv_heads > 0 ? facts.num_heads / facts.num_kv_heads : 1;
  // llama.cpp calls a llama with 80 blocks and grouped KV heads "70B" and gives its attn_v more bits.
  const bool is_70b = facts.num_layers == 80 && facts.num_heads != facts.num_kv_heads;
  const bool lowest = ftype == F::IQ2_XXS || ftype == F::IQ2_XS || ftype == F::IQ2_S || ftype == F::IQ2_M ||
                      ftype == F::IQ1_S || ftype == F::IQ1_M;

  std::vector<FtypeChoice> out;
  out.reserve(tensors.size());
  for (const auto& t : tensors) {
    FtypeChoice c;
    c.type = t.dtype;
    if (!quantizable(t)) {
      out.push_back(c);
      continue;
    }
    const std::string_view name = t.name;
    const std::int64_t nx = t.shape.back();  // ggml ne[0]: the row length
    DType type = base;
    if (is_quantized(base) && !pure) {
      if (name == "output.weight" || (!has_output && name == "token_embd.weight")) {
        if (nx % dtype_block_elems(type) != 0) type = DType::Q8_0;
        else if (lowest) type = DType::Q5_K;
        else if (type != DType::Q8_0) type = DType::Q6_K;
      } else if (name == "token_embd.weight") {
        // Only the IQ1/IQ2/IQ3 file types change it.
        if (ftype == F::IQ2_XXS || ftype == F::IQ2_XS || ftype == F::IQ1_S || ftype == F::IQ1_M) type = DType::Q2_K;
        else if (ftype == F::IQ2_S || ftype == F::IQ2_M || ftype == F::IQ3_XXS) type = DType::IQ3_S;
      } else if (lowest) {
        // The 2-bit i-quant file types have rules of their own (the others' do not apply).
        const bool s_or_m = ftype == F::IQ2_S || ftype == F::IQ2_M;
        if (contains(name, "attn_v.weight") || contains(name, "attn_qkv.weight") || contains(name, "attn_kv_b.weight")) {
          type = n_gqa >= 4 ? DType::Q4_K : s_or_m ? DType::IQ3_S : DType::Q2_K;
          ++i_attention_wv;
        } else if (contains(name, "ffn_down")) {
          if (i_ffn_down < n_ffn_down / 8) type = s_or_m ? DType::IQ3_S : DType::Q2_K;
          ++i_ffn_down;
        } else if (contains(name, "attn_output.weight")) {
          if (s_or_m) type = DType::IQ3_S;
          else if (ftype == F::IQ1_S || ftype == F::IQ1_M) type = DType::IQ2_XXS;
        }
      } else if (contains(name, "attn_v.weight")) {
        if (ftype == F::Q2_K) type = n_gqa >= 4 ? DType::Q4_K : DType::Q3_K;
        else if (ftype == F::IQ3_XXS) type = n_gqa >= 4 ? DType::Q4_K : !facts.has_imatrix ? DType::IQ3_S : DType::IQ3_XXS;
        else if (ftype == F::IQ3_S && n_gqa >= 4) type = DType::Q4_K;
        else if (ftype == F::IQ3_M) type = DType::Q4_K;
        else if (ftype == F::Q3_K_M) type = i_attention_wv < 2 ? DType::Q5_K : DType::Q4_K;
        else if (ftype == F::Q3_K_L) type = DType::Q5_K;
        else if ((ftype == F::IQ4_NL || ftype == F::IQ4_XS) && n_gqa >= 4) type = DType::Q5_K;
        else if ((ftype == F::Q4_K_M || ftype == F::Q5_K_M) && use_more_bits(i_attention_wv, n_attention_wv)) type = DType::Q6_K;
        else if (ftype == F::Q4_K_S && i_attention_wv < 4) type = DType::Q5_K;
        if (is_70b && (type == DType::Q3_K || type == DType::Q4_K)) type = DType::Q5_K;
        ++i_attention_wv;
      } else if (contains(name, "ffn_down")) {
        const int i = i_ffn_down, n = n_ffn_down;
        if (ftype == F::Q2_K) type = DType::Q3_K;
        else if (ftype == F::IQ3_XXS && !facts.has_imatrix) type = i < n / 8 ? DType::Q4_K : DType::Q3_K;
        else if (ftype == F::Q3_K_M) type = i < n / 16 ? DType::Q5_K : DType::Q4_K;
        else if (ftype == F::IQ3_M && i < n / 8) type = DType::Q4_K;
        else if (ftype == F::Q3_K_L) type = DType::Q5_K;
        else if (ftype == F::Q4_K_M) { if (use_more_bits(i, n)) type = DType::Q6_K; }
        else if (i < n / 8 && (ftype == F::IQ4_NL || ftype == F::IQ4_XS) && !facts.has_imatrix) type = DType::Q5_K;
        else if (ftype == F::Q5_K_M && use_more_bits(i, n)) type = DType::Q6_K;
        else if (ftype == F::Q4_K_S && i < n / 8) type = DType::Q5_K;
        // With an importance matrix llama.cpp guards the first ffn_down layers of Q4_0/Q5_0 with the _1 types.
        else if ((ftype == F::Q4_0 || ftype == F::Q5_0) && facts.has_imatrix && i < n / 8)
          type = ftype == F::Q4_0 ? DType::Q4_1 : DType::Q5_1;
        ++i_ffn_down;
      } else if (contains(name, "attn_k.weight") || contains(name, "attn_q.weight")) {
        if (ftype == F::IQ3_XXS) type = DType::IQ2_S;
      } else if (contains(name, "attn_output.weight")) {
        if (ftype == F::Q2_K) type = DType::Q3_K;
        else if (ftype == F::IQ3_XXS) type = DType::IQ3_S;
        else if (ftype == F::Q3_K_M || ftype == F::IQ3_M) type = DType::Q4_K;
        else if (ftype == F::Q3_K_L) type = DType::Q5_K;
      } else if (contains(name, "attn_qkv.weight")) {
        if (ftype == F::Q3_K_M || ftype == F::Q3_K_L || ftype == F::IQ3_M) type = DType::Q4_K;
        else if (ftype == F::Q4_K_M) type = DType::Q5_K;
        else if (ftype == F::Q5_K_M) type = DType::Q6_K;
      }
      if (type != base) c.note = "rule: " + type_name(type);
    }
    if (is_quantized(base)) {
      if (nx % dtype_block_elems(type) != 0) {
        const DType wanted = type;
        type = llama_fallback_type(type, nx);
        c.note = "fallback: rows of " + std::to_string(nx) + " are not whole " + type_name(wanted) + " blocks of " +
                 std::to_string(dtype_block_elems(wanted)) + ", written as " + type_name(type);
      }
    }
    c.type = type;
    c.converted = type != t.dtype;
    out.push_back(std::move(c));
  }
  return out;
}

}  // namespace qs
