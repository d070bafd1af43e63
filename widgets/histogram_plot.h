#pragma once
// HistogramPlot: one tensor's value histogram (x = value, y = count, log-y by
// default) with wheel zoom, drag pan, double-click reset and a hover read-out
// of the bin under the mouse. It also has message states (placeholder, busy,
// error) so the app can say what is going on in the same place.
//
// QCustomPlot is only forward-declared here: <qcustomplot.h> is a slow include.
#include <QPixmap>
#include <QString>
#include <QVector>
#include <QWidget>

#include "stats/tensor_stats.h"

class QCustomPlot;
class QCPBars;
class QCPItemText;
class QCPTextElement;
class QLabel;
class QMouseEvent;
class QStackedWidget;

namespace qs::ui {

class HistogramPlot : public QWidget {
  Q_OBJECT
 public:
  enum class State { Placeholder, Busy, Error, Plot };

  explicit HistogramPlot(QWidget* parent = nullptr);

  // Shows `hist` (Linear scale: bins over the value). `title` names the tensor.
  void setHistogram(const Histogram& hist, const QString& title);
  void showPlaceholder(const QString& message);  // e.g. "Select a layer"
  void showBusy(const QString& message);         // e.g. "Computing… model.layers.2.mlp.down_proj.weight"
  void showError(const QString& message);

  void setLogY(bool on);
  bool logY() const { return logY_; }
  void resetView();  // fit both axes to the data

  State state() const { return state_; }
  QString message() const;  // the placeholder / busy / error text
  QString title() const { return title_; }

  // The histogram shown: one entry per bin, zero counts included (zero bins are
  // not drawn, so a log axis never sees a non-positive value).
  QVector<double> binCenters() const { return centers_; }
  QVector<double> binCounts() const { return counts_; }
  double binWidth() const { return width_; }
  // The hover read-out for a value x ("[lo, hi): count"), empty outside the bins.
  QString readoutAt(double x) const;

  // The plot as an image (the app saves it; widgets never write files).
  QPixmap toPixmap(int width = 0, int height = 0);
  QCustomPlot* customPlot() const { return plot_; }

 private:
  void showMessage(State state, const QString& message);
  void onMouseMove(QMouseEvent* event);
  void applyYScale();

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
};

}  // namespace qs::ui
