#include "app/main_window.h"

#include <QAction>
#include <QActionGroup>
#include <QApplication>
#include <QClipboard>
#include <QDir>
#include <QDockWidget>
#include <QDragEnterEvent>
#include <QDropEvent>
#include <QFileDialog>
#include <QFileInfo>
#include <QInputDialog>
#include <QLabel>
#include <QMenuBar>
#include <QMessageBox>
#include <QMimeData>
#include <QProgressBar>
#include <QSaveFile>
#include <QStatusBar>
#include <QTabWidget>
#include <QUndoStack>

#include "app/document.h"
#include "app/recent_files.h"
#include "calib/device.h"
#include "quant/int_grid.h"
#include "widgets/channel_plot.h"
#include "widgets/display_format.h"
#include "widgets/heatmap_plot.h"
#include "widgets/histogram_plot.h"
#include "widgets/layer_tree.h"
#include "widgets/model_overview.h"
#include "widgets/plan_table.h"
#include "widgets/plot_export.h"
#include "widgets/stats_panel.h"

namespace qs::app {

namespace {

// The tensor shown first: the first linear layer inside a block (more telling
// than the embedding), else the first layer, else the first tensor.
int defaultTensor(const Model& m) {
  for (const Layer& l : m.layers)
    if (l.block >= 0) return static_cast<int>(l.weight);
  if (!m.layers.empty()) return static_cast<int>(m.layers.front().weight);
  return m.tensors.empty() ? -1 : 0;
}

// A plot title as a file name: no path separators or characters that trouble shells.
QString fileNameOf(QString title) {
  static const QString bad = QStringLiteral("/\\:*?\"<>| ");
  for (QChar& c : title)
    if (bad.contains(c)) c = QLatin1Char('_');
  return title.isEmpty() ? QStringLiteral("plot") : title;
}

QString localPathOf(const QMimeData* mime) {
  if (!mime || !mime->hasUrls() || mime->urls().isEmpty()) return {};
  const QUrl url = mime->urls().front();
  return url.isLocalFile() ? url.toLocalFile() : QString();
}

}  // namespace

MainWindow::MainWindow(std::shared_ptr<Backend> backend, QWidget* parent)
    : QMainWindow(parent),
      document_(new Document(backend, this)),
      tree_(new ui::LayerTree(this)),
      tabs_(new QTabWidget(this)),
      histogram_(new ui::HistogramPlot(this)),
      channels_(new ui::ChannelPlot(this)),
      overview_(new ui::ModelOverview(this)),
      heatmap_(new ui::HeatmapPlot(this)),
      stats_(new ui::StatsPanel(this)),
      plan_(new ui::PlanEditor(this)) {
  setWindowTitle(tr("QuantScope"));
  setAcceptDrops(true);
  tabs_->setDocumentMode(true);
  tabs_->addTab(histogram_, tr("Histogram"));
  tabs_->addTab(channels_, tr("Channels"));
  tabs_->addTab(overview_, tr("Model overview"));
  tabs_->addTab(heatmap_, tr("Heatmap"));
  tabs_->addTab(plan_, tr("Plan"));
  setCentralWidget(tabs_);

  auto* treeDock = new QDockWidget(tr("Layers"), this);
  treeDock->setObjectName(QStringLiteral("layersDock"));
  treeDock->setWidget(tree_);
  addDockWidget(Qt::LeftDockWidgetArea, treeDock);
  auto* statsDock = new QDockWidget(tr("Statistics"), this);
  statsDock->setObjectName(QStringLiteral("statsDock"));
  statsDock->setWidget(stats_);
  addDockWidget(Qt::RightDockWidgetArea, statsDock);
  // Wide enough for "self_attn.q_proj.weight | q | [2048, 256] | F16 | 524.3 K" on the left
  // and for labelled numbers on the right; the histogram, the point of the window, gets the rest.
  resizeDocks({treeDock, statsDock}, {445, 280}, Qt::Horizontal);

  buildMenus();
  QMenu* viewMenu = menuBar()->findChild<QMenu*>(QStringLiteral("viewMenu"));
  if (viewMenu) {
    viewMenu->addSeparator();
    viewMenu->addAction(treeDock->toggleViewAction());
    viewMenu->addAction(statsDock->toggleViewAction());
  }
  buildStatusBar(*backend);

  connect(document_, &Document::openStarted, this,
          [this](const QString& path) { statusBar()->showMessage(tr("Opening %1…").arg(path)); });
  connect(document_, &Document::modelOpened, this, &MainWindow::onModelOpened);
  connect(document_, &Document::openFailed, this, &MainWindow::onOpenFailed);
  connect(document_, &Document::statsReady, this, &MainWindow::onStatsReady);
  connect(document_, &Document::statsFailed, this, &MainWindow::onStatsFailed);
  connect(document_, &Document::statsStarted, this, [this] {
    progress_->setValue(0);
    progress_->show();
  });
  connect(document_, &Document::statsProgress, this,
          [this](int, double f) { progress_->setValue(static_cast<int>(f * 100.0)); });
  connect(tree_, &ui::LayerTree::tensorSelected, this, &MainWindow::onTensorSelected);

  connect(document_, &Document::overviewStarted, this,
          [this] { overview_->showBusy(tr("Summarising every layer of the model…")); });
  connect(document_, &Document::overviewProgress, this, [this](double f) {
    overview_->showBusy(tr("Summarising every layer of the model… %1 %").arg(static_cast<int>(f * 100.0)));
  });
  connect(document_, &Document::overviewReady, this, &MainWindow::onOverviewReady);
  connect(document_, &Document::overviewFailed, this, [this](const QString& message) {
    overview_->showError(tr("Could not summarise the layers:\n%1").arg(message));
  });
  connect(overview_, &ui::ModelOverview::layerActivated, this, &MainWindow::onLayerActivated);
  connect(channels_, &ui::ChannelPlot::channelActivated, this, [this](ui::ChannelPlot::Axis axis, int channel) {
    const QString which = axis == ui::ChannelPlot::Axis::Input ? tr("input") : tr("output");
    statusBar()->showMessage(tr("%1: %2 channel %3").arg(channels_->title(), which).arg(channel), 5000);
  });

  // The heatmap is computed for the weight in view only when its tab is shown.
  connect(tabs_, &QTabWidget::currentChanged, this, &MainWindow::syncHeatmap);
  connect(heatmap_, &ui::HeatmapPlot::regionRequested, this, [this](const HeatmapRequest& request) {
    if (heatmapTensor_ >= 0 && heatmapActivations_) answerActivationHeatmap(request);
    else if (heatmapTensor_ >= 0) document_->requestHeatmap(heatmapTensor_, request);
  });
  connect(document_, &Document::heatmapReady, this, &MainWindow::onHeatmapReady);
  connect(document_, &Document::heatmapFailed, this, [this](int tensor, const QString& message) {
    if (tensor == heatmapTensor_) heatmap_->showError(tr("Could not compute the heatmap:\n%1").arg(message));
  });

  // Histogram comparison: from the tree's context menu; cleared from the plot's.
  connect(tree_, &ui::LayerTree::compareRequested, this, &MainWindow::compareWith);
  connect(histogram_, &ui::HistogramPlot::comparisonCleared, this, &MainWindow::clearComparison);
  connect(histogram_, &ui::HistogramPlot::overlaysCleared, this, [this] { setGridOverlay(0, false); });
  connect(document_, &Document::comparisonReady, this, &MainWindow::onComparisonReady);
  connect(document_, &Document::comparisonFailed, this, [this](int tensor, const QString& message) {
    if (tensor == compareTensor_) statusBar()->showMessage(tr("Comparison failed: %1").arg(message), 10000);
  });

  // Every plot's context menu: save, copy, CSV.
  auto route = [this](ui::ExportablePlot* plot) {
    return [this, plot](ui::ExportAction a) { runExport(plot, static_cast<int>(a)); };
  };
  connect(histogram_, &ui::HistogramPlot::exportRequested, this, route(histogram_));
  connect(channels_, &ui::ChannelPlot::exportRequested, this, route(channels_));
  connect(overview_, &ui::ModelOverview::exportRequested, this, route(overview_));
  connect(heatmap_, &ui::HeatmapPlot::exportRequested, this, route(heatmap_));

  connectPlanEditor();
  buildCalibration();

  exportDir_ = QDir::homePath();
  resize(1280, 800);
}

MainWindow::~MainWindow() = default;

void MainWindow::buildMenus() {
  QMenu* file = menuBar()->addMenu(tr("&File"));
  QAction* openFile = file->addAction(tr("&Open File…"), this, &MainWindow::chooseFile);
  openFile->setShortcut(QKeySequence::Open);
  QAction* openDir = file->addAction(tr("Open &Directory…"), this, &MainWindow::chooseDirectory);
  openDir->setShortcut(QKeySequence(tr("Ctrl+Shift+O")));
  file->addAction(tr("Open D&emo Model"), this, &MainWindow::openDemo);
  recent_ = new RecentFiles(file->addMenu(tr("&Recent Files")), this);
  connect(recent_, &RecentFiles::openRequested, this, &MainWindow::openPath);
  file->addSeparator();
  file->addAction(tr("Open &Plan…"), this, &MainWindow::choosePlanToOpen);
  file->addAction(tr("Open &Calibration…"), this, &MainWindow::chooseCalibrationToOpen);
  QAction* savePlanAction = file->addAction(tr("Sa&ve Plan…"), this, &MainWindow::choosePlanToSave);
  savePlanAction->setShortcut(QKeySequence::Save);
  exportAction_ = file->addAction(tr("&Export…"), this, &MainWindow::openExportDialog);
  exportAction_->setShortcut(QKeySequence(tr("Ctrl+E")));
  exportAction_->setStatusTip(tr("Write the quantized checkpoint: GGUF, GPTQ, HDF5 or fake-quant"));
  exportAction_->setEnabled(false);  // until a model is open
  file->addSeparator();
  QAction* savePlotAction = file->addAction(tr("&Save Plot As…"), this, [this] {
    runExport(currentPlot(), static_cast<int>(ui::ExportAction::SaveImage));
  });
  savePlotAction->setShortcut(QKeySequence(tr("Ctrl+Shift+S")));
  file->addAction(tr("E&xport Plot Data as CSV…"), this,
                  [this] { runExport(currentPlot(), static_cast<int>(ui::ExportAction::SaveCsv)); });
  file->addSeparator();
  QAction* quit = file->addAction(tr("&Quit"), qApp, &QApplication::closeAllWindows);
  quit->setShortcut(QKeySequence::Quit);

  QMenu* edit = menuBar()->addMenu(tr("&Edit"));
  QAction* undo = planUndoStack()->createUndoAction(this, tr("&Undo"));
  undo->setShortcut(QKeySequence::Undo);
  undo->setObjectName(QStringLiteral("planUndo"));
  QAction* redo = planUndoStack()->createRedoAction(this, tr("&Redo"));
  redo->setShortcut(QKeySequence::Redo);
  redo->setObjectName(QStringLiteral("planRedo"));
  edit->addAction(undo);
  edit->addAction(redo);
  edit->addSeparator();
  QAction* copyImage = edit->addAction(tr("&Copy Plot Image"), this, [this] {
    runExport(currentPlot(), static_cast<int>(ui::ExportAction::CopyImage));
  });
  copyImage->setShortcut(QKeySequence(tr("Ctrl+Shift+C")));
  edit->addAction(tr("Copy Plot &Data as CSV"), this,
                  [this] { runExport(currentPlot(), static_cast<int>(ui::ExportAction::CopyCsv)); });

  QMenu* view = menuBar()->addMenu(tr("&View"));
  view->setObjectName(QStringLiteral("viewMenu"));
  logYAction_ = view->addAction(tr("&Log-scale Counts"));
  logYAction_->setCheckable(true);
  logYAction_->setChecked(histogram_->logY());
  logYAction_->setShortcut(QKeySequence(tr("Ctrl+L")));
  connect(logYAction_, &QAction::toggled, histogram_, &ui::HistogramPlot::setLogY);
  // Reset Zoom: of the view on screen.
  QAction* reset = view->addAction(tr("&Reset Zoom"), this, [this] {
    QWidget* shown = tabs_->currentWidget();
    if (shown == histogram_) histogram_->resetView();
    else if (shown == channels_) channels_->resetView();
    else if (shown == overview_) overview_->resetView();
    else if (shown == heatmap_) heatmap_->resetView();
  });
  reset->setShortcut(QKeySequence(tr("Ctrl+0")));
  view->addSeparator();
  QMenu* grid = view->addMenu(tr("Histogram &Grid Overlay"));
  gridGroup_ = new QActionGroup(this);
  struct GridChoice {
    QString text;
    int bits;
    bool symmetric;
  };
  const GridChoice choices[] = {{tr("None"), 0, false},
                                {tr("int8, asymmetric (per tensor, min–max)"), 8, false},
                                {tr("int4, asymmetric (per tensor, min–max)"), 4, false},
                                {tr("int4, symmetric (per tensor, abs-max)"), 4, true},
                                {tr("int3, asymmetric (per tensor, min–max)"), 3, false},
                                {tr("int2, asymmetric (per tensor, min–max)"), 2, false}};
  for (const GridChoice& c : choices) {
    QAction* a = grid->addAction(c.text, this, [this, c] { setGridOverlay(c.bits, c.symmetric); });
    a->setCheckable(true);
    a->setChecked(c.bits == 0);
    a->setData(QStringLiteral("%1%2").arg(c.bits).arg(c.symmetric ? QStringLiteral("s") : QString()));
    gridGroup_->addAction(a);
  }
  view->addAction(tr("Compare Histogram &With…"), this, &MainWindow::chooseComparison);
  view->addAction(tr("Clear Histogram &Comparison"), this, &MainWindow::clearComparison);

  QMenu* help = menuBar()->addMenu(tr("&Help"));
  help->addAction(tr("&About QuantScope"), this, &MainWindow::showAbout);
  help->addAction(tr("About &Qt"), qApp, &QApplication::aboutQt);
}

void MainWindow::buildStatusBar(const Backend& backend) {
  progress_ = new QProgressBar(this);
  progress_->setRange(0, 100);
  progress_->setMaximumWidth(160);
  progress_->setTextVisible(false);
  progress_->hide();
  statusBar()->addPermanentWidget(progress_);

  modelLabel_ = new QLabel(this);
  statusBar()->addPermanentWidget(modelLabel_);
  backendLabel_ = new QLabel(QString::fromStdString(backend.description()), this);
  backendLabel_->setObjectName(QStringLiteral("backendLabel"));
  // When "auto" fell back to the CPU, say why where the user looks for it.
  const std::string why = backend_fallback_reason();
  backendLabel_->setToolTip(why.empty() ? tr("Compute backend")
                                        : tr("Compute backend. CUDA not used: %1").arg(QString::fromStdString(why)));
  statusBar()->addPermanentWidget(backendLabel_);
}

void MainWindow::openPath(const QString& path) {
  openingDemo_ = false;
  document_->open(path);
}

void MainWindow::openDemo() {
  openingDemo_ = true;
  document_->openDemo();
}

void MainWindow::setPendingSelection(const QString& tensorName) { pendingSelection_ = tensorName; }

void MainWindow::onModelOpened() {
  const auto model = document_->model();
  const QString path = document_->path();
  setWindowTitle(tr("%1[*] — QuantScope").arg(openingDemo_ ? tr("Demo model (%1)").arg(path) : path));
  if (!openingDemo_) recent_->add(path);

  modelLabel_->setText(tr("%1 blocks · %2 linear layers · %3 tensors · %4 params · %5")
                           .arg(model->block_count())
                           .arg(model->layers.size())
                           .arg(model->tensors.size())
                           .arg(ui::humanCount(model->parameter_count()))
                           .arg(ui::humanBytes(model->weight_bytes())));
  modelLabel_->setToolTip(QStringLiteral("%1 (%2)").arg(path, ui::fromStd(model_format_name(model->format))));
  statusBar()->showMessage(tr("Opened %1").arg(path), 5000);

  resetPlan();
  exportAction_->setEnabled(true);
  if (exportDialog_ && exportDialog_->isVisible()) configureExportDialog();

  current_ = -1;
  progress_->hide();
  stats_->clear();
  tree_->setModel(*model);
  histogram_->showPlaceholder(tr("Select a layer in the tree to see its weight histogram"));
  channels_->showPlaceholder(tr("Select a layer in the tree to see its channels"));
  heatmapTensor_ = -1;
  heatmap_->showPlaceholder(tr("Select a layer in the tree to see its |W| heatmap"));
  compareTensor_ = -1;

  int first = defaultTensor(*model);
  if (!pendingSelection_.isEmpty()) {
    if (auto i = model->find_tensor(pendingSelection_.toStdString())) first = static_cast<int>(*i);
    else reportError(tr("No such tensor"), tr("%1 has no tensor named \"%2\"").arg(path, pendingSelection_));
    pendingSelection_.clear();
  }
  if (first >= 0) tree_->selectTensor(first);
}

void MainWindow::onOpenFailed(const QString& path, const QString& message) {
  // Core messages name the file; add it when one does not.
  const QString text = message.contains(path) ? message : QStringLiteral("%1: %2").arg(path, message);
  reportError(tr("Cannot open model"), text);
}

void MainWindow::reportError(const QString& title, const QString& message) {
  lastError_ = message;
  statusBar()->showMessage(message, 10000);
  emit errorReported(message);
  if (interactiveErrors_) QMessageBox::critical(this, title, message);
}

void MainWindow::onTensorSelected(int tensor) {
  const auto model = document_->model();
  if (!model || tensor < 0 || static_cast<std::size_t>(tensor) >= model->tensors.size()) return;
  current_ = tensor;
  const TensorInfo& t = model->tensors[static_cast<std::size_t>(tensor)];
  stats_->setTensor(t);
  histogram_->showBusy(tr("Computing statistics of\n%1…").arg(QString::fromStdString(t.name)));
  channels_->showBusy(tr("Computing statistics of\n%1…").arg(QString::fromStdString(t.name)));
  statsClock_.start();
  document_->requestStats(tensor);  // answers at once from the cache, else from a job
  if (activations_) showActivationViews();
  syncHeatmap();
}

void MainWindow::onStatsReady(int tensor) {
  if (tensor != current_) return;
  const auto summary = document_->cachedStats(tensor);
  const auto model = document_->model();
  if (!summary || !model) return;
  progress_->hide();
  const QString name = QString::fromStdString(model->tensors[static_cast<std::size_t>(tensor)].name);
  if (activations_) {
    showActivationViews();  // the views show the layer's input; the stats panel its weight
  } else {
    histogram_->setValueLabel(tr("value"));
    histogram_->setHistogram(summary->stats.hist, name);
    applyHistogramOverlays();
    channels_->setInputOnly(false);
    channels_->setSummary(*summary, name, document_->outlierRule());
  }
  stats_->setSummary(*summary, document_->outlierRule());
  statusBar()->showMessage(tr("Statistics of %1 in %2 ms").arg(name).arg(statsClock_.elapsed()), 5000);
  emit statsShown(tensor);
}

void MainWindow::onStatsFailed(int tensor, const QString& message) {
  if (tensor != current_) return;
  progress_->hide();
  histogram_->showError(tr("Could not compute the statistics:\n%1").arg(message));
  channels_->showError(tr("Could not compute the statistics:\n%1").arg(message));
  stats_->setStatsMessage(message);
  statusBar()->showMessage(message, 10000);
}

bool MainWindow::showTab(const QString& name) {
  const QString wanted = name.trimmed().toLower();
  for (int i = 0; i < tabs_->count() && !wanted.isEmpty(); ++i) {
    const QString title = tabs_->tabText(i).remove(QLatin1Char('&')).toLower();
    if (title.startsWith(wanted) || title.endsWith(wanted)) {
      tabs_->setCurrentIndex(i);
      return true;
    }
  }
  return false;
}

void MainWindow::onOverviewReady() {
  const auto model = document_->model();
  const auto figures = document_->overview();
  if (model && figures) overview_->setFigures(*model, *figures);
}

void MainWindow::onLayerActivated(int layer) {
  const auto model = document_->model();
  if (!model || layer < 0 || static_cast<std::size_t>(layer) >= model->layers.size()) return;
  tree_->selectTensor(static_cast<int>(model->layers[static_cast<std::size_t>(layer)].weight));  // stats follow
}

void MainWindow::chooseFile() {
  const QString path = QFileDialog::getOpenFileName(
      this, tr("Open Model"), QString(),
      tr("Models (*.safetensors *.safetensors.index.json *.json *.gguf *.h5 *.keras);;All files (*)"));
  if (!path.isEmpty()) openPath(path);
}

void MainWindow::chooseDirectory() {
  const QString dir = QFileDialog::getExistingDirectory(this, tr("Open Model Directory"));
  if (!dir.isEmpty()) openPath(dir);
}

ui::ExportablePlot* MainWindow::currentPlot() const {
  return dynamic_cast<ui::ExportablePlot*>(tabs_->currentWidget());
}

// ---- heatmap ------------------------------------------------------------------

void MainWindow::syncHeatmap() {
  if (tabs_->currentWidget() != heatmap_ || current_ < 0) return;
  if (activations_ != heatmapActivations_) heatmapTensor_ = -1;  // the mode changed: draw again
  if (current_ == heatmapTensor_) return;
  if (activations_) {
    syncActivationHeatmap();
    return;
  }
  heatmap_->setAxisNames(tr("output channel"), tr("input channel"), QStringLiteral("|w|"));
  heatmapActivations_ = false;
  const auto model = document_->model();
  if (!model || static_cast<std::size_t>(current_) >= model->tensors.size()) return;
  heatmapTensor_ = current_;
  const TensorInfo& t = model->tensors[static_cast<std::size_t>(current_)];
  const QString name = QString::fromStdString(t.name);
  if (t.shape.size() < 2) {
    document_->cancelHeatmap();
    heatmap_->showPlaceholder(tr("%1 has no heatmap (not a 2-D weight)").arg(name));
    emit heatmapShown(current_);  // settled: there is nothing more to show
    return;
  }
  heatmap_->setTensor(name, t.rows(), t.cols());  // asks for the whole weight (regionRequested)
}

void MainWindow::onHeatmapReady(int tensor) {
  const auto map = document_->heatmap();
  if (tensor != heatmapTensor_ || heatmapActivations_ || !map) return;
  heatmap_->setHeatmap(*map);
  emit heatmapShown(tensor);
}

// ---- histogram overlays ---------------------------------------------------------

void MainWindow::compareWith(int tensor) {
  const auto model = document_->model();
  if (!model || tensor < 0 || static_cast<std::size_t>(tensor) >= model->tensors.size()) return;
  compareTensor_ = tensor;
  showTab(QStringLiteral("histogram"));
  applyHistogramOverlays();
}

void MainWindow::chooseComparison() {
  const auto model = document_->model();
  if (!model || model->tensors.empty()) return;
  QStringList names;
  for (const TensorInfo& t : model->tensors) names << QString::fromStdString(t.name);
  bool ok = false;
  const int preset = compareTensor_ >= 0 ? compareTensor_ : 0;
  const QString name = QInputDialog::getItem(this, tr("Compare Histogram"),
                                             tr("Draw this tensor's histogram over the bins of the one shown:"), names,
                                             preset, false, &ok);
  if (!ok) return;
  const auto index = names.indexOf(name);
  if (index >= 0) compareWith(static_cast<int>(index));
}

void MainWindow::clearComparison() {
  compareTensor_ = -1;
  document_->cancelComparison();
  histogram_->clearComparison();
}

void MainWindow::setGridOverlay(int bits, bool symmetric) {
  gridBits_ = bits;
  gridSymmetric_ = symmetric;
  if (gridGroup_) {
    const QString key = QStringLiteral("%1%2").arg(bits).arg(symmetric && bits > 0 ? QStringLiteral("s") : QString());
    for (QAction* a : gridGroup_->actions()) a->setChecked(a->data().toString() == key);
  }
  applyHistogramOverlays();
}

void MainWindow::applyHistogramOverlays() {
  const auto summary = current_ >= 0 ? document_->cachedStats(current_) : nullptr;
  const auto model = document_->model();
  if (!summary || !model || !histogram_->hasPlot()) return;

  // Grid: the representable values of an integer grid with one scale for the
  // whole tensor, and its clip range (values beyond it would saturate).
  int gridBits = gridBits_;
  bool gridSymmetric = gridSymmetric_;
  QString gridLabel;
  if (gridBits == 0 && current_ == planOverlayTensor_ && planGrid(planOverlayFormat_, gridBits, gridSymmetric))
    gridLabel = tr("plan: %1 grid").arg(planOverlayFormat_);  // short: the title sets the plot's width
  if (gridBits > 0) {
    const float range[2] = {static_cast<float>(summary->stats.min), static_cast<float>(summary->stats.max)};
    IntGridSpec spec;
    spec.bits = gridBits;
    spec.symmetric = gridSymmetric;
    spec.group_size = -1;
    float scale = 0, zero = 0;
    int_grid_params(range, 2, 1, spec, scale, zero);
    QVector<double> levels;
    const int maxq = (1 << gridBits) - 1;
    for (int code = 0; code <= maxq; ++code) levels << static_cast<double>(scale) * (code - static_cast<double>(zero));
    if (gridLabel.isEmpty())
      gridLabel = tr("int%1 %2 grid").arg(gridBits).arg(gridSymmetric ? tr("symmetric") : tr("asymmetric"));
    histogram_->setGrid(levels, gridLabel);
    histogram_->setClipRange(levels.front(), levels.back());
  } else {
    histogram_->clearGrid();
    histogram_->clearClipRange();
  }

  // Comparison: the other tensor over this histogram's bins.
  if (compareTensor_ >= 0 && static_cast<std::size_t>(compareTensor_) < model->tensors.size()) {
    const Histogram& h = summary->stats.hist;
    if (h.hi > h.lo && !h.counts.empty()) {
      HistogramSpec spec;
      spec.bins = static_cast<int>(h.counts.size());
      spec.lo = h.lo;
      spec.hi = h.hi;
      histogram_->clearComparison();
      document_->requestComparison(compareTensor_, spec);
    }
  }
}

void MainWindow::onComparisonReady(int tensor) {
  const auto hist = document_->comparison();
  const auto model = document_->model();
  if (tensor != compareTensor_ || !hist || !model) return;
  const QString name = QString::fromStdString(model->tensors[static_cast<std::size_t>(tensor)].name);
  if (histogram_->setComparison(*hist, name)) emit comparisonShown(tensor);  // else: for bins since replaced
}

// ---- export -----------------------------------------------------------------------

bool MainWindow::writeFile(const QString& path, const QByteArray& bytes) {
  QSaveFile file(path);  // a temporary file, renamed into place on commit
  if (!file.open(QIODevice::WriteOnly) || file.write(bytes) != bytes.size() || !file.commit()) {
    reportError(tr("Export failed"), tr("%1: %2").arg(path, file.errorString()));
    return false;
  }
  statusBar()->showMessage(tr("Saved %1").arg(path), 5000);
  return true;
}

bool MainWindow::savePlot(ui::ExportablePlot* plot, const QString& path) {
  if (!plot || !plot->hasPlot()) return false;
  const auto format = ui::plotFormatForSuffix(QFileInfo(path).suffix());
  if (!format) {
    reportError(tr("Export failed"), tr("%1: give the file a .png, .svg or .pdf suffix").arg(path));
    return false;
  }
  const QByteArray bytes = ui::renderPlot(plot->customPlot(), *format);
  if (bytes.isEmpty()) {
    reportError(tr("Export failed"), tr("%1: the plot could not be drawn").arg(path));
    return false;
  }
  return writeFile(path, bytes);
}

bool MainWindow::savePlotCsv(ui::ExportablePlot* plot, const QString& path) {
  if (!plot || !plot->hasPlot()) return false;
  return writeFile(path, plot->toCsv().toUtf8());
}

bool MainWindow::copyPlotImage(ui::ExportablePlot* plot) {
  if (!plot || !plot->hasPlot()) return false;
  QGuiApplication::clipboard()->setImage(ui::renderImage(plot->customPlot()));
  statusBar()->showMessage(tr("Copied the plot image"), 5000);
  return true;
}

bool MainWindow::copyPlotCsv(ui::ExportablePlot* plot) {
  if (!plot || !plot->hasPlot()) return false;
  QGuiApplication::clipboard()->setText(plot->toCsv());
  statusBar()->showMessage(tr("Copied the plot data as CSV"), 5000);
  return true;
}

void MainWindow::runExport(ui::ExportablePlot* plot, int action) {
  if (!plot || !plot->hasPlot()) {
    statusBar()->showMessage(tr("Nothing to export yet: this view has no plot"), 5000);
    return;
  }
  const QString base = QDir(exportDir_).filePath(fileNameOf(plot->plotTitle()));
  switch (static_cast<ui::ExportAction>(action)) {
    case ui::ExportAction::SaveImage: {
      const QString png = tr("PNG image (*.png)"), svg = tr("SVG drawing (*.svg)"), pdf = tr("PDF document (*.pdf)");
      QString filter = png;
      QString path = QFileDialog::getSaveFileName(this, tr("Save Plot"), base + QStringLiteral(".png"),
                                                  QStringList{png, svg, pdf}.join(QStringLiteral(";;")), &filter);
      if (path.isEmpty()) return;
      if (!ui::plotFormatForSuffix(QFileInfo(path).suffix()))
        path += filter == svg ? QStringLiteral(".svg") : filter == pdf ? QStringLiteral(".pdf") : QStringLiteral(".png");
      exportDir_ = QFileInfo(path).absolutePath();
      savePlot(plot, path);
      return;
    }
    case ui::ExportAction::SaveCsv: {
      const QString path = QFileDialog::getSaveFileName(this, tr("Export Plot Data"), base + QStringLiteral(".csv"),
                                                        tr("CSV files (*.csv);;All files (*)"));
      if (path.isEmpty()) return;
      exportDir_ = QFileInfo(path).absolutePath();
      savePlotCsv(plot, path);
      return;
    }
    case ui::ExportAction::CopyImage: copyPlotImage(plot); return;
    case ui::ExportAction::CopyCsv: copyPlotCsv(plot); return;
  }
}

void MainWindow::showAbout() {
  QMessageBox::about(this, tr("About QuantScope"),
                     tr("<h3>QuantScope %1</h3>"
                        "<p>A workbench for inspecting and quantizing neural networks: open a checkpoint, "
                        "find the outliers, plan the quantization, export.</p>"
                        "<p>Compute backend: %2</p>")
                         .arg(QCoreApplication::applicationVersion(), backendLabel_->text()));
}

void MainWindow::dragEnterEvent(QDragEnterEvent* event) {
  if (!localPathOf(event->mimeData()).isEmpty()) event->acceptProposedAction();
}

void MainWindow::dropEvent(QDropEvent* event) {
  const QString path = localPathOf(event->mimeData());
  if (path.isEmpty()) return;
  event->acceptProposedAction();
  openPath(path);
}

}  // namespace qs::app
