#include "app/export_job.h"

#include <chrono>
#include <cmath>
#include <filesystem>
#include <optional>

#include "backend/cpu_backend.h"
#include "calib/activation_capture.h"
#include "export/fake_quant_export.h"
#include "calib/importance_matrix.h"
#include "export/gguf_export.h"
#include "export/gptq_export.h"
#include "export/h5_export.h"
#include "model/model_files.h"
#include "quant/llama_ftype.h"

namespace qs::app {

namespace {

QString q(const std::string& s) { return QString::fromStdString(s); }
QString q(std::string_view s) { return QString::fromUtf8(s.data(), static_cast<qsizetype>(s.size())); }

// The backend of the request's device (the CPU's when it names none).
Backend* deviceOf(const ExportJobRequest& req) { return req.backend ? req.backend.get() : cpu_backend().get(); }

Result<ui::ExportResultView> exportGguf(const Model& model, const ExportJobRequest& req, OpContext& ctx) {
  const ui::ExportSettings& s = req.settings;
  GgufExportOptions options;
  options.backend = deviceOf(req);
  if (s.ggufUsePlan) {
    options.plan = &req.plan;
  } else {
    const auto ftype = parse_llama_ftype(s.ggufFileType.toStdString());
    if (!ftype)
      return Error::invalid("unknown llama.cpp file type '" + s.ggufFileType.toStdString() + "' (one of " +
                            llama_ftype_names() + ")");
    options.ftype = *ftype;
  }
  std::optional<ImportanceMatrix> imatrix;
  if (s.ggufImportance && req.calibration) {
    imatrix = importance_matrix_of(req.calibration->run.capture, req.calibration->path);
    options.imatrix = &*imatrix;
  }
  // A plan's gptq and clip layers take the loaded calibration's Hessians: the
  // ones the plan editor measured them with.
  const ActivationCapture* capture = s.ggufUsePlan && req.calibration ? &req.calibration->run.capture : nullptr;
  options.capture = capture;
  auto report = export_gguf(model, s.destination.toStdString(), options, ctx);
  if (!report) return report.error();
  ui::ExportResultView view;
  view.bytes = report->bytes;
  view.verified = report->verified;
  int converted = 0;
  for (const ExportedTensor& t : report->tensors) {
    const bool changed = t.from != t.to;
    converted += changed;
    view.rows.push_back({q(t.name), changed ? QStringLiteral("%1 → %2").arg(q(dtype_name(t.from)), q(dtype_name(t.to)))
                                            : q(dtype_name(t.to)),
                         q(t.note), t.sqnr_db});
  }
  const QString what = s.ggufUsePlan ? QStringLiteral("GGUF from the plan (%1)").arg(req.planLabel)
                                     : QStringLiteral("GGUF %1").arg(s.ggufFileType);
  view.headline = QStringLiteral("%1: %2 tensors, %3 converted%4")
                      .arg(what)
                      .arg(report->tensors.size())
                      .arg(converted)
                      .arg(capture ? QStringLiteral(", calibration of %1 tokens for the plan's methods").arg(capture->tokens)
                                   : QString()) +
                  (imatrix ? QStringLiteral(", quantizers weighted by the calibration's importance (%1 tokens)")
                                 .arg(req.calibration->run.capture.tokens)
                           : QString());
  return view;
}

Result<ui::ExportResultView> exportGptq(const Model& model, const ExportJobRequest& req, OpContext& ctx) {
  const ui::ExportSettings& s = req.settings;
  GptqExportOptions options{s.gptqBits, s.gptqGroup, s.gptqSymmetric};
  options.backend = deviceOf(req);
  if (s.gptqCalibrated) {
    if (!req.calibration) return Error::invalid("GPTQ export: no calibration is loaded; calibrate the model first");
    options.capture = &req.calibration->run.capture;
    options.act_order = s.gptqActOrder;
    options.static_groups = s.gptqStaticGroups;
  }
  auto report = export_gptq(model, s.destination.toStdString(), options, ctx);
  if (!report) return report.error();
  ui::ExportResultView view;
  view.bytes = report->bytes;
  view.verified = report->verified;
  const QString grid = s.gptqGroup > 0 ? QStringLiteral("int%1 g%2").arg(s.gptqBits).arg(s.gptqGroup)
                                       : QStringLiteral("int%1 per channel").arg(s.gptqBits);
  int quantized = 0;
  for (const GptqExportedModule& m : report->modules) {
    quantized += m.quantized;
    view.rows.push_back({q(m.name), m.quantized ? grid : QStringLiteral("F16"), q(m.reason),
                         m.quantized ? m.sqnr_db : INFINITY});
  }
  QString method = QStringLiteral("RTN");
  if (s.gptqCalibrated) {
    method = QStringLiteral("GPTQ on %1 calibration tokens").arg(req.calibration->run.capture.tokens);
    if (s.gptqActOrder) method += s.gptqStaticGroups ? QStringLiteral(", act-order, static groups") : QStringLiteral(", act-order");
  }
  view.headline = QStringLiteral("GPTQ %1 (%2) by %3, %4 of %5 modules quantized; model.safetensors")
                      .arg(grid, q(report->checkpoint_format), method)
                      .arg(quantized)
                      .arg(report->modules.size());
  return view;
}

// Fake-quant and HDF5 layers share name/format/quantized/reason/sqnr_db.
template <typename Layer>
void addLayerRows(ui::ExportResultView& view, const std::vector<Layer>& layers, int& quantized) {
  for (const Layer& l : layers) {
    quantized += l.quantized;
    QString as = q(l.format);
    if constexpr (requires(const Layer& x) { x.bits_per_weight; })
      if (l.quantized) as += QStringLiteral(" (%1 bits/weight)").arg(l.bits_per_weight, 0, 'f', 3);
    view.rows.push_back({q(l.name), l.quantized ? as : QStringLiteral("as is"), q(l.reason),
                         l.quantized ? l.sqnr_db : INFINITY});
  }
}

Result<ui::ExportResultView> exportHdf5(const Model& model, const ExportJobRequest& req, OpContext& ctx) {
  H5ExportOptions options;
  if (req.calibration) options.capture = &req.calibration->run.capture;  // ranks the plan's outlier keeping
  auto report = export_quantized_h5(model, req.plan, req.settings.destination.toStdString(), options, ctx);
  if (!report) return report.error();
  ui::ExportResultView view;
  view.bytes = report->bytes;
  view.verified = report->verified;
  int quantized = 0;
  addLayerRows(view, report->layers, quantized);
  view.headline = QStringLiteral("HDF5 checkpoint of the plan (%1), %2 of %3 layers quantized")
                      .arg(req.planLabel)
                      .arg(quantized)
                      .arg(report->layers.size());
  return view;
}

Result<ui::ExportResultView> exportFakeQuant(const Model& model, const ExportJobRequest& req, OpContext& ctx) {
  const QString& d = req.settings.fakeQuantDtype;
  const DType dtype = d == QLatin1String("F32") ? DType::F32 : d == QLatin1String("BF16") ? DType::BF16 : DType::F16;
  FakeQuantOptions options;
  options.dtype = dtype;
  options.backend = deviceOf(req);
  if (req.calibration) options.capture = &req.calibration->run.capture;  // the plan's gptq/awq layers
  auto report = export_fake_quant(model, req.plan, req.settings.destination.toStdString(), options, ctx);
  if (!report) return report.error();
  ui::ExportResultView view;
  view.bytes = report->bytes;
  view.verified = report->verified;
  int quantized = 0;
  addLayerRows(view, report->layers, quantized);
  view.headline = QStringLiteral("fake-quant %1 of the plan (%2), %3 of %4 layers quantized; model.safetensors")
                      .arg(d, req.planLabel)
                      .arg(quantized)
                      .arg(report->layers.size());
  return view;
}

}  // namespace

QString destinationConflict(const Model& model, const QString& destination) {
  const auto r = refuse_model_file(model, destination.toStdString());
  return r ? QString() : QString::fromStdString(r.error().message);
}

ExportOutcome runExportJob(std::shared_ptr<const Model> model, ExportJobRequest request, quint64 generation,
                           std::shared_ptr<JobControl> control) {
  ExportOutcome out;
  out.generation = generation;
  const auto start = std::chrono::steady_clock::now();
  return runJob(
      std::move(out), *control,
      [&](OpContext& ctx) -> Result<ui::ExportResultView> {
        if (const QString conflict = destinationConflict(*model, request.settings.destination); !conflict.isEmpty())
          return Error::invalid(conflict.toStdString());
        switch (request.settings.format) {
          case ui::ExportFormat::Gguf: return exportGguf(*model, request, ctx);
          case ui::ExportFormat::Gptq: return exportGptq(*model, request, ctx);
          case ui::ExportFormat::Hdf5: return exportHdf5(*model, request, ctx);
          case ui::ExportFormat::FakeQuant: return exportFakeQuant(*model, request, ctx);
        }
        return Error::invalid("unknown export format");
      },
      [&](ExportOutcome& o, ui::ExportResultView&& view) {
        view.path = request.settings.destination;
        view.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        o.result = std::make_shared<const ui::ExportResultView>(std::move(view));
      });
}

}  // namespace qs::app
