// quantscope-cli's command line: every subcommand's options and its dispatch.
// In a library (not main.cpp) so that the damaged-input corpus can run the
// very same command lines in a forked child without an exec per case.
#include "cli_main.h"

#include <CLI/CLI.hpp>
#include <cstdio>
#include <new>

#include "demo/demo_model.h"
#include "inspect_command.h"
#include "export_command.h"
#include "measure_command.h"
#include "plan_command.h"
#include "perplexity_command.h"
#include "calibrate_command.h"
#include "compare_command.h"
#include "eval_command.h"
#include "model/dtype.h"
#include "quant/llama_ftype.h"

namespace qs::cli {
namespace {

// `inspect`, `measure` and `plan` take a PATH or --demo: the demo model's
// folder fills `path` (generated on first use). 0, or the exit code when refused.
int path_or_demo(const char* subcommand, bool demo, std::string& path) {
  if (demo == !path.empty()) {
    std::fprintf(stderr, "quantscope-cli %s: give a PATH or --demo (one of them)\n", subcommand);
    return 2;
  }
  if (!demo) return 0;
  auto dir = qs::ensure_demo_model();
  if (!dir) {
    std::fprintf(stderr, "quantscope-cli: demo model: %s\n", dir.error().message.c_str());
    return 1;
  }
  path = *dir;
  return 0;
}

}  // namespace

int cli_main(int argc, char** argv) {
  CLI::App app{"QuantScope: inspect and quantize neural-network checkpoints", "quantscope-cli"};
  app.set_version_flag("--version", "quantscope-cli 0.1.0");
  app.require_subcommand(1);

  qs::cli::InspectOptions inspect;
  bool inspect_demo = false;
  bool no_stats = false;
  auto* ins = app.add_subcommand("inspect", "Print the architecture and a table of layers with weight statistics");
  ins->add_option("path", inspect.path, "HF model directory, .safetensors file or model.safetensors.index.json");
  ins->add_flag("--demo", inspect_demo, "Inspect the built-in demo model (generated on first use)");
  ins->add_flag("--json", inspect.json, "Machine-readable output");
  ins->add_flag("--no-stats", no_stats, "Headers only: do not read the weights");
  ins->add_option("--outlier-k", inspect.outlier_k, "Outlier rule: channel abs-max > k x median abs-max")
      ->check(CLI::PositiveNumber);
  ins->add_option("--backend", inspect.backend, "Compute backend: auto, cpu or cuda (default: $QS_BACKEND or auto)")
      ->check(CLI::IsMember({"auto", "cpu", "cuda"}));

  qs::cli::MeasureOptions measure;
  bool measure_demo = false;
  std::string measure_formats = "q8_0,q4_k,int4-g128";
  auto* meas = app.add_subcommand("measure", "Quantize every linear layer (RTN / ggml reference quantizers) and report "
                                             "bits per weight, SQNR and max error");
  meas->add_option("path", measure.path, "Model to measure");
  meas->add_flag("--demo", measure_demo, "Measure the built-in demo model");
  meas->add_option("-f,--formats", measure_formats,
                   "Comma-separated formats: q8_0 q4_0 q4_1 q5_0 q5_1 q4_k q5_k q6_k iq4_nl, nf4 nf4-dq, fp8-e4m3[-ch] "
                   "fp8-e5m2[-ch], mxfp4 nvfp4, f16 bf16, int<bits>[-g<group>|-ch|-tensor][-sym]")
      ->capture_default_str();
  meas->add_flag("--json", measure.json, "Machine-readable output");
  std::string measure_plan;
  meas->add_option("--plan", measure_plan, "Measure each layer with the format a plan (plan.json) gives it");
  std::string measure_calib;
  meas->add_option("--calib-file", measure_calib, "With --plan: add each layer's relative output error on the Hessians "
                                                  "of this calibration file (quantscope-cli calibrate)");

  qs::cli::ExportOptions exporting;
  auto* exp = app.add_subcommand("export", "Write a quantized checkpoint. GGUF: llama.cpp's per-tensor types for a file "
                                           "type (byte-identical to llama-quantize), from a GGUF or a llama/mistral HF "
                                           "directory with a SentencePiece tokenizer.model. GPTQ: the packed safetensors "
                                           "directory transformers/vLLM load, from an HF model");
  exp->add_option("path", exporting.path, "Source model (.gguf or HF directory)")->required();
  exp->add_option("-o,--out", exporting.out, "Output .gguf file or GPTQ directory (written atomically; never the source)")
      ->required();
  exp->add_option("-f,--format", exporting.format,
                  "gguf, gptq, hdf5 (QuantScope's own checkpoint, docs/hdf5-checkpoint.md) or fakequant (dequantized "
                  "weights under the original names)")
      ->check(CLI::IsMember({"gguf", "gptq", "hdf5", "fakequant"}))
      ->capture_default_str();
  exp->add_option("--dtype", exporting.dtype, "fakequant: f16, bf16 or f32")->check(CLI::IsMember({"f16", "bf16", "f32"}))->capture_default_str();
  exp->add_option("-t,--type", exporting.ftype, "GGUF file type: " + qs::llama_ftype_names())->capture_default_str();
  exp->add_flag("--pure", exporting.pure, "GGUF: every weight matrix in the file type's base type, without llama.cpp's "
                                          "per-tensor rules (llama-quantize --pure)");
  exp->add_option("--imatrix", exporting.imatrix, "GGUF: an importance matrix (llama-imatrix's imatrix.dat or GGUF, or "
                                                  "quantscope-cli calibrate --imatrix) that weights each quantizer's "
                                                  "scale search, as llama-quantize --imatrix (with -t, not --plan)");
  exp->add_option("--plan", exporting.plan, "GGUF: per-layer types from a plan.json (ggml formats) instead of a file type; "
                                            "fakequant, hdf5: the plan to apply; gptq: the grid and method of the plan "
                                            "(one for the blocks' layers; its kept layers stay F16)");
  exp->add_option("--calib", exporting.calib, "Calibration text, run as `calibrate --consecutive --ctx 256` (GGUF, "
                                              "fakequant: the plan's gptq layers; gptq: GPTQ instead of RTN)");
  exp->add_option("--calib-file", exporting.calib_file, "A calibration file (quantscope-cli calibrate), the one the plan "
                                                        "was measured with: the plan's gptq and awq layers, the ranking "
                                                        "of clip/outliers; gptq: GPTQ instead of RTN");
  CLI::Option* calib_tokens =
      exp->add_option("--calib-tokens", exporting.calib_tokens, "With --calib: calibration tokens at most (chunks of 256)")
          ->check(CLI::Range(256, 1 << 24))
          ->capture_default_str();
  std::vector<CLI::Option*> gptq_grid_flags = {
      exp->add_option("--bits", exporting.bits, "GPTQ bits: 2, 3, 4 or 8")->check(CLI::IsMember({2, 3, 4, 8}))->capture_default_str(),
      exp->add_option("--group", exporting.group, "GPTQ group size (-1: per output channel)")->capture_default_str(),
      exp->add_flag("--asym", exporting.asym, "GPTQ: asymmetric grid with zero-points (written as gptq_v2)"),
      exp->add_flag("--act-order", exporting.act_order, "GPTQ with --calib: columns by descending Hessian diagonal (desc_act)"),
      exp->add_flag("--static-groups", exporting.static_groups, "GPTQ with --act-order: groups fixed on the original column order")};
  exp->callback([&exporting, gptq_grid_flags, calib_tokens] {
    for (const CLI::Option* o : gptq_grid_flags) exporting.gptq_flags_given = exporting.gptq_flags_given || o->count() > 0;
    exporting.calib_tokens_given = calib_tokens->count() > 0;
  });
  exp->add_flag("--json", exporting.json, "Machine-readable output");

  qs::cli::PlanOptions planning;
  bool plan_demo = false;
  auto* pl = app.add_subcommand("plan", "Write a quantization plan (plan.json) from a preset, or allocated to a "
                                        "bits/weight budget by measured error");
  pl->add_option("path", planning.path, "Model");
  pl->add_flag("--demo", plan_demo, "Plan for the built-in demo model");
  pl->add_option("--preset", planning.preset, "Preset: q8_0, q6_k, q4_k, ..., q4_k_m, q5_k_m, q3_k_m, gptq-w4g128, nf4, "
                                              "w8a8-smoothquant");
  pl->add_option("--budget", planning.budget, "Target bits per weight over every tensor of the GGUF file the plan "
                                              "exports to (docs/plan-format.md)")->check(CLI::PositiveNumber);
  pl->add_option("--candidates", planning.candidates, "What the budget allocation may choose from: formats, or formats "
                                                      "with a method (q4_0+clip, int4-g128+gptq, q4_k+awq(alpha_points=10))")
      ->capture_default_str();
  pl->add_option("--target", planning.target, "The file the plan's bytes and bits/weight are of: gguf (the budget is "
                                              "over it) or gptq (a preset's checkpoint); hdf5 and fakequant not yet")
      ->check(CLI::IsMember({"gguf", "gptq", "hdf5", "fakequant"}))
      ->capture_default_str();
  pl->add_option("--calib-file", planning.calib_file, "Calibration file (quantscope-cli calibrate): the allocation "
                                                      "minimises the summed relative output error, and gptq/awq "
                                                      "candidates use its statistics");
  pl->add_option("-o,--out", planning.out, "Write the plan here (atomically)");
  pl->add_flag("--json", planning.json, "Machine-readable output");

  qs::cli::PerplexityOptions ppl;
  auto* pp = app.add_subcommand("perplexity", "Perplexity of a llama-family model (HF directory or GGUF) on a text, with "
                                              "llama-perplexity's protocol: chunks of --ctx tokens, BOS first, the second "
                                              "half of each chunk scored");
  pp->add_option("path", ppl.path, "Model: HF directory with tokenizer.model, or .gguf")->required();
  pp->add_option("--text", ppl.text, "Evaluation text file (e.g. ../shared/models/stories260K/eval/tiny_stories_eval.txt)")
      ->required();
  pp->add_option("--ctx", ppl.ctx, "Tokens per chunk")->check(CLI::Range(4, 1 << 20))->capture_default_str();
  pp->add_option("--chunks", ppl.chunks, "Score at most this many chunks (-1: all)")->capture_default_str();
  pp->add_flag("--json", ppl.json, "Machine-readable output");
  pp->add_option("--backend", ppl.backend, "Forward pass: auto, cpu or cuda (default: $QS_BACKEND or auto; an unusable "
                                           "device falls back to the CPU with the reason on stderr)");

  qs::cli::CalibrateOptions calib;
  auto* cal = app.add_subcommand("calibrate", "Run a llama-family model over calibration text and save each linear-layer "
                                              "input's statistics (channel abs-max, mean |x|, histogram, channel x token "
                                              "map, Hessian) to an HDF5 calibration file (docs/calibration-file.md)");
  cal->add_option("path", calib.path, "Model: HF directory with a tokenizer, or .gguf")->required();
  cal->add_option("--text", calib.texts, "Calibration text file (repeat for several)")->required();
  cal->add_option("--seqs", calib.sequences, "Sequences to run")->check(CLI::Range(1, 1 << 20))->capture_default_str();
  cal->add_option("--ctx", calib.ctx, "Tokens per sequence")->check(CLI::Range(2, 1 << 20))->capture_default_str();
  cal->add_option("--seed", calib.seed, "Seed of the sequence draw (uniform window starts)")->capture_default_str();
  cal->add_flag("--consecutive", calib.consecutive, "Consecutive windows of --ctx tokens from the text's start (at most "
                                                    "--seqs) instead of drawn ones: export --calib T --calib-tokens N "
                                                    "runs this request with --ctx 256 --seqs N/256");
  cal->add_option("--heatmap-tokens", calib.heatmap_tokens, "Tokens kept for the channel x token map")
      ->check(CLI::Range(0, 1 << 16))->capture_default_str();
  cal->add_flag("--no-hessians", calib.no_hessians, "Do not accumulate the Hessians (4 x cols^2 bytes per input)");
  cal->add_option("-o,--out", calib.out, "Calibration file (default: <model file>.qscalib.h5, or quantscope.qscalib.h5 "
                                         "inside a model directory)");
  cal->add_option("--imatrix", calib.imatrix, "Write an importance matrix (llama-imatrix's imatrix.dat layout: each "
                                             "weight's mean x^2 per input column) that export --imatrix and "
                                             "llama-quantize --imatrix read. The text runs in consecutive chunks of "
                                             "--ctx tokens (at most --seqs), as llama-imatrix -c reads it; without -o, "
                                             "no calibration file is written");
  cal->add_flag("--json", calib.json, "Machine-readable output");
  cal->add_option("--backend", calib.backend, "Forward pass: auto, cpu or cuda (default: $QS_BACKEND or auto; an unusable "
                                              "device falls back to the CPU with the reason on stderr)");

  qs::cli::EvalOptions eval;
  auto* ev = app.add_subcommand("eval", "Perplexity of a model on a text (llama-perplexity's protocol) and, with --plan, "
                                        "of the model fake-quantized by the plan with the mean KL divergence from the "
                                        "unquantized model");
  ev->add_option("path", eval.path, "Model: HF directory with a tokenizer, or .gguf")->required();
  ev->add_option("--plan", eval.plan, "Plan (plan.json) to apply in memory");
  ev->add_option("--calib-file", eval.calib_file, "Calibration file (from calibrate) for the plan's gptq/awq layers");
  ev->add_option("--text", eval.text, "Evaluation text file")->required();
  ev->add_option("--ctx", eval.ctx, "Tokens per chunk")->check(CLI::Range(4, 1 << 20))->capture_default_str();
  ev->add_option("--chunks", eval.chunks, "Score at most this many chunks (-1: all)")->capture_default_str();
  ev->add_flag("--json", eval.json, "Machine-readable output");
  ev->add_option("--backend", eval.backend, "Forward pass: auto, cpu or cuda (default: $QS_BACKEND or auto; an unusable "
                                            "device falls back to the CPU with the reason on stderr)");

  qs::cli::CompareOptions comparing;
  auto* cmp = app.add_subcommand("compare", "Quantized files of one model against it on a text (llama-perplexity's "
                                            "protocol): size, bits/weight, perplexity, KL divergence and same-top-token "
                                            "rate per file, sorted by size (GGUF files of any tool, HF directories)");
  cmp->add_option("reference", comparing.reference, "The unquantized model: HF directory with a tokenizer, or .gguf")
      ->required();
  cmp->add_option("files", comparing.files, "Quantized models of it")->required();
  cmp->add_option("--text", comparing.text, "Evaluation text file")->required();
  cmp->add_option("--ctx", comparing.ctx, "Tokens per chunk")->check(CLI::Range(4, 1 << 20))->capture_default_str();
  cmp->add_option("--chunks", comparing.chunks, "Score at most this many chunks (-1: all)")->capture_default_str();
  cmp->add_flag("--json", comparing.json, "Machine-readable output");
  cmp->add_option("--backend", comparing.backend, "Forward pass: auto, cpu or cuda (default: $QS_BACKEND or auto)");

  std::string demo_out = qs::default_demo_dir();
  qs::DemoSpec demo_spec;
  std::string demo_dtype = "f16";
  auto* demo = app.add_subcommand("demo", "Write the demo model (a small llama-shaped HF directory)");
  demo->add_option("-o,--out", demo_out, "Output directory")->capture_default_str();
  demo->add_option("--seed", demo_spec.seed, "Random seed")->capture_default_str();
  demo->add_option("--dtype", demo_dtype, "Storage type")->check(CLI::IsMember({"f16", "bf16", "f32"}))->capture_default_str();
  demo->add_option("--layers", demo_spec.layers, "Transformer blocks")->check(CLI::Range(1, 256))->capture_default_str();
  demo->add_option("--hidden", demo_spec.hidden, "Hidden size")->check(CLI::Range(8, 16384))->capture_default_str();
  demo->add_option("--intermediate", demo_spec.intermediate, "MLP size")->check(CLI::Range(8, 65536))->capture_default_str();

  CLI11_PARSE(app, argc, argv);

  // Whatever a subcommand allocates beyond what its checks foresaw (each
  // reader checks the sizes a file declares against the memory budget first)
  // is an error naming its input and exit 1 (the work failed), not an abort.
  const auto input = [&]() -> const std::string& {
    return *ins ? inspect.path : *meas ? measure.path : *exp ? exporting.path : *pp ? ppl.path : *cal ? calib.path
         : *ev  ? eval.path    : *cmp  ? comparing.reference : *pl ? planning.path : demo_out;
  };
  const auto dispatch = [&]() -> int {
    if (*ins) {
      inspect.stats = !no_stats;
      if (const int refused = path_or_demo("inspect", inspect_demo, inspect.path)) return refused;
      return qs::cli::run_inspect(inspect);
    }
    if (*meas) {
      if (const int refused = path_or_demo("measure", measure_demo, measure.path)) return refused;
      for (std::size_t start = 0; start <= measure_formats.size();) {
        const std::size_t comma = std::min(measure_formats.find(',', start), measure_formats.size());
        if (comma > start) measure.formats.push_back(measure_formats.substr(start, comma - start));
        start = comma + 1;
      }
      if (!measure_plan.empty()) return qs::cli::run_measure_plan(measure.path, measure_plan, measure.json, measure_calib);
      return qs::cli::run_measure(measure);
    }
    if (*exp) return qs::cli::run_export(exporting);
    if (*pp) return qs::cli::run_perplexity(ppl);
    if (*cal) return qs::cli::run_calibrate(calib);
    if (*ev) return qs::cli::run_eval(eval);
    if (*cmp) return qs::cli::run_compare(comparing);
    if (*pl) {
      if (const int refused = path_or_demo("plan", plan_demo, planning.path)) return refused;
      return qs::cli::run_plan(planning);
    }
    if (*demo) {
      demo_spec.dtype = demo_dtype == "f16" ? qs::DType::F16 : demo_dtype == "bf16" ? qs::DType::BF16 : qs::DType::F32;
      if (auto r = qs::write_demo_model(demo_out, demo_spec); !r) {
        std::fprintf(stderr, "quantscope-cli: %s\n", r.error().message.c_str());
        return 1;
      }
      std::printf("demo model written to %s\n", demo_out.c_str());
      return 0;
    }
    return 0;
  };
  try {
    return dispatch();
  } catch (const std::bad_alloc&) {
    std::fprintf(stderr, "quantscope-cli: %s: out of memory while working on it (sizes a file declares are checked "
                         "against QS_MEMORY_BUDGET first; this allocation was not foreseen)\n", input().c_str());
    return 1;
  }
}

}  // namespace qs::cli
