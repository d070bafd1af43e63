#pragma once
// ChannelPlot: the per-channel range plot of one weight. x = channel index (or
// its rank when sorted by range), y = abs-max as bars with the RMS as a line,
// for either axis of the weight: output channels (rows) or input channels
// (columns). Outlier channels are drawn red and listed at the side; picking one
// there centres the plot on it and emits channelActivated. Wheel zoom, drag
// pan, double-click reset and a hover read-out, as in the histogram.
//
// It shows the channel vectors the app hands it (a LayerSummary): no statistics
// are computed here, only ordering for display.
//
// QCustomPlot is only forward-declared here: <qcustomplot.h> is a slow include.
#include <QString>
#include <QVector>
#include <QWidget>
#include <cstddef>
#include <vector>

#include "widgets/plot_export.h"

class QCheckBox;
class QComboBox;
class QCustomPlot;
class QCPBars;
class QCPGraph;
class QCPItemText;
class QCPTextElement;
class QLabel;
class QListWidget;
class QMouseEvent;
class QStackedWidget;

namespace qs {
struct LayerSummary;
}

namespace qs::ui {

class ChannelPlot : public QWidget, public ExportablePlot {
  Q_OBJECT
 public:
  enum class Axis { Output = 0, Input = 1 };  // rows / columns of [out, in]
  Q_ENUM(Axis)

  explicit ChannelPlot(QWidget* parent = nullptr);

  // Shows the channels of one weight. `rule` names the outlier detector that
  // produced the summary's outlier lists (e.g. "abs-max > 6 × median").
  void setSummary(const LayerSummary& summary, const QString& title, const QString& rule);
  void showPlaceholder(const QString& message);
  void showBusy(const QString& message);
  void showError(const QString& message);
  bool hasPlot() const override { return hasPlot_; }
  QString message() const;
  QString title() const { return title_; }

  void setAxis(Axis axis);
  Axis axis() const { return axis_; }
  // Activations: one axis only (input channels; the output one is disabled)
  // and the plotted quantity named `symbol` ("|x|") instead of "|w|".
  void setInputOnly(bool on, const QString& symbol = QStringLiteral("|w|"));
  bool inputOnly() const { return inputOnly_; }
  void setSortByRange(bool on);
  bool sortByRange() const { return sorted_; }
  void setLogY(bool on);
  bool logY() const { return logY_; }
  void resetView();

  // Centres and zooms the plot on `channel` of the current axis.
  void centreOn(std::size_t channel);

  // What is plotted, for tests: one point per channel of the current axis,
  // values in plot order (by channel index, or by rank when sorted).
  int pointCount() const { return static_cast<int>(order_.size()); }
  QVector<double> plottedAbsMax() const;
  QVector<double> plottedRms() const;
  QVector<int> plottedChannels() const;           // the true channel index at each x
  std::vector<std::size_t> outlierChannels() const { return outliers_[index(axis_)]; }
  QVector<int> listedOutliers() const;            // what the side list shows, in order
  QListWidget* outlierList() const { return list_; }
  QString readoutAt(double x) const;              // hover text at plot coordinate x
  QCustomPlot* customPlot() const override { return plot_; }
  QString plotTitle() const override;
  // The current axis, one line per channel in channel order:
  // channel,abs_max,rms,outlier (outlier: 1 or 0).
  QString toCsv() const override;

 signals:
  void channelActivated(qs::ui::ChannelPlot::Axis axis, int channel);
  void exportRequested(qs::ui::ExportAction action);

 private:
  static int index(Axis a) { return static_cast<int>(a); }
  void showMessage(const QString& message, bool error);
  void rebuild();        // data of the current axis/order into the plottables and the list
  void applyYScale();
  void onMouseMove(QMouseEvent* event);
  void onListRow(int row);

  QComboBox* axisBox_;
  QCheckBox* sortBox_;
  QCheckBox* logBox_;
  QLabel* ruleLabel_;
  QStackedWidget* stack_;
  QLabel* messageLabel_;
  QCustomPlot* plot_;
  QListWidget* list_;
  QLabel* listTitle_;
  QCPBars* bars_;          // abs-max of ordinary channels
  QCPBars* outlierBars_;   // abs-max of outlier channels, red
  QCPGraph* outlierMarks_; // red circles on top, visible when bars are one pixel wide
  QCPGraph* rmsLine_;
  QCPTextElement* titleElement_;
  QCPItemText* readout_;

  bool hasPlot_ = false;
  bool inputOnly_ = false;
  QString symbol_ = QStringLiteral("|w|");
  Axis axis_ = Axis::Input;
  bool sorted_ = false;
  bool logY_ = true;
  QString title_;
  // Per axis (index(Axis)): the summary's vectors, copied so that the plot
  // needs nothing from the app after setSummary.
  std::vector<float> absMax_[2], rms_[2];
  std::vector<std::size_t> outliers_[2];
  std::vector<std::size_t> order_;     // plot position -> channel
  std::vector<std::size_t> position_;  // channel -> plot position
};

}  // namespace qs::ui
