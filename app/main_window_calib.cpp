// MainWindow: calibration — the Calibrate dialog, calibration files, and the
// activation views (the selected layer's input in the histogram, channel and
// heatmap tabs, switched with "Weights | Input activations").
#include <QAction>
#include <QActionGroup>
#include <QToolBar>
#include <QDir>
#include <QFileDialog>
#include <QFileInfo>
#include <QLabel>
#include <QMenu>
#include <QMenuBar>
#include <QProgressBar>
#include <QStatusBar>
#include <QTabWidget>
#include <cmath>

#include "app/document.h"
#include "app/export_job.h"
#include "app/main_window.h"
#include "app/plan_document.h"
#include "stats/layer_summary.h"
#include "stats/outliers.h"
#include "widgets/calibrate_dialog.h"
#include "widgets/channel_plot.h"
#include "widgets/display_format.h"
#include "widgets/heatmap_plot.h"
#include "widgets/histogram_plot.h"
#include "widgets/plan_table.h"
#include "widgets/quant_error_view.h"

namespace qs::app {

namespace {

// The capture's |x| histogram (quarter-octave bins) as a Histogram over
// log2|x|, bin i at [lo + i/4, lo + (i+1)/4): the bins are equal steps of the
// exponent. Trimmed to the occupied bins so that the plot is not mostly empty.
Histogram activationHistogram(const InputStats& s) {
  Histogram h;
  std::size_t first = s.histogram.size(), last = 0;
  for (std::size_t i = 0; i < s.histogram.size(); ++i)
    if (s.histogram[i] > 0) {
      first = std::min(first, i);
      last = i;
    }
  if (first > last) {  // nothing captured
    first = 0;
    last = s.histogram.empty() ? 0 : s.histogram.size() - 1;
  }
  constexpr double step = 1.0 / kActHistBinsPerOctave;
  h.lo = kActHistLog2Min + step * static_cast<double>(first);
  h.hi = kActHistLog2Min + step * static_cast<double>(last + 1);
  for (std::size_t i = first; i <= last && i < s.histogram.size(); ++i)
    h.counts.push_back(static_cast<std::uint64_t>(s.histogram[i]));
  h.below = static_cast<std::uint64_t>(s.underflow);
  h.above = static_cast<std::uint64_t>(s.overflow);
  return h;
}

QString inputTitle(const QString& layer) { return QObject::tr("input of %1").arg(layer); }

}  // namespace

void MainWindow::buildCalibration() {
  // Tools ▸ Calibrate…, before Help.
  auto* tools = new QMenu(tr("&Tools"), this);
  calibrateAction_ = tools->addAction(tr("&Calibrate…"), this, &MainWindow::openCalibrateDialog);
  calibrateAction_->setShortcut(QKeySequence(tr("Ctrl+Shift+K")));
  calibrateAction_->setStatusTip(tr("Run the model over calibration text: activation statistics and Hessians"));
  calibrateAction_->setEnabled(false);  // until a model is open
  tools->addAction(tr("Open Calibration &File…"), this, &MainWindow::chooseCalibrationToOpen);
  const auto menus = menuBar()->actions();
  if (!menus.isEmpty()) menuBar()->insertMenu(menus.back(), tools);
  else menuBar()->addMenu(tools);

  // Weights | Input activations: a toolbar switch (and View menu entries)
  // that turns the histogram, channel and heatmap views together.
  auto* show = new QActionGroup(this);
  show->setExclusive(true);
  QAction* weights = show->addAction(tr("&Weights"));
  weights->setCheckable(true);
  weights->setChecked(true);
  weights->setToolTip(tr("The views show the selected layer's weight"));
  activationsAction_ = show->addAction(tr("Input &Activations"));
  activationsAction_->setObjectName(QStringLiteral("showActivations"));
  activationsAction_->setCheckable(true);
  activationsAction_->setEnabled(false);
  activationsAction_->setShortcut(QKeySequence(tr("Ctrl+Shift+A")));
  activationsAction_->setToolTip(tr("Calibrate the model (Tools ▸ Calibrate…) or open its calibration file to see "
                                    "the activations at each linear layer's input"));
  auto* bar = addToolBar(tr("Show"));
  bar->setObjectName(QStringLiteral("showToolBar"));
  bar->setMovable(false);
  bar->setToolButtonStyle(Qt::ToolButtonTextOnly);
  bar->addWidget(new QLabel(tr("  Show: "), bar));
  bar->addAction(weights);
  bar->addAction(activationsAction_);
  bar->addSeparator();
  bar->addAction(calibrateAction_);
  weightsAction_ = weights;
  if (QMenu* view = menuBar()->findChild<QMenu*>(QStringLiteral("viewMenu"))) {
    QAction* first = view->actions().value(0);
    view->insertAction(first, weights);
    view->insertAction(first, activationsAction_);
    view->insertSeparator(first);
  }
  connect(activationsAction_, &QAction::toggled, this, &MainWindow::setActivationsShown);

  calibLabel_ = new QLabel(this);
  calibLabel_->setObjectName(QStringLiteral("calibrationLabel"));
  statusBar()->insertPermanentWidget(1, calibLabel_);

  connect(document_, &Document::modelOpened, this, [this] {
    calibrateAction_->setEnabled(true);
    if (calibrateDialog_) {
      calibrateDialog_->setRunning(false);
      calibrateDialog_->showResult({});
      calibrateDialog_->hide();
    }
    onCalibrationChanged();
    // The model's own calibration file, from an earlier run: load it quietly.
    const QString path = document_->defaultCalibrationPath();
    if (!path.isEmpty() && QFileInfo::exists(path)) document_->loadCalibration(path, true);
  });
  connect(document_, &Document::calibrationLoadStarted, this, [this](const QString& path, bool) {
    statusBar()->showMessage(tr("Loading calibration data from %1…").arg(path));
  });
  connect(document_, &Document::calibrationLoadFailed, this,
          [this](const QString& path, const QString& message, bool automatic) {
            const QString text = message.contains(path) ? message : QStringLiteral("%1: %2").arg(path, message);
            if (automatic) {
              lastError_ = text;
              statusBar()->showMessage(tr("Calibration file not loaded: %1").arg(text), 15000);
              emit errorReported(text);
            } else {
              reportError(tr("Cannot load calibration data"), text);
            }
          });
  connect(document_, &Document::calibrationChanged, this, &MainWindow::onCalibrationChanged);
  connect(document_, &Document::calibrationProgress, this, [this](double f) {
    if (calibrateDialog_) calibrateDialog_->setProgress(f);
    progress_->setValue(static_cast<int>(f * 100.0));
    progress_->show();
  });
  connect(document_, &Document::calibrationFinished, this, [this](const CalibrateOutcome& o) {
    progress_->hide();
    const ActivationCapture& cap = o.file->run.capture;
    QFileInfo info(QString::fromStdString(o.file->path));
    QString text = tr("Calibrated on %1 tokens (%2 sequences × %3) in %4 s, forward pass on %5 → %6 (%7)")
                       .arg(cap.tokens)
                       .arg(cap.sequences)
                       .arg(cap.seq_len)
                       .arg(o.seconds, 0, 'f', 1)
                       .arg(QString::fromStdString(o.file->run.forward_runner), info.filePath(),
                            ui::humanBytes(static_cast<std::uint64_t>(info.size())));
    if (!o.file->run.runner_fallback.empty())
      text += tr(" — the device was not used: %1").arg(QString::fromStdString(o.file->run.runner_fallback));
    if (calibrateDialog_) {
      calibrateDialog_->setRunning(false);
      calibrateDialog_->showResult(text);
    }
    statusBar()->showMessage(text, 10000);
    emit calibrationRunEnded();
  });
  connect(document_, &Document::calibrationFailed, this, [this](const QString& message) {
    progress_->hide();
    if (calibrateDialog_) {
      calibrateDialog_->setRunning(false);
      calibrateDialog_->showError(message);
    }
    lastError_ = message;
    statusBar()->showMessage(tr("Calibration failed: %1").arg(message), 10000);
    emit errorReported(message);
    emit calibrationRunEnded();
  });
  connect(document_, &Document::calibrationCancelled, this, [this] {
    progress_->hide();
    if (calibrateDialog_) {
      calibrateDialog_->setRunning(false);
      calibrateDialog_->showResult(tr("Cancelled: no calibration file was written."));
    }
    statusBar()->showMessage(tr("Calibration cancelled"), 5000);
    emit calibrationRunEnded();
  });
}

ui::CalibrateDialog* MainWindow::calibrateDialog() {
  if (calibrateDialog_) return calibrateDialog_;
  calibrateDialog_ = new ui::CalibrateDialog(this);
  connect(calibrateDialog_, &ui::CalibrateDialog::startRequested, this, &MainWindow::startCalibration);
  connect(calibrateDialog_, &ui::CalibrateDialog::cancelRequested, document_, &Document::cancelCalibration);
  connect(calibrateDialog_, &ui::CalibrateDialog::browseTextRequested, this, [this] {
    const QStringList files = QFileDialog::getOpenFileNames(calibrateDialog_, tr("Calibration Text"), QString(),
                                                            tr("Text (*.txt *.md *.json *.jsonl);;All files (*)"));
    if (!files.isEmpty()) calibrateDialog_->setTextFiles(files);
  });
  connect(calibrateDialog_, &ui::CalibrateDialog::browseOutputRequested, this, [this] {
    const QString path = QFileDialog::getSaveFileName(calibrateDialog_, tr("Calibration File"),
                                                      calibrateDialog_->settings().outputPath,
                                                      tr("Calibration files (*.qscalib.h5 *.h5);;All files (*)"));
    if (!path.isEmpty()) calibrateDialog_->setOutputPath(path);
  });
  return calibrateDialog_;
}

void MainWindow::openCalibrateDialog() {
  const auto model = document_->model();
  if (!model) return;
  ui::CalibrateDialog* d = calibrateDialog();
  if (!d->isRunning()) {
    d->setModel(QFileInfo(document_->path()).fileName(), 0);
    d->setForwardPass(QString::fromStdString(document_->backend().description()));
    // Another model than last time: its default destination (next to it).
    if (d->property("modelPath").toString() != document_->path()) {
      d->setOutputPath(document_->defaultCalibrationPath());
      d->setProperty("modelPath", document_->path());
    }
  }
  d->show();
  d->raise();
  d->activateWindow();
}

void MainWindow::startCalibration(const ui::CalibrateSettings& settings) {
  if (!document_->model()) return;
  ui::CalibrateDialog* d = calibrateDialog();
  QString out = settings.outputPath;
  if (const QString problem = calibrationFolderProblem(out); !problem.isEmpty()) {
    if (!interactiveErrors_) {
      d->showError(tr("%1: choose where the calibration file goes").arg(problem));
      emit calibrationRunEnded();
      return;
    }
    out = QFileDialog::getSaveFileName(d, tr("%1 — Save the Calibration File Elsewhere").arg(problem),
                                       QDir::home().filePath(QFileInfo(out).fileName()),
                                       tr("Calibration files (*.qscalib.h5 *.h5);;All files (*)"));
    if (out.isEmpty()) return;
    d->setOutputPath(out);
  }
  // Before any work: the file must not replace the model (the write would rename over it).
  if (const QString clash = destinationConflict(*document_->model(), out); !clash.isEmpty()) {
    d->showError(clash);
    emit calibrationRunEnded();
    return;
  }
  CalibrateJobRequest request;
  request.textFiles = settings.textFiles;
  request.sequences = settings.sequences;
  request.seqLen = settings.seqLen;
  request.seed = settings.seed;
  request.outputPath = out;
  d->setRunning(true);
  progress_->setValue(0);
  progress_->show();
  document_->requestCalibration(request);
}

void MainWindow::loadCalibration(const QString& path) { document_->loadCalibration(path, false); }

void MainWindow::chooseCalibrationToOpen() {
  if (!document_->model()) return;
  const QString start = QFileInfo(document_->defaultCalibrationPath()).absolutePath();
  const QString path = QFileDialog::getOpenFileName(this, tr("Open Calibration"), start,
                                                    tr("Calibration files (*.qscalib.h5 *.h5);;All files (*)"));
  if (!path.isEmpty()) loadCalibration(path);
}

void MainWindow::onCalibrationChanged() {
  const auto calib = document_->calibration();
  const bool on = calib != nullptr;
  activationsAction_->setEnabled(on);
  if (on) {
    activationsAction_->setToolTip(tr("Show the selected layer's input activations (from %1)")
                                       .arg(QString::fromStdString(calib->path)));
    calibLabel_->setText(tr("calibrated: %1 tokens").arg(calib->run.capture.tokens));
    calibLabel_->setToolTip(QString::fromStdString(calib->path));
    statusBar()->showMessage(tr("Calibration data from %1 (%2 tokens)")
                                 .arg(QString::fromStdString(calib->path))
                                 .arg(calib->run.capture.tokens),
                             8000);
  } else {
    calibLabel_->clear();
    if (activations_) setActivationsShown(false);
  }
  // The output error needs the Hessians: measure every row again (or drop the column).
  plan_->setOutputErrorAvailable(on);
  // The before/after view of a clip/GPTQ/AWQ row depends on the statistics: ask again on selection.
  plan_->errorView()->showPlaceholder(tr("Select a row to see its weights before and after quantization"));
  if (on) document_->plan()->remeasureAll();
  if (const int row = plan_->selectedRows().value(0, -1); row >= 0) onPlanLayerSelected(row);
  if (activations_) {
    heatmapTensor_ = -1;
    showActivationViews();
    syncHeatmap();
  }
  if (on) emit calibrationLoaded(QString::fromStdString(calib->path));
}

void MainWindow::setActivationsShown(bool on) {
  if (on && !document_->calibration()) on = false;
  const bool changed = on != activations_;
  activations_ = on;
  // The switch follows (its toggled signal comes back here and finds nothing changed).
  (on ? activationsAction_ : weightsAction_)->setChecked(true);
  if (!changed) return;
  if (on) {
    showActivationViews();
  } else {
    channels_->setInputOnly(false);
    histogram_->setValueLabel(tr("value"));
    if (current_ >= 0 && document_->cachedStats(current_)) {
      onStatsReady(current_);
    } else if (current_ >= 0 && document_->model()) {  // the weight's statistics are still coming
      const QString name = QString::fromStdString(document_->model()->tensors[static_cast<std::size_t>(current_)].name);
      histogram_->showBusy(tr("Computing statistics of\n%1…").arg(name));
      channels_->showBusy(tr("Computing statistics of\n%1…").arg(name));
    }
  }
  syncHeatmap();
}

const InputStats* MainWindow::currentInputStats(QString* layerName) const {
  const auto model = document_->model();
  const auto calib = document_->calibration();
  if (!model || !calib || current_ < 0) return nullptr;
  for (const Layer& l : model->layers) {
    if (l.weight != static_cast<std::size_t>(current_)) continue;
    const InputStats* s = calib->run.capture.find_for(l.role, l.block);
    if (s && layerName) *layerName = QString::fromStdString(l.name);
    return s;
  }
  return nullptr;
}

void MainWindow::showActivationViews() {
  if (!activations_ || current_ < 0) return;
  const auto model = document_->model();
  if (!model) return;
  QString layer;
  const InputStats* s = currentInputStats(&layer);
  channels_->setInputOnly(true, QStringLiteral("|x|"));
  if (!s) {
    const QString name = QString::fromStdString(model->tensors[static_cast<std::size_t>(current_)].name);
    const QString why = tr("%1 is not the weight of a calibrated linear layer:\nno input activations to show "
                           "(switch to Weights)")
                            .arg(name);
    histogram_->showPlaceholder(why);
    channels_->showPlaceholder(why);
    emit activationsShownFor(current_);
    return;
  }
  const QString title = inputTitle(layer);
  histogram_->setValueLabel(tr("log₂ |x|  (quarter-octave bins)"));
  histogram_->setHistogram(activationHistogram(*s), title);

  LayerSummary summary;
  summary.channels.cols = s->abs_max;
  summary.channels.cols_rms.resize(s->mean_sq.size());
  for (std::size_t i = 0; i < s->mean_sq.size(); ++i)
    summary.channels.cols_rms[i] = std::sqrt(std::max(0.0f, s->mean_sq[i]));
  summary.outlier_in = outlier_channels(s->abs_max, document_->outlierFactor());  // the weights' rule
  channels_->setSummary(summary, title, document_->outlierRule());
  emit activationsShownFor(current_);
}

void MainWindow::syncActivationHeatmap() {
  heatmapTensor_ = current_;
  heatmapActivations_ = true;
  QString layer;
  const InputStats* s = currentInputStats(&layer);
  heatmap_->setAxisNames(tr("token"), tr("input channel"), QStringLiteral("|x|"));
  if (!s || s->heatmap_tokens < 1 || s->heatmap.empty()) {
    heatmap_->showPlaceholder(s ? tr("The calibration file holds no channel × token map for this input")
                                : tr("Not the weight of a calibrated linear layer: no input activations"));
    emit heatmapShown(current_);
    return;
  }
  heatmap_->setTensor(inputTitle(layer), s->heatmap_tokens, s->cols);
}

void MainWindow::answerActivationHeatmap(const HeatmapRequest& request) {
  const InputStats* s = currentInputStats();
  if (!s || s->heatmap.empty()) return;
  auto map = document_->smallHeatmap(s->heatmap.data(), s->heatmap_tokens, s->cols, request);
  if (!map) {
    heatmap_->showError(tr("Could not draw the activation map:\n%1").arg(QString::fromStdString(map.error().message)));
    return;
  }
  heatmap_->setHeatmap(*map);
  emit heatmapShown(current_);
}

}  // namespace qs::app
