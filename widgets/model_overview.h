#pragma once
// ModelOverview: "where in the model" — one number per linear layer along
// depth. x = transformer block, with the layers of a block side by side in
// execution order (q k v o gate up down) and one series per role, so a role's
// trend along depth reads as a line; embed sits left of block 0 and lm_head
// right of the last block. Models without blocks use the layer index. y is
// selectable: abs-max (log), kurtosis (log) or the outlier channel count.
// Clicking a point emits layerActivated; hovering names the layer.
//
// It plots the figures the app hands it (summarize_layers' output); nothing
// is computed here. QCustomPlot stays out of this header.
#include <QPoint>
#include <QPointF>
#include <QString>
#include <QStringList>
#include <QVector>
#include <QWidget>
#include <vector>

#include "widgets/plot_export.h"

class QComboBox;
class QCustomPlot;
class QCPGraph;
class QCPItemText;
class QCPTextElement;
class QLabel;
class QMouseEvent;
class QStackedWidget;

namespace qs {
struct Model;
struct LayerFigures;
}  // namespace qs

namespace qs::ui {

class ModelOverview : public QWidget, public ExportablePlot {
  Q_OBJECT
 public:
  enum class Metric { AbsMax = 0, Kurtosis, OutliersIn, OutliersOut };
  Q_ENUM(Metric)

  explicit ModelOverview(QWidget* parent = nullptr);

  // `figures` is in model.layers order (one entry per layer).
  void setFigures(const Model& model, const std::vector<LayerFigures>& figures);
  void showPlaceholder(const QString& message);
  void showBusy(const QString& message);
  void showError(const QString& message);
  bool hasPlot() const override { return hasPlot_; }
  QString message() const;

  void setMetric(Metric m);
  Metric metric() const { return metric_; }
  void resetView();

  // For tests and the app: what is plotted.
  int pointCount() const;                    // points drawn, all series together
  int layerCount() const { return static_cast<int>(layers_.size()); }
  QVector<double> values() const;            // the metric per layer (NaN where unreadable)
  QStringList seriesNames() const;           // legend entries, in legend order
  QString roleOf(int layer) const;
  QPoint pointPixel(int layer) const;        // where a layer's point is drawn (plot widget coordinates)
  int layerAt(const QPoint& pixel) const;    // the layer whose point is nearest, -1 if none close
  QString readoutFor(int layer) const;       // hover text
  QCustomPlot* customPlot() const override { return plot_; }
  QString plotTitle() const override;
  // One line per layer in model order:
  // layer,name,role,block,abs_max,excess_kurtosis,outliers_in,outliers_out (nan where unreadable).
  QString toCsv() const override;

 public slots:
  // As a click on the layer's point.
  void activateLayer(int layer);

 signals:
  void layerActivated(int layer);  // index into Model::layers
  void exportRequested(qs::ui::ExportAction action);

 private:
  struct Point {
    QString name, role;
    int block = -1;
    double x = 0;
    double absMax = 0, kurtosis = 0;
    double outliersIn = 0, outliersOut = 0;
    bool ok = false;
  };
  double valueOf(const Point& p) const;  // the current metric, as plotted
  void showMessage(const QString& message, bool error);
  void rebuild();
  void applyYScale();
  void onMouseMove(QMouseEvent* event);

  QComboBox* metricBox_;
  QLabel* hint_;
  QStackedWidget* stack_;
  QLabel* messageLabel_;
  QCustomPlot* plot_;
  QCPTextElement* titleElement_;
  QCPItemText* readout_;
  QCPGraph* hoverMark_;

  bool hasPlot_ = false;
  Metric metric_ = Metric::AbsMax;
  QString modelName_;
  std::vector<Point> layers_;
  // One graph per role; series_[g][i] is the layer of the graph's i-th point.
  std::vector<QCPGraph*> graphs_;
  std::vector<std::vector<int>> series_;
  QPoint pressPos_;
};

}  // namespace qs::ui
