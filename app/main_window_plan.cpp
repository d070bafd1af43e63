// MainWindow: the plan editor tab. The table shows and edits the Document's
// plan (which has what changed measured); this file does the plan files
// (core's write_plan / read_plan), presets, allocation, autosave and the
// histogram's grid overlay for the selected row.
#include <QCloseEvent>
#include <QHash>
#include <QDir>
#include <QDockWidget>
#include <QFile>
#include <QFileDialog>
#include <QFileInfo>
#include <QMessageBox>
#include <QStandardPaths>
#include <QStatusBar>
#include <QTabWidget>
#include <QUndoStack>
#include <algorithm>
#include <cmath>

#include "app/document.h"
#include "app/main_window.h"
#include "app/plan_document.h"
#include "model/model_files.h"
#include "quant/layer_method.h"
#include "quant/plan.h"
#include "widgets/allocate_dialog.h"
#include "widgets/histogram_plot.h"
#include "widgets/layer_tree.h"
#include "widgets/plan_table.h"
#include "widgets/quant_error_view.h"

namespace qs::app {

namespace {
QString modelMarkerPath(const QString& autosave) { return autosave + QStringLiteral(".model"); }
}  // namespace

QUndoStack* MainWindow::planUndoStack() const { return document_->plan()->undoStack(); }

void MainWindow::connectPlanEditor() {
  QStringList presets;
  for (const std::string& n : plan_preset_names()) presets << QString::fromStdString(n);
  plan_->setPresetNames(presets);

  // The editor shows the document's plan; the plan asks the document to measure what changes.
  PlanDocument* plan = document_->plan();
  plan_->setSource(plan);
  connect(plan, &PlanDocument::configsChanged, this, &MainWindow::onPlanConfigsChanged);
  connect(plan, &PlanDocument::settled, this, &MainWindow::planMeasured);
  connect(plan_, &ui::PlanEditor::presetRequested, this, [this](const QString& name) { applyPreset(name); });
  connect(plan_, &ui::PlanEditor::layerSelected, this, &MainWindow::onPlanLayerSelected);
  connect(plan_, &ui::PlanEditor::layerActivated, this, [this](int row) {
    onPlanLayerSelected(row);
    showTab(QStringLiteral("histogram"));  // with the row's grid over it
  });
  connect(plan_, &ui::PlanEditor::allocateRequested, this, [this] {
    ui::AllocateDialog* d = allocateDialog();
    d->show();
    d->raise();
  });
  connect(document_, &Document::measureProgress, plan_, &ui::PlanEditor::setProgress);
  connect(document_, &Document::errorHistogramsReady, this, [this](int layer, const QString& format) {
    const auto model = document_->model();
    const auto h = document_->errorHistograms();
    if (!model || !h || layer < 0 || static_cast<std::size_t>(layer) >= model->layers.size()) return;
    plan_->errorView()->setResult(*h, QString::fromStdString(model->layers[static_cast<std::size_t>(layer)].name), format);
  });
  connect(document_, &Document::errorHistogramsFailed, this, [this](int, const QString&, const QString& message) {
    plan_->errorView()->showError(message);
  });
  connect(document_, &Document::allocationReady, this, &MainWindow::onAllocationReady);
  connect(document_, &Document::allocationFailed, this, [this](const QString& message) {
    applyAllocationWhenReady_ = false;
    if (allocateDialog_) allocateDialog_->showError(message);
    reportError(tr("Allocation failed"), message);
  });
  connect(document_, &Document::allocationProgress, this, [this](double f) {
    if (allocateDialog_) allocateDialog_->showBusy(tr("Measuring the candidates of every layer… %1 %").arg(std::lround(f * 100)));
  });

  // The table wants the width: the docks step aside while the Plan tab is shown
  // (the table lists the layers itself), and come back as they were.
  connect(tabs_, &QTabWidget::currentChanged, this, [this] {
    const bool planShown = tabs_->currentWidget() == plan_;
    QList<QDockWidget*> restored;
    QList<int> widths;
    for (const char* name : {"layersDock", "statsDock"}) {
      auto* dock = findChild<QDockWidget*>(QString::fromLatin1(name));
      if (!dock) continue;
      if (planShown) {
        if (!dock->property("shownBeforePlan").isValid()) {
          dock->setProperty("shownBeforePlan", !dock->isHidden());
          dock->setProperty("widthBeforePlan", dock->width());
        }
        dock->hide();
      } else if (dock->property("shownBeforePlan").isValid()) {
        const bool shown = dock->property("shownBeforePlan").toBool();
        dock->setVisible(shown);
        if (shown) {  // at least the window's first layout (a width taken before it settled is too small)
          restored << dock;
          const int first = dock->objectName() == QLatin1String("layersDock") ? 445 : 280;
          widths << std::max(first, dock->property("widthBeforePlan").toInt());
        }
        dock->setProperty("shownBeforePlan", QVariant());
      }
    }
    if (!restored.isEmpty())  // as wide as they were, once they are back in the layout
      QTimer::singleShot(0, this, [this, restored, widths] { resizeDocks(restored, widths, Qt::Horizontal); });
  });

  // Autosave a while after the last edit; a saved (clean) plan needs no copy.
  autosaveTimer_.setSingleShot(true);
  autosaveTimer_.setInterval(1500);
  connect(&autosaveTimer_, &QTimer::timeout, this, &MainWindow::autosaveNow);
  connect(plan->undoStack(), &QUndoStack::cleanChanged, this, [this](bool clean) {
    setWindowModified(!clean);
    if (clean) {
      autosaveTimer_.stop();
      QFile::remove(autosavePath());
      QFile::remove(modelMarkerPath(autosavePath()));
    }
  });
  connect(plan->undoStack(), &QUndoStack::indexChanged, this, [this] {
    if (!planUndoStack()->isClean()) autosaveTimer_.start();
  });
}

void MainWindow::resetPlan() {
  const auto model = document_->model();
  planPath_.clear();
  planOverlayTensor_ = -1;
  planOverlayFormat_.clear();
  document_->cancelErrorHistograms();
  plan_->errorView()->showPlaceholder(tr("Select a row to see its weights before and after quantization"));
  if (!model) {
    document_->plan()->reset(nullptr, {});
    return;
  }
  auto configs = resolve_plan(Plan{}, *model);
  document_->plan()->reset(model, configs ? *configs : std::vector<LayerConfig>(model->layers.size()));
  planUndoStack()->setClean();

  // A plan left unsaved by a crash on this model: offer it back.
  const QString marker = modelMarkerPath(autosavePath());
  QFile f(marker);
  if (interactiveErrors_ && QFile::exists(autosavePath()) && f.open(QIODevice::ReadOnly) &&
      QString::fromUtf8(f.readAll()) == document_->path()) {
    f.close();
    const auto answer = QMessageBox::question(
        this, tr("Recover Plan"),
        tr("A plan for this model was being edited when QuantScope last quit without saving it. Recover it?"),
        QMessageBox::Yes | QMessageBox::No, QMessageBox::Yes);
    if (answer == QMessageBox::Yes) recoverAutosave();
    else {
      QFile::remove(autosavePath());
      QFile::remove(marker);
    }
  }
}

void MainWindow::onPlanConfigsChanged(const QVector<int>&) {
  // The selected row's overlay and before/after view follow its new config.
  if (planOverlayTensor_ >= 0) {
    const int row = plan_->tableModel()->rowCount() > 0 ? plan_->selectedRows().value(0, -1) : -1;
    if (row >= 0) onPlanLayerSelected(row);
  }
}

bool MainWindow::planGrid(const QString& format, int& bits, bool& symmetric) {
  auto choice = parse_quant_choice(format.toStdString());
  if (!choice) return false;
  if (choice->kind == FormatKind::IntGrid) {
    bits = choice->grid.bits;
    symmetric = choice->grid.symmetric;
    return true;
  }
  if (choice->row->code_bits == 0) return false;  // element formats and codebooks: no uniform grid to draw
  bits = choice->row->code_bits;
  symmetric = choice->row->symmetric_codes;
  return true;
}

void MainWindow::onPlanLayerSelected(int row) {
  const auto model = document_->model();
  if (!model || row < 0 || static_cast<std::size_t>(row) >= model->layers.size()) return;
  planOverlayTensor_ = static_cast<int>(model->layers[static_cast<std::size_t>(row)].weight);
  document_->prepareMeasurement(row);  // its first edit then skips the F32 conversion
  planOverlayFormat_ = QString::fromStdString(plan_->tableModel()->configs()[static_cast<std::size_t>(row)].format);
  const QString layerName = QString::fromStdString(model->layers[static_cast<std::size_t>(row)].name);
  // The view shows what the row's method makes of the layer (its config key names it).
  const QString key = QString::fromStdString(layer_config_key(plan_->tableModel()->configs()[static_cast<std::size_t>(row)]));
  ui::QuantErrorView* view = plan_->errorView();
  if (view->layer() != layerName || view->format() != key) {
    view->showBusy(tr("Quantizing %1 as %2…").arg(layerName, key));
    document_->requestErrorHistograms(row, key);
  }
  if (current_ != planOverlayTensor_) tree_->selectTensor(planOverlayTensor_);  // the histogram follows, then its overlays
  else applyHistogramOverlays();
}

// ---- files ---------------------------------------------------------------------------

bool MainWindow::savePlan(const QString& path) {
  if (!document_->model()) return false;
  const Plan plan = document_->plan()->plan();
  // Never over a file of the open model (Save As… onto its model.safetensors would replace the weights).
  if (auto r = refuse_model_file(*document_->model(), path.toStdString()); !r) {
    reportError(tr("Cannot save the plan"), QString::fromStdString(r.error().message));
    return false;
  }
  if (auto r = write_plan(path.toStdString(), plan); !r) {
    reportError(tr("Cannot save the plan"), QString::fromStdString(r.error().message));
    return false;
  }
  planPath_ = path;
  planUndoStack()->setClean();
  statusBar()->showMessage(tr("Saved the plan to %1").arg(path), 5000);
  return true;
}

bool MainWindow::loadPlan(const QString& path) {
  const auto model = document_->model();
  if (!model) return false;
  auto plan = read_plan(path.toStdString());
  if (!plan) {
    reportError(tr("Cannot open the plan"), QString::fromStdString(plan.error().message));
    return false;
  }
  auto configs = resolve_plan(*plan, *model);
  if (!configs) {
    reportError(tr("Cannot apply the plan"), tr("%1: %2").arg(path, QString::fromStdString(configs.error().message)));
    return false;
  }
  plan_->tableModel()->replaceConfigs(*configs, QString::fromStdString(plan->preset),
                                      tr("Open plan %1").arg(QFileInfo(path).fileName()));
  planPath_ = path;
  planUndoStack()->setClean();
  statusBar()->showMessage(tr("Opened the plan %1").arg(path), 5000);
  return true;
}

void MainWindow::choosePlanToOpen() {
  if (!document_->model() || !confirmDiscardPlan()) return;
  const QString path = QFileDialog::getOpenFileName(this, tr("Open Plan"), planPath_.isEmpty() ? exportDir_ : planPath_,
                                                    tr("Plans (*.json);;All files (*)"));
  if (!path.isEmpty()) loadPlan(path);
}

void MainWindow::choosePlanToSave() {
  if (!document_->model()) return;
  QString path = QFileDialog::getSaveFileName(
      this, tr("Save Plan"), planPath_.isEmpty() ? QDir(exportDir_).filePath(QStringLiteral("plan.json")) : planPath_,
      tr("Plans (*.json);;All files (*)"));
  if (path.isEmpty()) return;
  if (QFileInfo(path).suffix().isEmpty()) path += QStringLiteral(".json");
  savePlan(path);
}

bool MainWindow::applyPreset(const QString& name) {
  const auto model = document_->model();
  if (!model) return false;
  auto plan = plan_preset(name.toStdString(), *model);
  auto configs = plan ? resolve_plan(*plan, *model) : Result<std::vector<LayerConfig>>(plan.error());
  if (!configs) {
    reportError(tr("Cannot apply the preset"), QString::fromStdString(configs.error().message));
    return false;
  }
  plan_->tableModel()->replaceConfigs(*configs, name, tr("Preset %1").arg(name));
  return true;
}

bool MainWindow::confirmDiscardPlan() {
  if (!interactiveErrors_ || planUndoStack()->isClean() || !document_->model()) return true;
  const auto answer = QMessageBox::question(this, tr("Unsaved Plan"),
                                            tr("The plan has unsaved changes. Save them first?"),
                                            QMessageBox::Save | QMessageBox::Discard | QMessageBox::Cancel,
                                            QMessageBox::Save);
  if (answer == QMessageBox::Cancel) return false;
  if (answer == QMessageBox::Save) {
    choosePlanToSave();
    return planUndoStack()->isClean();
  }
  return true;
}

void MainWindow::closeEvent(QCloseEvent* event) {
  if (!confirmDiscardPlan()) {
    event->ignore();
    return;
  }
  // Quitting on purpose: the crash copy is not needed.
  autosaveTimer_.stop();
  QFile::remove(autosavePath());
  QFile::remove(modelMarkerPath(autosavePath()));
  document_->cancelMeasurements();
  event->accept();
}

// ---- autosave ----------------------------------------------------------------------------

QString MainWindow::autosavePath() const {
  return QDir(QStandardPaths::writableLocation(QStandardPaths::AppDataLocation))
      .filePath(QStringLiteral("plan-autosave.json"));
}

void MainWindow::autosaveNow() {
  if (!document_->model() || planUndoStack()->isClean()) return;
  const QString path = autosavePath();
  QDir().mkpath(QFileInfo(path).absolutePath());
  if (auto r = write_plan(path.toStdString(), plan_->tableModel()->plan()); !r) {
    statusBar()->showMessage(tr("Autosave failed: %1").arg(QString::fromStdString(r.error().message)), 5000);
    return;
  }
  QFile marker(modelMarkerPath(path));
  if (marker.open(QIODevice::WriteOnly | QIODevice::Truncate)) marker.write(document_->path().toUtf8());
}

bool MainWindow::recoverAutosave() {
  const QString path = autosavePath();
  if (!document_->model() || !QFile::exists(path)) return false;
  const QString previous = planPath_;
  if (!loadPlan(path)) return false;
  planPath_ = previous;  // the recovered plan still needs saving somewhere of the user's choice
  planUndoStack()->resetClean();
  return true;
}

// ---- allocation --------------------------------------------------------------------------

ui::AllocateDialog* MainWindow::allocateDialog() {
  if (!allocateDialog_) {
    allocateDialog_ = new ui::AllocateDialog(this);
    allocateDialog_->setCandidates(ui::planFormats(), {QStringLiteral("q8_0"), QStringLiteral("q6_k"),
                                                       QStringLiteral("q5_k"), QStringLiteral("q4_k"),
                                                       QStringLiteral("q4_0")});
    connect(allocateDialog_, &ui::AllocateDialog::runRequested, this,
            [this](double target, const QStringList& formats) { allocate(target, formats, false); });
    connect(allocateDialog_, &ui::AllocateDialog::applyRequested, this, [this] {
      if (applyAllocation()) allocateDialog_->accept();
    });
  }
  return allocateDialog_;
}

void MainWindow::allocate(double target, const QStringList& formats, bool apply) {
  if (!document_->model()) return;
  if (formats.isEmpty()) {
    reportError(tr("Allocation"), tr("Choose at least one candidate format"));
    return;
  }
  applyAllocationWhenReady_ = apply;
  if (allocateDialog_) allocateDialog_->showBusy(tr("Measuring the candidates of every layer…"));
  document_->requestAllocation(target, formats);
}

void MainWindow::onAllocationReady() {
  const auto a = document_->allocation();
  if (!a) return;
  if (allocateDialog_) {
    QVector<double> bits, error;
    for (const ParetoPoint& p : a->pareto) {
      bits << p.bits_per_weight;
      error << p.squared_error;
    }
    const bool calibrated = document_->calibration() != nullptr;
    allocateDialog_->setErrorLabel(calibrated ? tr("summed relative output error") : tr("summed squared weight error"));
    QString summary = (calibrated ? tr("Chosen: %1 bits/weight, summed relative output error %2 (%n layer override(s))",
                                       nullptr, static_cast<int>(a->plan.overrides.size()))
                                  : tr("Chosen: %1 bits/weight, summed squared error %2 (%n layer override(s))", nullptr,
                                       static_cast<int>(a->plan.overrides.size())))
                          .arg(a->bits_per_weight, 0, 'f', 3)
                          .arg(a->squared_error, 0, 'g', 4);
    if (!a->fixed.empty()) summary += tr("; %1 layer(s) fit no candidate and stay f16").arg(a->fixed.size());
    allocateDialog_->setResult(bits, error, a->bits_per_weight, a->squared_error, summary);
  }
  if (applyAllocationWhenReady_) {
    applyAllocationWhenReady_ = false;
    applyAllocation();
  }
}

bool MainWindow::applyAllocation() {
  const auto a = document_->allocation();
  const auto model = document_->model();
  if (!a || !model) return false;
  auto configs = resolve_plan(a->plan, *model);
  if (!configs) {
    reportError(tr("Cannot apply the allocation"), QString::fromStdString(configs.error().message));
    return false;
  }
  plan_->tableModel()->replaceConfigs(*configs, QString::fromStdString(a->plan.preset),
                                      tr("Allocate to %1 bits/weight").arg(a->bits_per_weight, 0, 'f', 2));
  emit planAllocated();
  return true;
}

}  // namespace qs::app
