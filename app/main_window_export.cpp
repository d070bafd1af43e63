// MainWindow: File ▸ Export…. Tells the export dialog what the open model and
// the Plan tab's plan allow, proposes destinations, estimates the size, asks
// for paths (the dialog never touches files), and runs the export through the
// Document as a job whose progress and cancel reach the dialog.
#include <QDir>
#include <QFileDialog>
#include <QFileInfo>
#include <QStatusBar>
#include <algorithm>
#include <cmath>
#include <numeric>
#include <set>

#include "app/document.h"
#include "app/main_window.h"
#include "calib/importance_matrix.h"
#include "export/gguf_export.h"
#include "export/gguf_source.h"
#include "export/gptq_export.h"
#include "quant/capability.h"
#include "quant/layer_method.h"
#include "quant/llama_ftype.h"
#include "quant/plan.h"
#include "widgets/display_format.h"
#include "widgets/export_dialog.h"
#include "widgets/plan_table.h"

namespace qs::app {

namespace {

QString planLabelOf(const QString& preset) {
  return preset.isEmpty() ? MainWindow::tr("current plan") : MainWindow::tr("%1 preset").arg(preset);
}

}  // namespace

ui::ExportDialog* MainWindow::exportDialog() {
  if (exportDialog_) return exportDialog_;
  exportDialog_ = new ui::ExportDialog(this);
  QStringList ftypes = QString::fromStdString(llama_ftype_names()).split(QStringLiteral(", "));
  exportDialog_->setFileTypes(ftypes, QStringLiteral("Q8_0"));
  connect(exportDialog_, &ui::ExportDialog::settingsChanged, this, &MainWindow::updateExportEstimate);
  connect(exportDialog_, &ui::ExportDialog::browseRequested, this, &MainWindow::chooseExportDestination);
  connect(exportDialog_, &ui::ExportDialog::exportRequested, this, &MainWindow::startExport);
  // GPTQ's calibration option follows the document's calibration (loaded, re-run, or gone).
  connect(document_, &Document::calibrationChanged, this, [this] {
    if (exportDialog_->isVisible()) configureExportDialog();
  });
  connect(exportDialog_, &ui::ExportDialog::cancelRequested, document_, &Document::cancelExport);
  connect(document_, &Document::exportProgress, exportDialog_, &ui::ExportDialog::setProgress);
  connect(document_, &Document::exportCancelled, this, [this] {
    exportDialog_->showCancelled();
    statusBar()->showMessage(tr("Export cancelled"), 5000);
  });
  connect(document_, &Document::exportFinished, this, [this](const ExportOutcome& outcome) {
    if (!outcome.result) {
      exportDialog_->showError(outcome.error);
      lastError_ = outcome.error;
      emit errorReported(outcome.error);
      return;
    }
    exportDialog_->showResult(*outcome.result);
    statusBar()->showMessage(tr("Exported %1").arg(outcome.result->path), 5000);
  });
  return exportDialog_;
}

void MainWindow::openExportDialog() {
  if (!document_->model()) return;
  configureExportDialog();
  exportDialog_->show();
  exportDialog_->raise();
  exportDialog_->activateWindow();
}

void MainWindow::configureExportDialog() {
  ui::ExportDialog* d = exportDialog();
  const auto model = document_->model();
  if (!model || d->isRunning()) return;
  const auto& configs = plan_->tableModel()->configs();

  // GGUF: the source must convert (llama family; an HF directory needs its
  // SentencePiece tokenizer.model). Reading that is cheap, and the types of a
  // file type come from the same tensor list, for the estimate.
  exportFtypeTensors_.clear();
  auto source = gguf_source_of(*model);
  d->setFormatAvailable(ui::ExportFormat::Gguf, source.ok(), source ? QString() : QString::fromStdString(source.error().message));
  if (source) {
    std::vector<FtypeTensor> tensors;
    for (const GgufSourceTensor& t : source->tensors) tensors.push_back({t.name, t.shape, t.natural});
    std::stable_sort(tensors.begin(), tensors.end(),
                     [](const FtypeTensor& a, const FtypeTensor& b) { return llama_quantize_order(a.name, b.name); });
    exportFtypeTensors_ = std::move(tensors);
  }

  // Each export takes what the capability query says it takes; the first
  // layer it refuses is the reason the dialog shows.
  const auto refusal = [&](Consumer consumer) -> QString {
    for (std::size_t i = 0; i < configs.size(); ++i) {
      const LayerConfig c = config_for_layer(model->layers[i], configs[i]);
      auto format = parse_quant_choice(c.format);
      const MethodRow* method = find_method(c.method);
      if (!format || !method) return tr("%1: the plan row does not parse").arg(QString::fromStdString(model->layers[i].name));
      if (format->keeps_precision()) continue;
      if (auto r = supports(consumer, *format, *method); !r)
        return tr("%1: %2 (change it in the Plan tab)")
            .arg(QString::fromStdString(model->layers[i].name), QString::fromStdString(r.error().message));
    }
    return {};
  };
  std::set<std::string> methods;
  bool gptq = false;
  for (const LayerConfig& c : configs) {
    methods.insert(c.method);
    gptq = gptq || find_method(c.method) == &method_row(MethodId::Gptq);
  }
  const QString notHdf5 = refusal(Consumer::Hdf5Export), notFake = refusal(Consumer::FakeQuantExport);
  d->setFormatAvailable(ui::ExportFormat::Hdf5, notHdf5.isEmpty(), notHdf5);
  const bool hf = model->format == ModelFormat::HfDirectory || model->format == ModelFormat::Safetensors;
  d->setFormatAvailable(ui::ExportFormat::FakeQuant, hf && notFake.isEmpty(),
                        !hf ? tr("the fake-quant export reads Hugging Face safetensors models") : notFake);
  d->setFormatAvailable(ui::ExportFormat::Gptq, !model->layers.empty(), tr("the model has no linear layers"));

  QStringList methodNames;
  for (const std::string& m : methods) methodNames << QString::fromStdString(m);
  const ui::PlanTotals totals = plan_->tableModel()->totals();
  QString planText = tr("%1 · method %2").arg(planLabelOf(plan_->tableModel()->preset()), methodNames.join(QStringLiteral(", ")));
  if (totals.measured > 0) planText += tr(" · %1 bits/weight over the model").arg(totals.averageBits, 0, 'f', 2);
  if (gptq) planText += tr(" · gptq takes the calibration's Hessians");
  d->setPlanDescription(planText, gptq);

  // GPTQ proper needs Hessians: those of the loaded calibration, when it captured them.
  QString calibration;
  if (const auto calib = document_->calibration()) {
    const auto& inputs = calib->run.capture.inputs;
    const bool hessians = std::any_of(inputs.begin(), inputs.end(), [](const InputStats& s) { return !s.hessian.empty(); });
    if (hessians)
      calibration = tr("%1 tokens · %2")
                        .arg(calib->run.capture.tokens)
                        .arg(QFileInfo(QString::fromStdString(calib->path)).fileName());
  }
  d->setGptqCalibration(calibration);
  // Any calibration has each input's mean x^2: the importance the GGUF quantizers can weight by.
  QString importance;
  if (const auto calib = document_->calibration())
    importance = tr("%1 tokens · %2")
                     .arg(calib->run.capture.tokens)
                     .arg(QFileInfo(QString::fromStdString(calib->path)).fileName());
  d->setImportanceSource(importance);
  updateExportEstimate();
}

QString MainWindow::suggestedExportPath(const ui::ExportSettings& s) const {
  const auto model = document_->model();
  if (!model) return {};
  const QFileInfo source(QString::fromStdString(model->path));
  // Beside the source (its directory's sibling); the demo lives in a cache, so in the export folder.
  const QString dir = openingDemo_ ? exportDir_ : source.absolutePath();
  const QString base = openingDemo_ ? QStringLiteral("demo") : source.completeBaseName();
  QString name;
  switch (s.format) {
    case ui::ExportFormat::Gguf:
      name = QStringLiteral("%1-%2.gguf").arg(base, s.ggufUsePlan ? QStringLiteral("plan") : s.ggufFileType);
      break;
    case ui::ExportFormat::Gptq:
      name = s.gptqGroup > 0 ? QStringLiteral("%1-gptq-w%2g%3").arg(base).arg(s.gptqBits).arg(s.gptqGroup)
                             : QStringLiteral("%1-gptq-w%2").arg(base).arg(s.gptqBits);
      break;
    case ui::ExportFormat::Hdf5: name = QStringLiteral("%1-quantized.h5").arg(base); break;
    case ui::ExportFormat::FakeQuant: name = QStringLiteral("%1-fakequant-%2").arg(base, s.fakeQuantDtype.toLower()); break;
  }
  return QDir(dir).filePath(name);
}

void MainWindow::updateExportEstimate() {
  if (!exportDialog_) return;
  const auto model = document_->model();
  if (!model) return;
  const ui::ExportSettings s = exportDialog_->settings();
  exportDialog_->setSuggestedDestination(s.format, suggestedExportPath(s));

  const double params = static_cast<double>(model->parameter_count());
  auto line = [params](double bytes, const QString& what) {
    return QObject::tr("≈ %1 · %2 bits/weight on average · %3")
        .arg(ui::humanBytes(static_cast<std::uint64_t>(bytes)))
        .arg(params > 0 ? bytes * 8.0 / params : 0.0, 0, 'f', 2)
        .arg(what);
  };
  const ui::PlanTotals totals = plan_->tableModel()->totals();
  QString text;
  switch (s.format) {
    case ui::ExportFormat::Gguf:
      if (s.ggufUsePlan) {
        // The export's own layout for the plan (headers and the tokenizer only): the file to the byte.
        const Plan plan = plan_->tableModel()->plan();
        GgufExportOptions o;
        o.plan = &plan;
        if (auto p = predict_gguf(*model, o))
          text = tr("%1 (%2 bytes) · %3 bits/weight over its %4 tensors · the file as it will be written")
                     .arg(ui::humanBytes(p->bytes))
                     .arg(p->bytes)
                     .arg(p->bits_per_weight(), 0, 'f', 3)
                     .arg(p->tensors.size());
        else
          text = QString::fromStdString(p.error().message);
      } else if (auto ftype = parse_llama_ftype(s.ggufFileType.toStdString()); ftype && !exportFtypeTensors_.empty()) {
        // llama-quantize's per-tensor types (rules and fallbacks) for this file type, in the export's
        // own layout (metadata, tokenizer and the importance matrix's record included): the file to the byte.
        GgufExportOptions o;
        o.ftype = *ftype;
        std::optional<ImportanceMatrix> imatrix;
        if (const auto calib = document_->calibration(); calib && s.ggufImportance) {
          imatrix = importance_matrix_of(calib->run.capture, calib->path);
          o.imatrix = &*imatrix;
        }
        if (auto p = predict_gguf(*model, o))
          text = tr("%1 (%2 bytes) · %3 bits/weight over its %4 tensors · llama.cpp's types for %5")
                     .arg(ui::humanBytes(p->bytes))
                     .arg(p->bytes)
                     .arg(p->bits_per_weight(), 0, 'f', 3)
                     .arg(p->tensors.size())
                     .arg(s.ggufFileType);
        else
          text = QString::fromStdString(p.error().message);
      }
      break;
    case ui::ExportFormat::Gptq: {
      // The export's own layout (headers only): model.safetensors to the byte.
      GptqExportOptions o;
      o.bits = s.gptqBits;
      o.group_size = s.gptqGroup;
      o.sym = s.gptqSymmetric;
      auto p = predict_gptq(*model, o);
      text = p ? line(static_cast<double>(p->bytes), tr("%1 of %2 modules on the grid, the rest F16")
                                                          .arg(p->quantized_modules)
                                                          .arg(p->modules))
               : QString::fromStdString(p.error().message);
      break;
    }
    case ui::ExportFormat::Hdf5: text = line(totals.planModelBytes, tr("the plan's formats as measured")); break;
    case ui::ExportFormat::FakeQuant: {
      const double width = s.fakeQuantDtype == QLatin1String("F32") ? 4.0 : 2.0;
      text = line(params * width, tr("every tensor in %1; the plan's error, not its size").arg(s.fakeQuantDtype));
      break;
    }
  }
  exportDialog_->setSummary(text);
}

void MainWindow::chooseExportDestination() {
  if (!exportDialog_) return;
  const ui::ExportSettings s = exportDialog_->settings();
  const QString start = s.destination.isEmpty() ? suggestedExportPath(s) : s.destination;
  QString path;
  switch (s.format) {
    case ui::ExportFormat::Gguf:
      path = QFileDialog::getSaveFileName(this, tr("Export GGUF"), start, tr("GGUF files (*.gguf);;All files (*)"));
      if (!path.isEmpty() && QFileInfo(path).suffix().isEmpty()) path += QStringLiteral(".gguf");
      break;
    case ui::ExportFormat::Hdf5:
      path = QFileDialog::getSaveFileName(this, tr("Export HDF5 Checkpoint"), start, tr("HDF5 files (*.h5);;All files (*)"));
      if (!path.isEmpty() && QFileInfo(path).suffix().isEmpty()) path += QStringLiteral(".h5");
      break;
    case ui::ExportFormat::Gptq:
    case ui::ExportFormat::FakeQuant:
      // A new directory (the exporters refuse a non-empty one): named like a file.
      path = QFileDialog::getSaveFileName(this, tr("Export to a New Directory"), start, QString(), nullptr,
                                          QFileDialog::DontConfirmOverwrite);
      break;
  }
  if (path.isEmpty()) return;
  exportDir_ = QFileInfo(path).absolutePath();
  exportDialog_->setDestination(path);
}

void MainWindow::startExport(const ui::ExportSettings& settings) {
  const auto model = document_->model();
  if (!model || !exportDialog_) return;
  // Refused here as well as in the core: the message comes before any work.
  if (const QString conflict = destinationConflict(*model, settings.destination); !conflict.isEmpty()) {
    exportDialog_->showError(conflict);
    lastError_ = conflict;
    emit errorReported(conflict);
    return;
  }
  ExportJobRequest request;
  request.settings = settings;
  request.plan = plan_->tableModel()->plan();
  request.planLabel = planLabelOf(plan_->tableModel()->preset());
  // GPTQ when asked to; the plan's methods in the fake-quant, HDF5 and GGUF-from-plan exports (the
  // calibration the plan editor measured them with); a GGUF file type for its importance.
  if ((settings.format == ui::ExportFormat::Gptq && settings.gptqCalibrated) || settings.format == ui::ExportFormat::FakeQuant ||
      settings.format == ui::ExportFormat::Hdf5 ||
      (settings.format == ui::ExportFormat::Gguf && (settings.ggufUsePlan || settings.ggufImportance)))
    request.calibration = document_->calibration();
  exportDialog_->showRunning();
  statusBar()->showMessage(tr("Exporting to %1…").arg(settings.destination));
  document_->requestExport(request);
}

}  // namespace qs::app
