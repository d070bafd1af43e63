#pragma once
// HistogramPlot: one tensor's value histogram (x = value, y = count, log-y by
// default) with wheel zoom, drag pan, double-click reset and a hover read-out
// of the bin under the mouse. It also has message states (placeholder, busy,
// error) so the app can say what is going on in the same place.
//
// Overlays, for the plan editor: the representable values of a quantization
// grid as light vertical lines; a clip range with everything outside [lo, hi]
// shaded and its ends dashed (lo green, hi red, as AIMET draws them); and a
// second tensor's histogram on the same bins, drawn as an outline.
//
// QCustomPlot is only forward-declared here: <qcustomplot.h> is a slow include.
#include <QPixmap>
#include <QString>
#include <QVector>
#include <QWidget>
#include <vector>

#include "stats/tensor_stats.h"
#include "widgets/plot_export.h"

class QCustomPlot;
class QCPBars;
class QCPGraph;
class QCPItemLine;
class QCPItemRect;
class QCPItemText;
class QCPTextElement;
class QLabel;
class QMouseEvent;
class QStackedWidget;

namespace qs::ui {

class HistogramPlot : public QWidget, public ExportablePlot {
  Q_OBJECT
 public:
  enum class State { Placeholder, Busy, Error, Plot };

  explicit HistogramPlot(QWidget* parent = nullptr);

  // Shows `hist` (Linear scale: bins over the value). `title` names the tensor.
  // A new histogram starts without overlays: the app sets those again for it.
  void setHistogram(const Histogram& hist, const QString& title);
  void showPlaceholder(const QString& message);  // e.g. "Select a layer"
  void showBusy(const QString& message);         // e.g. "Computing… model.layers.2.mlp.down_proj.weight"
  void showError(const QString& message);

  void setLogY(bool on);
  bool logY() const { return logY_; }
  // The x axis' label ("value" for weights; the activation view bins log2|x|).
  void setValueLabel(const QString& label);
  QString valueLabel() const;
  void resetView();  // fit both axes to the data

  State state() const { return state_; }
  QString message() const;  // the placeholder / busy / error text
  QString title() const { return title_; }
  QString headingText() const;  // the title row as drawn: title, bins, values, overlays

  // The histogram shown: one entry per bin, zero counts included (zero bins are
  // not drawn, so a log axis never sees a non-positive value).
  QVector<double> binCenters() const { return centers_; }
  QVector<double> binCounts() const { return counts_; }
  double binWidth() const { return width_; }
  // The hover read-out for a value x ("[lo, hi): count"), empty outside the bins.
  QString readoutAt(double x) const;

  // The plot as an image (the app saves it; widgets never write files).
  QPixmap toPixmap(int width = 0, int height = 0);

  // ExportablePlot
  bool hasPlot() const override { return state_ == State::Plot; }
  QString plotTitle() const override;
  // One line per bin: bin,lo,hi,center,count (and compare_count with a comparison).
  QString toCsv() const override;
  QCustomPlot* customPlot() const override { return plot_; }

  // Quantization grid: one light vertical line per level (at most
  // kMaxGridLines; a finer grid is a solid band and is not drawn).
  static constexpr int kMaxGridLines = 4096;
  void setGrid(const QVector<double>& levels, const QString& label = {});
  void clearGrid();
  QVector<double> gridLevels() const { return gridLevels_; }
  QString gridLabel() const { return gridLabel_; }
  int gridLineCount() const { return static_cast<int>(gridLines_.size()); }

  // Clip range: values outside [lo, hi] are shaded.
  void setClipRange(double lo, double hi);
  void clearClipRange();
  bool hasClipRange() const { return clipOn_; }
  double clipLo() const { return clipLo_; }
  double clipHi() const { return clipHi_; }

  // A second tensor's histogram over the same bins (same range and bin count
  // as the one shown; false and nothing drawn otherwise), drawn as an outline.
  bool setComparison(const Histogram& hist, const QString& title);
  // The bars' name in the comparison legend (default: the plot's title).
  void setBarsLegendName(const QString& name);
  void clearComparison();
  bool hasComparison() const { return !compareCounts_.isEmpty(); }
  QString comparisonTitle() const { return compareTitle_; }
  QVector<double> comparisonCounts() const { return compareCounts_; }
  QCPGraph* comparisonGraph() const { return compareGraph_; }

 signals:
  void exportRequested(qs::ui::ExportAction action);
  // The user removed an overlay from the plot's menu.
  void comparisonCleared();
  void overlaysCleared();

 private:
  void showMessage(State state, const QString& message);
  void onMouseMove(QMouseEvent* event);
  void applyYScale();
  void drawComparison();
  void updateLegend();
  void updateTitle();

  QStackedWidget* stack_;
  QLabel* messageLabel_;
  QCustomPlot* plot_;
  QCPBars* bars_;
  QCPTextElement* titleElement_;
  QCPItemText* readout_;

  State state_ = State::Placeholder;
  bool logY_ = true;
  QString title_;
  QVector<double> centers_, counts_;
  double lo_ = 0, hi_ = 0, width_ = 0;
  std::uint64_t total_ = 0;

  QVector<double> gridLevels_;
  QString gridLabel_;
  std::vector<QCPItemLine*> gridLines_;
  bool clipOn_ = false;
  double clipLo_ = 0, clipHi_ = 0;
  QCPItemRect* clipShadeLo_;
  QCPItemRect* clipShadeHi_;
  QCPItemLine* clipLineLo_;
  QCPItemLine* clipLineHi_;
  QCPGraph* compareGraph_;
  QVector<double> compareCounts_;
  QString compareTitle_;
  QString barsLegendName_;
  std::uint64_t compareOutside_ = 0;
};

}  // namespace qs::ui
