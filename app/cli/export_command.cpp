#include "backend/cpu_backend.h"
#include "export_command.h"

#include <chrono>
#include <cmath>
#include <cstdio>
#include <optional>
#include <nlohmann/json.hpp>

#include "export/gguf_export.h"
#include "io/imatrix_file.h"
#include "calib/device.h"
#include "calib/calibrate.h"
#include "calib/calibration_file.h"
#include "export/fake_quant_export.h"
#include "export/gptq_export.h"
#include "export/h5_export.h"
#include "eval_inputs.h"
#include "io/open_model.h"
#include "quant/capability.h"
#include "quant/method_table.h"
#include "quant/plan.h"

namespace qs::cli {

// The plan and the model a plan-driven export needs; prints why not and returns false.
static bool load_plan_and_model(const ExportOptions& opt, std::optional<Plan>& plan, std::optional<Model>& model) {
  if (opt.plan.empty()) {
    std::fprintf(stderr, "quantscope-cli export -f %s: give --plan plan.json\n", opt.format.c_str());
    return false;
  }
  auto p = read_plan(opt.plan);
  if (!p) {
    std::fprintf(stderr, "quantscope-cli: %s\n", p.error().message.c_str());
    return false;
  }
  auto m = open_model(opt.path);
  if (!m) {
    std::fprintf(stderr, "quantscope-cli: %s\n", m.error().message.c_str());
    return false;
  }
  // What this export cannot apply is the plan's doing: refused naming it, before any work.
  if (auto r = plan_supported(*export_consumer_of(opt.format), *p, *m); !r) {
    std::fprintf(stderr, "quantscope-cli: %s: %s\n", opt.plan.c_str(), r.error().message.c_str());
    return false;
  }
  plan = std::move(*p);
  model = std::move(*m);
  return true;
}

// The verification line every export prints (the file was read back before
// it was moved into place; the exporters fail otherwise, so a report says so).
static std::string verified_line(bool verified, const std::string& what) {
  return verified ? "verified: " + what : "not verified";
}

// The per-layer table of a directory or HDF5 export, as JSON or text, then
// the summary line `written` and the verification. Layers of fake-quant, GPTQ
// and HDF5 reports share name/format/quantized/reason/sqnr_db/readback_sqnr_db
// (the error measured again on the file read back); HDF5 layers add
// bits_per_weight. `out` holds the JSON fields that go before the common ones.
template <typename Layer>
void print_layer_report(const ExportOptions& opt, const std::vector<Layer>& layers, std::uint64_t bytes, double seconds,
                        const std::string& written, bool verified,
                        nlohmann::ordered_json out = nlohmann::ordered_json::object()) {
  constexpr bool has_bits = requires(const Layer& l) { l.bits_per_weight; };
  out["output"] = opt.out;
  out["bytes"] = bytes;
  out["seconds"] = seconds;
  out["verified"] = verified;
  out["layers"] = nlohmann::ordered_json::array();
  int remeasured = 0;
  for (const auto& l : layers) {
    nlohmann::ordered_json j = {{"name", l.name}, {"format", l.format}, {"quantized", l.quantized}};
    if (l.quantized) {
      if constexpr (has_bits) j["bits_per_weight"] = l.bits_per_weight;
      j["sqnr_db"] = l.sqnr_db;
      if (!std::isnan(l.readback_sqnr_db)) {
        j["readback_sqnr_db"] = l.readback_sqnr_db;
        ++remeasured;
      }
    } else {
      j["reason"] = l.reason;
    }
    out["layers"].push_back(std::move(j));
    if (opt.json) continue;
    if (!l.quantized) std::printf("%-44s %-10s as is: %s\n", l.name.c_str(), l.format.c_str(), l.reason.c_str());
    else if constexpr (has_bits)
      std::printf("%-44s %-10s %6.3f bits  SQNR %6.2f dB\n", l.name.c_str(), l.format.c_str(), l.bits_per_weight, l.sqnr_db);
    else std::printf("%-44s %-10s SQNR %6.2f dB\n", l.name.c_str(), l.format.c_str(), l.sqnr_db);
  }
  if (opt.json) {
    std::printf("%s\n", out.dump(2).c_str());
    return;
  }
  std::printf("%s in %.2f s\n", written.c_str(), seconds);
  std::printf("%s\n", verified_line(verified, "read back before the rename, every tensor as written, " +
                                                 std::to_string(remeasured) + " layers' error measured again on the file")
                           .c_str());
}

// What a calibrated export takes from the command line: the device that
// sums the Hessians and runs GPTQ (when the run-time choice finds one; plain
// RTN exports probe for none) and the capture the layers' methods read: a
// calibration file's (--calib-file: the one the plan was measured with) or a
// run over --calib text (text_calibration_request: the same pipeline and
// numbers as `calibrate --text T --consecutive --ctx 256`).
struct ExportCalibration {
  std::shared_ptr<Backend> device = cpu_backend();
  std::optional<CalibrationFile> file;
  std::optional<CalibrationRun> run;
  const ActivationCapture* capture() const { return file ? &file->run.capture : run ? &run->capture : nullptr; }
};

// Prints why and gives nullopt (exit 2 for a bad file, 1 for a failed run) when the device, file or run fails.
static std::optional<ExportCalibration> calibrate_for_export(const ExportOptions& opt, const Model& model, int& exit_code) {
  ExportCalibration c;
  if (opt.calib.empty() && opt.calib_file.empty()) return c;
  if (!opt.calib_file.empty()) {
    auto f = read_calibration_file(opt.calib_file, &model);  // another model's file is refused here
    if (!f) {
      std::fprintf(stderr, "quantscope-cli: %s\n", f.error().message.c_str());
      exit_code = 2;
      return std::nullopt;
    }
    c.file = std::move(*f);
  }
  exit_code = 1;
  // The run-time choice (QS_BACKEND, else "auto"): a device sums the Hessians and runs GPTQ.
  auto device = make_backend();
  if (!device) {
    std::fprintf(stderr, "quantscope-cli: %s\n", device.error().message.c_str());
    return std::nullopt;
  }
  c.device = std::move(*device);
  if (opt.calib.empty()) return c;
  const auto start = std::chrono::steady_clock::now();
  CalibrationSettings request = text_calibration_request(opt.calib, opt.calib_tokens);
  request.capture.hessian_backend = c.device.get();
  // The HDF5 checkpoint ranks outliers by mean |x| and reads no Hessian (4·cols² bytes per input).
  if (export_consumer_of(opt.format) == Consumer::Hdf5Export) request.capture.hessians = false;
  auto run = calibrate(model, request);
  if (!run) {
    std::fprintf(stderr, "quantscope-cli: %s\n", run.error().message.c_str());
    return std::nullopt;
  }
  c.run = std::move(*run);
  if (!opt.json)
    std::printf("calibrated on %lld tokens of %s in %.2f s\n", static_cast<long long>(c.run->capture.tokens), opt.calib.c_str(),
                std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  return c;
}

static double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

static int run_export_fake_quant(const ExportOptions& opt) {
  std::optional<Plan> plan;
  std::optional<Model> model;
  if (!load_plan_and_model(opt, plan, model)) return 2;
  const auto start = std::chrono::steady_clock::now();
  int failed = 1;
  auto calib = calibrate_for_export(opt, *model, failed);
  if (!calib) return failed;
  FakeQuantOptions options;
  options.backend = calib->device.get();
  options.dtype = opt.dtype == "f32" ? DType::F32 : opt.dtype == "bf16" ? DType::BF16 : DType::F16;
  options.capture = calib->capture();
  auto report = export_fake_quant(*model, *plan, opt.out, options, OpContext::none());
  if (!report) {
    std::fprintf(stderr, "quantscope-cli: %s\n", report.error().message.c_str());
    return exit_code_of(report.error());
  }
  print_layer_report(opt, report->layers, report->bytes, seconds_since(start),
                     "wrote " + opt.out + " (" + opt.dtype + ", model.safetensors " + std::to_string(report->bytes) + " bytes)",
                     report->verified);
  return 0;
}

static int run_export_hdf5(const ExportOptions& opt) {
  std::optional<Plan> plan;
  std::optional<Model> model;
  if (!load_plan_and_model(opt, plan, model)) return 2;
  const auto start = std::chrono::steady_clock::now();
  H5ExportOptions options;
  int failed = 1;
  auto calib = calibrate_for_export(opt, *model, failed);  // the ranking of the plan's outlier keeping
  if (!calib) return failed;
  options.capture = calib->capture();
  auto report = export_quantized_h5(*model, *plan, opt.out, options, OpContext::none());
  if (!report) {
    std::fprintf(stderr, "quantscope-cli: %s\n", report.error().message.c_str());
    return exit_code_of(report.error());
  }
  print_layer_report(opt, report->layers, report->bytes, seconds_since(start),
                     "wrote " + opt.out + " (" + std::to_string(report->bytes) + " bytes)", report->verified);
  return 0;
}

static int run_export_gptq(const ExportOptions& opt) {
  auto model = open_model(opt.path);
  if (!model) {
    std::fprintf(stderr, "quantscope-cli: %s\n", model.error().message.c_str());
    return 2;
  }
  GptqExportOptions options;
  options.bits = opt.bits;
  options.group_size = opt.group;
  options.sym = !opt.asym;
  options.act_order = opt.act_order;
  options.static_groups = opt.static_groups;
  bool plan_gptq = false;
  if (!opt.plan.empty()) {  // the plan's grid and method, not the flags'
    if (opt.gptq_flags_given)
      return std::fprintf(stderr, "quantscope-cli: --plan sets the GPTQ grid and method; drop --bits/--group/--asym/"
                                  "--act-order/--static-groups\n"), 2;
    auto plan = read_plan(opt.plan);
    if (!plan) return std::fprintf(stderr, "quantscope-cli: %s\n", plan.error().message.c_str()), 2;
    auto from_plan = gptq_options_from_plan(*model, *plan, options);
    if (!from_plan) return std::fprintf(stderr, "quantscope-cli: %s: %s\n", opt.plan.c_str(), from_plan.error().message.c_str()), 2;
    options = std::move(from_plan->options);
    plan_gptq = from_plan->gptq;
    const bool calibrated = !opt.calib.empty() || !opt.calib_file.empty();
    if (plan_gptq && !calibrated)
      return std::fprintf(stderr, "quantscope-cli: %s: method gptq needs calibration: give --calib text or --calib-file\n",
                          opt.plan.c_str()), 2;
    if (!plan_gptq && calibrated)
      return std::fprintf(stderr, "quantscope-cli: %s: method rtn takes no calibration: --calib/--calib-file would be "
                                  "ignored\n", opt.plan.c_str()), 2;
  }
  const auto start = std::chrono::steady_clock::now();
  int failed = 1;
  auto calib = calibrate_for_export(opt, *model, failed);
  if (!calib) return failed;
  const ActivationCapture* capture = calib->capture();
  options.capture = capture;
  options.backend = calib->device.get();
  auto report = export_gptq(*model, opt.out, options, OpContext::none());
  if (!report) {
    std::fprintf(stderr, "quantscope-cli: %s\n", report.error().message.c_str());
    return exit_code_of(report.error());
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  int quantized = 0;
  for (const auto& m : report->modules) quantized += m.quantized;
  const char* method = capture ? (options.act_order ? (options.static_groups ? "gptq act-order static-groups" : "gptq act-order") : "gptq")
                                : "rtn";
  nlohmann::ordered_json head;
  head["source"] = model->path;
  head["checkpoint_format"] = report->checkpoint_format;
  // The one account: every tensor of model.safetensors over the weights it holds (the
  // prediction is the written file to the byte: test SizeAccount.GptqPredictionIsTheWrittenFile).
  if (auto account = predict_gptq(*model, options); account && account->bytes == report->bytes)
    head["bits_per_weight"] = account->bits_per_weight();
  head["method"] = method;
  if (capture) head["calibration_tokens"] = capture->tokens;
  print_layer_report(opt, report->modules, report->bytes, seconds,
                     "wrote " + opt.out + ": " + report->checkpoint_format + " by " + method + ", " +
                         std::to_string(quantized) + " of " + std::to_string(report->modules.size()) +
                         " modules quantized, model.safetensors " + std::to_string(report->bytes) + " bytes",
                     report->verified, std::move(head));
  return 0;
}

int run_export(const ExportOptions& opt) {
  // Which calibration each format takes: refused where it would be ignored.
  const auto refuse = [](const std::string& why) {
    std::fprintf(stderr, "quantscope-cli: %s\n", why.c_str());
    return 2;
  };
  const std::optional<Consumer> target = export_consumer_of(opt.format);
  if (!target) return refuse("unknown export format '" + opt.format + "' (gguf, gptq, hdf5, fakequant)");
  if (!opt.calib.empty() && !opt.calib_file.empty()) return refuse("give --calib or --calib-file, not both");
  if (opt.calib_tokens_given && opt.calib.empty())
    return refuse("--calib-tokens says how much of the --calib text to run; without --calib text it would be ignored "
                  "(a calibration file's tokens are fixed when it is made)");
  if ((opt.pure || !opt.imatrix.empty()) && *target != Consumer::GgufExport)
    return refuse("--pure and --imatrix are for -f gguf (llama-quantize's options)");
  switch (*target) {
    case Consumer::GptqExport: return run_export_gptq(opt);
    case Consumer::Hdf5Export: return run_export_hdf5(opt);
    case Consumer::FakeQuantExport: return run_export_fake_quant(opt);
    default: break;  // GGUF, below
  }
  const auto ftype = parse_llama_ftype(opt.ftype);
  if (!ftype) {
    std::fprintf(stderr, "quantscope-cli: unknown file type '%s' (one of %s)\n", opt.ftype.c_str(), llama_ftype_names().c_str());
    return 2;
  }
  auto model = open_model(opt.path);
  if (!model) {
    std::fprintf(stderr, "quantscope-cli: %s\n", model.error().message.c_str());
    return 2;
  }
  std::optional<Plan> plan;
  if (!opt.plan.empty()) {
    auto p = read_plan(opt.plan);
    if (!p) {
      std::fprintf(stderr, "quantscope-cli: %s\n", p.error().message.c_str());
      return 2;
    }
    if (auto r = plan_supported(Consumer::GgufExport, *p, *model); !r) return refuse(opt.plan + ": " + r.error().message);
    plan = std::move(*p);
  }
  if (!plan && (!opt.calib.empty() || !opt.calib_file.empty()))
    return refuse("a file type's quantizers take no calibration (--calib/--calib-file go with --plan); weight them by an "
                  "importance matrix with --imatrix (quantscope-cli calibrate --imatrix makes one)");
  if (!opt.imatrix.empty() && plan)
    return refuse("--imatrix weights a file type's quantizers (-t); a plan's layers are written as `measure --plan` "
                  "measures them, and plans do not take an importance matrix yet");
  std::optional<ImportanceMatrix> imatrix;
  if (!opt.imatrix.empty()) {
    auto m = read_imatrix(opt.imatrix);
    if (!m) return refuse(m.error().message);
    imatrix = std::move(*m);
  }
  const auto start = std::chrono::steady_clock::now();
  int failed = 1;
  auto calib = calibrate_for_export(opt, *model, failed);
  if (!calib) return failed;
  GgufExportOptions options{*ftype, plan ? &*plan : nullptr, calib->capture(), calib->device.get()};
  options.pure = opt.pure;
  options.imatrix = imatrix ? &*imatrix : nullptr;
  auto report = export_gguf(*model, opt.out, options, OpContext::none());
  if (!report) {
    std::fprintf(stderr, "quantscope-cli: %s\n", report.error().message.c_str());
    return exit_code_of(report.error());
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (opt.json) {
    nlohmann::ordered_json out;
    out["source"] = model->path;
    out["output"] = opt.out;
    out["file_type"] = plan ? "plan " + opt.plan : std::string(llama_ftype_name(*ftype));
    out["bytes"] = report->bytes;
    out["bits_per_weight"] = report->bits_per_weight();
    out["seconds"] = seconds;
    out["verified"] = report->verified;
    out["tensors"] = nlohmann::ordered_json::array();
    for (const auto& t : report->tensors)
    {
      nlohmann::ordered_json j = {{"name", t.name}, {"from", std::string(dtype_name(t.from))},
                                  {"to", std::string(dtype_name(t.to))}, {"note", t.note}};
      if (std::isfinite(t.sqnr_db)) j["sqnr_db"] = t.sqnr_db;
      out["tensors"].push_back(std::move(j));
    }
    std::printf("%s\n", out.dump(2).c_str());
    return 0;
  }
  for (const auto& t : report->tensors) {
    char sqnr[32] = "";
    if (std::isfinite(t.sqnr_db)) std::snprintf(sqnr, sizeof sqnr, "%6.2f dB", t.sqnr_db);
    std::printf("%-36s %-7s -> %-7s %9s  %s\n", t.name.c_str(), std::string(dtype_name(t.from)).c_str(),
                std::string(dtype_name(t.to)).c_str(), sqnr, t.note.c_str());
  }
  std::printf("wrote %s: %s, %llu bytes (%.3f bits/weight), %zu tensors in %.2f s\n", opt.out.c_str(),
              plan ? ("plan " + opt.plan).c_str() : std::string(llama_ftype_name(*ftype)).c_str(),
              static_cast<unsigned long long>(report->bytes), report->bits_per_weight(), report->tensors.size(), seconds);
  std::printf("%s\n", verified_line(report->verified, "read back before the rename, every tensor as written").c_str());
  return 0;
}

}  // namespace qs::cli
