#pragma once
#include <string>

namespace qs::cli {

struct ExportOptions {
  std::string path;            // source model
  std::string out;             // output file (GGUF) or directory (GPTQ)
  std::string format = "gguf";  // "gguf", "gptq", "hdf5" or "fakequant"
  std::string dtype = "f16";     // fakequant: f16, bf16 or f32
  std::string ftype = "q8_0";  // GGUF: llama.cpp file type
  bool pure = false;           // GGUF: llama-quantize --pure (no per-tensor rules)
  std::string imatrix;         // GGUF: llama-quantize --imatrix (legacy .dat or GGUF importance matrix)
  std::string plan;            // GGUF: a plan.json instead of a file type
  std::string calib;           // calibration text: GGUF for the plan's method gptq; GPTQ: GPTQ instead of RTN
  int calib_tokens = 4096;     // at most this many calibration tokens, in chunks of 256
  std::string calib_file;      // fakequant: a calibration file (quantscope-cli calibrate) for gptq/awq/outliers
  int bits = 4;                // GPTQ
  int group = 128;             // GPTQ; -1 per output channel
  bool asym = false;           // GPTQ
  bool act_order = false;      // GPTQ with calibration
  bool static_groups = false;  // GPTQ with act_order
  bool calib_tokens_given = false;  // --calib-tokens was given (it goes with --calib text only)
  bool gptq_flags_given = false;  // any of --bits/--group/--asym/--act-order/--static-groups was given
  bool json = false;
};

// GGUF: writes llama-quantize's per-tensor types for the file type and lists
// each tensor's type and the rule or fallback that chose it. GPTQ: writes the
// packed safetensors checkpoint directory and lists each module's SQNR.
int run_export(const ExportOptions& opt);

}  // namespace qs::cli
