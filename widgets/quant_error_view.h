#pragma once
// QuantErrorView: what the selected plan row's quantization does to its layer,
// under the plan table. Left: the weights' histogram before quantization (bars)
// and after the quantize-dequantize round trip (outline, same bins: the values
// collapse onto the grid's levels, clipped tails show as missing mass). Right:
// the histogram of the error Q(W) - W. A caption sums it up (SQNR, RMS and max
// error). Data in, nothing computed here: the app runs the job.
#include <QString>
#include <QWidget>

#include "quant/quant_error_histogram.h"

class QLabel;

namespace qs::ui {

class HistogramPlot;

class QuantErrorView : public QWidget {
  Q_OBJECT
 public:
  explicit QuantErrorView(QWidget* parent = nullptr);

  void setResult(const QuantErrorHistograms& h, const QString& layer, const QString& format);
  void showPlaceholder(const QString& message);
  void showBusy(const QString& message);
  void showError(const QString& message);

  HistogramPlot* valuesPlot() const { return values_; }
  HistogramPlot* errorPlot() const { return error_; }
  QString caption() const;
  QString layer() const { return layer_; }
  QString format() const { return format_; }

 private:
  HistogramPlot* values_;
  HistogramPlot* error_;
  QLabel* caption_;
  QString layer_, format_;
};

}  // namespace qs::ui
