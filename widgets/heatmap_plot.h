#pragma once
// HeatmapPlot: |W| of one weight as an image, x = input channel (column),
// y = output channel (row, 0 at the top), colour = max |w| of the cell on a
// log scale with a colour bar. Big weights are max-pooled to about the plot's
// pixel size, so a lone outlier weight still lights up its cell; outlier input
// channels read as bright vertical stripes.
//
// The widget computes nothing: it asks for the heatmap of what is in view
// (regionRequested: a region of the weight and a cell count of about one per
// screen pixel) and shows what the app hands back (setHeatmap). Zooming (wheel,
// or a rubber band dragged with the left button) asks again for just the
// visible region, so that zooming in ends at full resolution: one weight per
// cell, exact values. Shift+drag pans, a double click shows the whole weight.
// Hovering names the cell's channel range and its max |w|.
//
// QCustomPlot is only forward-declared here: <qcustomplot.h> is a slow include.
#include <QMetaType>
#include <QSize>
#include <QString>
#include <QWidget>
#include <cstdint>

#include "backend/backend.h"
#include "widgets/plot_export.h"

class QCheckBox;
class QCustomPlot;
class QCPColorMap;
class QCPColorScale;
class QCPItemText;
class QCPTextElement;
class QLabel;
class QMouseEvent;
class QStackedWidget;
class QTimer;

namespace qs::ui {

class HeatmapPlot : public QWidget, public ExportablePlot {
  Q_OBJECT
 public:
  // A block of channels: output channels (rows) [row0, row1) x input channels (columns) [col0, col1).
  struct Region {
    std::int64_t row0 = 0, row1 = 0, col0 = 0, col1 = 0;
    bool operator==(const Region&) const = default;
  };

  explicit HeatmapPlot(QWidget* parent = nullptr);

  // A new weight of rows x cols (its 2-D view): shows a busy message, resets the
  // view to the whole weight and requests its heatmap.
  void setTensor(const QString& title, std::int64_t rows, std::int64_t cols);
  // A heatmap of (a region of) the weight set by setTensor. The view is kept:
  // the answer to a zoom request draws into the zoomed view.
  void setHeatmap(const Heatmap& heatmap);
  void showPlaceholder(const QString& message);
  void showBusy(const QString& message);
  void showError(const QString& message);
  QString message() const;
  QString title() const { return title_; }
  // What the axes and cells are: by default "output channel (row)", "input
  // channel (column)" and "|w|"; the activation map is token × input channel of |x|.
  void setAxisNames(const QString& rowName, const QString& colName, const QString& symbol);
  std::int64_t tensorRows() const { return rows_; }
  std::int64_t tensorCols() const { return cols_; }

  // ExportablePlot
  bool hasPlot() const override { return hasPlot_; }
  QString plotTitle() const override;
  // One line per cell: out_first,out_last,in_first,in_last,max_abs (channel ranges inclusive).
  QString toCsv() const override;
  QCustomPlot* customPlot() const override { return plot_; }

  // The view: whole weight, or a region (in channels). zoomTo is what a
  // rubber band does; either asks for the heatmap of the new view.
  void resetView();
  void zoomTo(const Region& region);
  Region visibleRegion() const;  // channels at least partly in view, clamped to the weight
  // At most this many cells per side (default: the plot's size in pixels, up to 2048).
  void setMaxCells(QSize cells);
  // The request for what is in view now.
  HeatmapRequest wantedRequest() const;
  // Sends the request for the view now, without the debounce delay.
  void requestView();

  // What is shown, for tests and export.
  const Heatmap& heatmap() const { return map_; }
  int cellRows() const { return map_.rows; }
  int cellCols() const { return map_.cols; }
  float cell(int row, int col) const;           // max |w| of cell (row, col); row 0 = first output channels
  Region cellRegion(int row, int col) const;    // the channels the cell covers
  bool fullResolution() const;                  // one weight per cell
  QString readoutAt(double x, double y) const;  // hover text at plot coordinates (x = input channel)
  // Colours fitted to the map on screen (each answer rescales them) instead of
  // fixed per weight from its whole-weight map (default: comparable while zooming).
  void setFitColorsToView(bool on);
  bool fitColorsToView() const { return fitColors_; }
  double colorLower() const { return colorLo_; }
  double colorUpper() const { return colorHi_; }
  QColor colorOf(double value) const;           // the colour a cell of this value is drawn in
  QCPColorMap* colorMap() const { return map2d_; }
  QCPColorScale* colorScale() const { return scale_; }

 signals:
  // The app computes this heatmap (of the weight set by setTensor) and hands it to setHeatmap.
  void regionRequested(const qs::HeatmapRequest& request);
  void exportRequested(qs::ui::ExportAction action);

 protected:
  void resizeEvent(QResizeEvent* event) override;

 private:
  void showMessage(const QString& message, bool error);
  void onRangeChanged();
  void onViewSettled();
  void onMouseMove(QMouseEvent* event);
  void updateTitle();
  void fitColors(const Heatmap& h);  // the colour range from this map's cells
  void drawMap();
  QSize cellBudget() const;
  // Cell (tile) index along an extent covering `tiles` cells, and the channels it covers.
  static std::int64_t tileFirst(int tile, std::int64_t extent, int tiles);

  QLabel* hint_;
  QCheckBox* fitBox_;
  QStackedWidget* stack_;
  QLabel* messageLabel_;
  QCustomPlot* plot_;
  QCPColorMap* map2d_ = nullptr;
  QCPColorScale* scale_ = nullptr;
  QCPTextElement* titleElement_;
  QCPItemText* readout_;
  QCPItemText* status_;
  QTimer* settle_;

  bool hasPlot_ = false;
  bool haveColors_ = false;
  bool fitColors_ = false;
  bool adjusting_ = false;
  QString title_;
  QString rowName_, colName_, symbol_;
  std::int64_t rows_ = 0, cols_ = 0;
  Heatmap map_;
  double colorLo_ = 1e-6, colorHi_ = 1;
  double wholeLo_ = 1e-6, wholeHi_ = 1;  // the scale fitted to the whole weight
  QSize maxCells_;
  HeatmapRequest lastRequest_;
  bool requested_ = false;
};

}  // namespace qs::ui

Q_DECLARE_METATYPE(qs::HeatmapRequest)
