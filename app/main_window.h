#pragma once
// MainWindow: the layer tree (left dock), the views in tabs (centre: histogram,
// channels, model overview, heatmap) and the stats panel (right dock), wired to a Document. It only translates between widgets
// and the Document; opening and computing live in the Document. It also
// carries out the plots' exports: widgets hand over bytes and text, files are
// written here (atomically, through QSaveFile).
#include <QElapsedTimer>
#include <QMainWindow>
#include <QStringList>
#include <QTimer>
#include <memory>
#include <vector>

#include "quant/llama_ftype.h"

class QAction;
class QActionGroup;
class QLabel;
class QProgressBar;
class QTabWidget;
class QCloseEvent;
class QUndoStack;

namespace qs {
class Backend;
struct HeatmapRequest;
struct InputStats;
}
namespace qs::ui {
class ChannelPlot;
class ExportablePlot;
class HeatmapPlot;
class HistogramPlot;
class LayerTree;
class ModelOverview;
class AllocateDialog;
class CalibrateDialog;
struct CalibrateSettings;
class ExportDialog;
struct ExportSettings;
class PlanEditor;
class StatsPanel;
}  // namespace qs::ui

namespace qs::app {

class Document;
class RecentFiles;

class MainWindow : public QMainWindow {
  Q_OBJECT
 public:
  explicit MainWindow(std::shared_ptr<Backend> backend, QWidget* parent = nullptr);
  ~MainWindow() override;

  void openPath(const QString& path);
  void openDemo();
  // A tensor to select (by full name) once the next model has opened.
  void setPendingSelection(const QString& tensorName);
  int currentTensor() const { return current_; }

  // Off: errors go to the status bar and lastError() only, never a modal
  // dialog (tests, --screenshot runs).
  void setInteractiveErrors(bool on) { interactiveErrors_ = on; }
  QString lastError() const { return lastError_; }

  ui::LayerTree* layerTree() const { return tree_; }
  ui::HistogramPlot* histogramPlot() const { return histogram_; }
  ui::ChannelPlot* channelPlot() const { return channels_; }
  ui::ModelOverview* modelOverview() const { return overview_; }
  ui::HeatmapPlot* heatmapPlot() const { return heatmap_; }
  // The plot of the view tab shown now (every view is one).
  ui::ExportablePlot* currentPlot() const;
  QTabWidget* viewTabs() const { return tabs_; }
  // Shows the tab whose title, lower-cased, starts with `name` ("channels",
  // "overview" matches "Model overview" too); false if none does.
  bool showTab(const QString& name);
  ui::StatsPanel* statsPanel() const { return stats_; }
  Document* document() const { return document_; }
  QAction* logYAction() const { return logYAction_; }

  // Exports, without dialogs (the menus ask for a file name, then call these).
  // The image format follows the file's suffix (.png, .svg, .pdf).
  bool savePlot(ui::ExportablePlot* plot, const QString& path);
  bool savePlotCsv(ui::ExportablePlot* plot, const QString& path);
  bool copyPlotImage(ui::ExportablePlot* plot);
  bool copyPlotCsv(ui::ExportablePlot* plot);

  // The histogram overlays. Compare: `tensor`'s histogram over the bins of the
  // shown one, kept while other tensors are selected, until cleared.
  void compareWith(int tensor);
  void clearComparison();
  int comparisonTensor() const { return compareTensor_; }
  // The grid of an integer format of `bits` (0: none) with one scale for the
  // whole tensor (min–max), drawn with its clip range.
  void setGridOverlay(int bits, bool symmetric);

  // ---- the plan editor (the "Plan" tab) ----
  ui::PlanEditor* planEditor() const { return plan_; }
  // File IO of plans, without dialogs (the File menu asks for a name, then calls these).
  bool savePlan(const QString& path);
  bool loadPlan(const QString& path);  // one undo step
  bool applyPreset(const QString& name);  // one undo step
  // Measures the candidates and allocates to `target` bits/weight in a job;
  // with `apply`, the result replaces the plan as one undo step (planAllocated).
  void allocate(double target, const QStringList& formats, bool apply);
  bool applyAllocation();
  ui::AllocateDialog* allocateDialog();
  // Asks whether to save an edited plan (Save / Discard / Cancel); true to go
  // on. Without interactive errors (tests) it never asks and goes on.
  bool confirmDiscardPlan();
  // The crash-recovery copy of the plan being edited (AppDataLocation).
  QString autosavePath() const;
  void autosaveNow();
  bool recoverAutosave();  // loads the autosave of the open model, if any

  // ---- export (File ▸ Export…) ----
  // The dialog, configured for the open model and the current plan, shown.
  void openExportDialog();
  ui::ExportDialog* exportDialog();  // created on first use
  QAction* exportAction() const { return exportAction_; }
  // Starts an export of the open model with these settings (the dialog's Export button).
  void startExport(const ui::ExportSettings& settings);

  // ---- calibration (Tools ▸ Calibrate…, File ▸ Open Calibration…) ----
  void openCalibrateDialog();
  ui::CalibrateDialog* calibrateDialog();  // created on first use
  QAction* calibrateAction() const { return calibrateAction_; }
  // Starts a calibration run with these settings (the dialog's Start button). A
  // read-only model folder as the destination: asks for another path (without
  // interactive errors: the dialog says so and nothing starts).
  void startCalibration(const ui::CalibrateSettings& settings);
  // Loads a calibration file for the open model in the background (calibrationLoaded or an error).
  void loadCalibration(const QString& path);
  // The views show the selected layer's input activations instead of its weight
  // (histogram, channels, heatmap), when calibration data is loaded.
  void setActivationsShown(bool on);
  bool activationsShown() const { return activations_; }
  QAction* activationsAction() const { return activationsAction_; }
  // The calibration input of the selected tensor (a linear layer's weight), or null.
  const InputStats* currentInputStats(QString* layerName = nullptr) const;

 signals:
  // Calibration data of the open model is loaded (from a file, or by a run).
  void calibrationLoaded(const QString& path);
  void calibrationRunEnded();  // finished, failed or cancelled: the dialog shows which
  // The activation views of `tensor` are on screen (or say why there are none).
  void activationsShownFor(int tensor);
  // Every row of the plan table has its figures (after an edit, a preset, a model).
  void planMeasured();
  void planAllocated();
  // The histogram and stats of `tensor` are on screen.
  void statsShown(int tensor);
  // The heatmap of `tensor` (or of a region of it, after a zoom) is on screen;
  // also when `tensor` has none (not 2-D) and the view says so.
  void heatmapShown(int tensor);
  // The comparison outline of `tensor` is on the histogram.
  void comparisonShown(int tensor);
  // An error was reported to the user (dialog or not).
  void errorReported(const QString& message);

 protected:
  void dragEnterEvent(QDragEnterEvent* event) override;
  void dropEvent(QDropEvent* event) override;
  void closeEvent(QCloseEvent* event) override;

 private:
  void buildMenus();
  void buildStatusBar(const Backend& backend);
  void reportError(const QString& title, const QString& message);

  void onModelOpened();
  void onOpenFailed(const QString& path, const QString& message);
  void onTensorSelected(int tensor);
  void onStatsReady(int tensor);
  void onStatsFailed(int tensor, const QString& message);
  void onOverviewReady();
  void onLayerActivated(int layer);
  void syncHeatmap();
  void onHeatmapReady(int tensor);
  void onComparisonReady(int tensor);
  void applyHistogramOverlays();
  void runExport(ui::ExportablePlot* plot, int action);
  bool writeFile(const QString& path, const QByteArray& bytes);

  void connectPlanEditor();
  void resetPlan();  // a new model: the default plan, measured in the background
  QUndoStack* planUndoStack() const;
  // The bits and symmetry of the grid `format` quantizes onto; false for kept formats.
  static bool planGrid(const QString& format, int& bits, bool& symmetric);
  void onPlanConfigsChanged(const QVector<int>& rows);
  void onPlanLayerSelected(int row);
  void onAllocationReady();
  void choosePlanToOpen();
  void choosePlanToSave();
  void chooseFile();
  void configureExportDialog();
  void updateExportEstimate();
  void chooseExportDestination();
  QString suggestedExportPath(const ui::ExportSettings& s) const;
  void chooseComparison();
  void chooseDirectory();
  void showAbout();
  void buildCalibration();  // the menu entries, the weights/activations switch, the Document's signals
  void chooseCalibrationToOpen();
  void onCalibrationChanged();
  void showActivationViews();
  void syncActivationHeatmap();
  void answerActivationHeatmap(const HeatmapRequest& request);

  Document* document_;
  ui::LayerTree* tree_;
  QTabWidget* tabs_;
  ui::HistogramPlot* histogram_;
  ui::ChannelPlot* channels_;
  ui::ModelOverview* overview_;
  ui::HeatmapPlot* heatmap_;
  ui::StatsPanel* stats_;
  ui::PlanEditor* plan_;
  ui::AllocateDialog* allocateDialog_ = nullptr;
  ui::ExportDialog* exportDialog_ = nullptr;
  QAction* exportAction_ = nullptr;
  std::vector<FtypeTensor> exportFtypeTensors_;  // the GGUF tensors of the open model, in llama-quantize's order
  QString planPath_;
  QString planOverlayFormat_;  // the plan row selected last: its format's grid on the histogram
  int planOverlayTensor_ = -1;
  bool applyAllocationWhenReady_ = false;
  QTimer autosaveTimer_;
  RecentFiles* recent_ = nullptr;
  QAction* logYAction_ = nullptr;
  QLabel* modelLabel_ = nullptr;
  QLabel* backendLabel_ = nullptr;
  QProgressBar* progress_ = nullptr;

  QString pendingSelection_;
  bool openingDemo_ = false;
  int current_ = -1;
  int heatmapTensor_ = -1;  // the weight the heatmap view was set to
  bool heatmapActivations_ = false;  // ... and whether it shows its input activations
  bool activations_ = false;
  ui::CalibrateDialog* calibrateDialog_ = nullptr;
  QAction* calibrateAction_ = nullptr;
  QAction* activationsAction_ = nullptr;
  QAction* weightsAction_ = nullptr;
  QLabel* calibLabel_ = nullptr;
  int compareTensor_ = -1;
  int gridBits_ = 0;
  bool gridSymmetric_ = false;
  QActionGroup* gridGroup_ = nullptr;
  QString exportDir_;
  QElapsedTimer statsClock_;
  bool interactiveErrors_ = true;
  QString lastError_;
};

}  // namespace qs::app
