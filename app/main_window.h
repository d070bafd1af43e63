#pragma once
// MainWindow: the layer tree (left dock), the views in tabs (centre: histogram,
// channels, model overview) and the stats panel (right dock), wired to a Document. It only translates between widgets
// and the Document; opening and computing live in the Document.
#include <QElapsedTimer>
#include <QMainWindow>
#include <memory>

class QAction;
class QLabel;
class QProgressBar;
class QTabWidget;

namespace qs {
class Backend;
}
namespace qs::ui {
class ChannelPlot;
class HistogramPlot;
class LayerTree;
class ModelOverview;
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
  QTabWidget* viewTabs() const { return tabs_; }
  // Shows the tab whose title, lower-cased, starts with `name` ("channels",
  // "overview" matches "Model overview" too); false if none does.
  bool showTab(const QString& name);
  ui::StatsPanel* statsPanel() const { return stats_; }
  Document* document() const { return document_; }
  QAction* logYAction() const { return logYAction_; }

 signals:
  // The histogram and stats of `tensor` are on screen.
  void statsShown(int tensor);
  // An error was reported to the user (dialog or not).
  void errorReported(const QString& message);

 protected:
  void dragEnterEvent(QDragEnterEvent* event) override;
  void dropEvent(QDropEvent* event) override;

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

  void chooseFile();
  void chooseDirectory();
  void exportHistogram();
  void showAbout();

  Document* document_;
  ui::LayerTree* tree_;
  QTabWidget* tabs_;
  ui::HistogramPlot* histogram_;
  ui::ChannelPlot* channels_;
  ui::ModelOverview* overview_;
  ui::StatsPanel* stats_;
  RecentFiles* recent_ = nullptr;
  QAction* logYAction_ = nullptr;
  QLabel* modelLabel_ = nullptr;
  QLabel* backendLabel_ = nullptr;
  QProgressBar* progress_ = nullptr;

  QString pendingSelection_;
  bool openingDemo_ = false;
  int current_ = -1;
  QElapsedTimer statsClock_;
  bool interactiveErrors_ = true;
  QString lastError_;
};

}  // namespace qs::app
