#include "widgets/channel_plot.h"

#include <QCheckBox>
#include <QComboBox>
#include <QHBoxLayout>
#include <QLabel>
#include <QListWidget>
#include <QSignalBlocker>
#include <QStackedWidget>
#include <QVBoxLayout>
#include <algorithm>
#include <cmath>
#include <numeric>
#include <qcustomplot.h>

#include "stats/layer_summary.h"
#include "widgets/display_format.h"
#include "widgets/plot_frame.h"

namespace qs::ui {

namespace {

const QColor kBarFill(70, 130, 180);    // steel blue, as the histogram
const QColor kOutlier(200, 30, 45);     // red: the colour users read as "look here"
const QColor kRms(235, 140, 20);        // orange line, distinct from both

QString axisNoun(ChannelPlot::Axis a) {
  return a == ChannelPlot::Axis::Output ? QObject::tr("output channel") : QObject::tr("input channel");
}

// Keeps one pixel of content in a log axis: the smallest positive value, halved.
double positiveFloor(const std::vector<float>& a, const std::vector<float>& b) {
  double lo = INFINITY;
  for (const auto* v : {&a, &b})
    for (float x : *v)
      if (x > 0 && std::isfinite(x)) lo = std::min<double>(lo, x);
  return std::isfinite(lo) ? lo / 2.0 : 1e-3;
}

}  // namespace

ChannelPlot::ChannelPlot(QWidget* parent)
    : QWidget(parent),
      axisBox_(new QComboBox(this)),
      sortBox_(new QCheckBox(tr("Sort by range"), this)),
      logBox_(new QCheckBox(tr("Log y"), this)),
      ruleLabel_(new QLabel(this)),
      stack_(new QStackedWidget(this)),
      messageLabel_(new QLabel(this)),
      plot_(new QCustomPlot(this)),
      list_(new QListWidget(this)),
      listTitle_(new QLabel(this)) {
  // Controls: which axis, in which order, on which scale.
  axisBox_->addItem(tr("Input channels (columns)"), index(Axis::Input));
  axisBox_->addItem(tr("Output channels (rows)"), index(Axis::Output));
  axisBox_->setToolTip(tr("Weights are [out_features, in_features]: a row is an output channel, "
                          "a column an input channel"));
  sortBox_->setToolTip(tr("Order channels by abs-max, largest first; the read-out still gives the channel index"));
  logBox_->setChecked(logY_);
  ruleLabel_->setStyleSheet(QStringLiteral("color: #606060;"));
  ruleLabel_->setWordWrap(true);  // sits under the outlier list, which has a fixed width
  auto* controls = new QHBoxLayout;
  controls->setContentsMargins(6, 4, 6, 0);
  controls->addWidget(axisBox_);
  controls->addWidget(sortBox_);
  controls->addWidget(logBox_);
  controls->addStretch(1);
  connect(axisBox_, qOverload<int>(&QComboBox::currentIndexChanged), this,
          [this] { setAxis(static_cast<Axis>(axisBox_->currentData().toInt())); });
  connect(sortBox_, &QCheckBox::toggled, this, &ChannelPlot::setSortByRange);
  connect(logBox_, &QCheckBox::toggled, this, &ChannelPlot::setLogY);

  style_message_label(messageLabel_);

  // The side list of outlier channels.
  auto* side = new QWidget(this);
  auto* sideLayout = new QVBoxLayout(side);
  sideLayout->setContentsMargins(0, 0, 0, 0);
  listTitle_->setWordWrap(true);
  sideLayout->addWidget(listTitle_);
  sideLayout->addWidget(list_, 1);
  sideLayout->addWidget(ruleLabel_);
  side->setFixedWidth(170);
  list_->setToolTip(tr("Click a channel to centre the plot on it"));
  connect(list_, &QListWidget::itemClicked, this, [this](QListWidgetItem* item) { onListRow(list_->row(item)); });
  connect(list_, &QListWidget::itemActivated, this, [this](QListWidgetItem* item) { onListRow(list_->row(item)); });

  auto* content = new QWidget(this);
  auto* contentLayout = new QHBoxLayout(content);
  contentLayout->setContentsMargins(0, 0, 6, 6);
  contentLayout->addWidget(plot_, 1);
  contentLayout->addWidget(side);

  stack_->addWidget(messageLabel_);
  stack_->addWidget(content);
  auto* layout = new QVBoxLayout(this);
  layout->setContentsMargins(0, 0, 0, 0);
  layout->addLayout(controls);
  layout->addWidget(stack_, 1);

  // The plot: same interactions and frame as the histogram.
  titleElement_ = add_title_and_zoom(plot_, font());
  mirror_axes(plot_);

  auto makeBars = [this](const QColor& fill, const QString& name) {
    auto* b = new QCPBars(plot_->xAxis, plot_->yAxis);
    b->setWidthType(QCPBars::wtPlotCoords);
    b->setWidth(0.8);
    b->setPen(Qt::NoPen);  // channels are often narrower than a pixel: an edge would hide the fill
    b->setBrush(fill);
    b->setName(name);
    return b;
  };
  bars_ = makeBars(kBarFill, tr("abs-max"));
  outlierBars_ = makeBars(kOutlier, tr("abs-max, outlier channel"));
  outlierBars_->removeFromLegend();
  outlierMarks_ = plot_->addGraph();
  outlierMarks_->setLineStyle(QCPGraph::lsNone);
  outlierMarks_->setScatterStyle(QCPScatterStyle(QCPScatterStyle::ssCircle, QPen(kOutlier, 1.5), Qt::NoBrush, 8));
  outlierMarks_->setName(tr("outlier channel"));
  rmsLine_ = plot_->addGraph();
  rmsLine_->setPen(QPen(kRms, 1.5));
  rmsLine_->setName(tr("RMS"));

  plot_->legend->setVisible(true);
  plot_->legend->setBrush(QColor(255, 255, 255, 220));
  plot_->axisRect()->insetLayout()->setInsetAlignment(0, Qt::AlignTop | Qt::AlignLeft);

  readout_ = add_hover_readout(plot_);

  plot_->setMouseTracking(true);
  connect(plot_, &QCustomPlot::mouseMove, this, &ChannelPlot::onMouseMove);
  connect(plot_, &QCustomPlot::mouseDoubleClick, this, [this](QMouseEvent*) { resetView(); });
  installExportMenu(plot_, [this](ExportAction a) { emit exportRequested(a); });

  applyYScale();
  showPlaceholder(tr("Select a layer in the tree to see its channels"));
}

void ChannelPlot::setSummary(const LayerSummary& summary, const QString& title, const QString& rule) {
  const ChannelAbsMax& ch = summary.channels;
  if (ch.rows.empty() && ch.cols.empty()) {
    showPlaceholder(tr("%1 has no channels to plot (not a 2-D weight)").arg(title));
    return;
  }
  title_ = title;
  absMax_[index(Axis::Output)] = ch.rows;
  absMax_[index(Axis::Input)] = ch.cols;
  rms_[index(Axis::Output)] = ch.rows_rms;
  rms_[index(Axis::Input)] = ch.cols_rms;
  outliers_[index(Axis::Output)] = summary.outlier_out;
  outliers_[index(Axis::Input)] = summary.outlier_in;
  ruleLabel_->setText(tr("Outliers: %1").arg(rule));
  hasPlot_ = true;
  stack_->setCurrentIndex(1);
  rebuild();
}

void ChannelPlot::showPlaceholder(const QString& message) { showMessage(message, false); }
void ChannelPlot::showBusy(const QString& message) { showMessage(message, false); }
void ChannelPlot::showError(const QString& message) { showMessage(message, true); }

void ChannelPlot::showMessage(const QString& message, bool error) {
  hasPlot_ = false;
  set_message(messageLabel_, message, error);
  stack_->setCurrentIndex(0);
}

QString ChannelPlot::message() const { return hasPlot_ ? QString() : messageLabel_->text(); }

void ChannelPlot::setAxis(Axis axis) {
  if (axis == axis_) return;
  axis_ = axis;
  {
    const QSignalBlocker block(axisBox_);
    axisBox_->setCurrentIndex(axisBox_->findData(index(axis)));
  }
  if (hasPlot_) rebuild();
}

void ChannelPlot::setInputOnly(bool on, const QString& symbol) {
  inputOnly_ = on;
  symbol_ = symbol;
  // An input's activations: the RMS line is the square root of each channel's importance (mean x²),
  // the weight llama.cpp's importance matrix gives that column.
  rmsLine_->setName(on ? tr("RMS = √importance (mean x²)") : tr("RMS"));
  if (on) setAxis(Axis::Input);
  axisBox_->setEnabled(!on);
  applyYScale();
}

void ChannelPlot::setSortByRange(bool on) {
  if (on == sorted_) return;
  sorted_ = on;
  {
    const QSignalBlocker block(sortBox_);
    sortBox_->setChecked(on);
  }
  if (hasPlot_) rebuild();
}

void ChannelPlot::setLogY(bool on) {
  if (on == logY_) return;
  logY_ = on;
  {
    const QSignalBlocker block(logBox_);
    logBox_->setChecked(on);
  }
  applyYScale();
  resetView();
}

void ChannelPlot::rebuild() {
  const int a = index(axis_);
  const std::vector<float>& v = absMax_[a];
  const std::vector<float>& r = rms_[a];
  const std::size_t n = v.size();

  order_.resize(n);
  std::iota(order_.begin(), order_.end(), std::size_t{0});
  if (sorted_)  // largest first, so the outliers sit at the left edge
    std::stable_sort(order_.begin(), order_.end(), [&v](std::size_t i, std::size_t j) { return v[i] > v[j]; });
  position_.assign(n, 0);
  for (std::size_t p = 0; p < n; ++p) position_[order_[p]] = p;

  std::vector<bool> isOutlier(n, false);
  for (std::size_t c : outliers_[a])
    if (c < n) isOutlier[c] = true;

  QVector<double> keys, values, oKeys, oValues, rKeys, rValues;
  keys.reserve(static_cast<qsizetype>(n));
  values.reserve(static_cast<qsizetype>(n));
  for (std::size_t p = 0; p < n; ++p) {
    const std::size_t c = order_[p];
    const double x = static_cast<double>(p);
    (isOutlier[c] ? oKeys : keys) << x;
    (isOutlier[c] ? oValues : values) << static_cast<double>(v[c]);
    if (c < r.size()) {
      rKeys << x;
      rValues << static_cast<double>(r[c]);
    }
  }
  bars_->setData(keys, values, true);
  outlierBars_->setData(oKeys, oValues, true);
  outlierMarks_->setData(oKeys, oValues, true);
  rmsLine_->setData(rKeys, rValues, true);

  plot_->xAxis->setLabel(sorted_ ? tr("%1 rank by abs-max (largest first)").arg(axisNoun(axis_))
                                 : tr("%1 index").arg(axisNoun(axis_)));
  titleElement_->setText(tr("%1\n%2 %3s · %4 outliers")
                             .arg(title_)
                             .arg(n)
                             .arg(axisNoun(axis_))
                             .arg(outliers_[a].size()));

  list_->clear();
  for (std::size_t c : outliers_[a]) {
    if (c >= n) continue;
    auto* item = new QListWidgetItem(tr("ch %1   %2").arg(c).arg(number(v[c])), list_);
    item->setData(Qt::UserRole, static_cast<qulonglong>(c));
    item->setForeground(kOutlier);
  }
  listTitle_->setText(outliers_[a].empty() ? tr("No outlier %1s").arg(axisNoun(axis_))
                                           : tr("%1 outlier %2s\n(channel, abs-max)")
                                                 .arg(outliers_[a].size())
                                                 .arg(axisNoun(axis_)));
  readout_->setVisible(false);
  resetView();
}

void ChannelPlot::applyYScale() {
  QCPAxis* y = plot_->yAxis;
  if (logY_) {
    y->setScaleType(QCPAxis::stLogarithmic);
    y->setTicker(QSharedPointer<QCPAxisTickerLog>(new QCPAxisTickerLog));
    y->setNumberFormat(QStringLiteral("gb"));  // as the histogram: no repeated labels inside a decade
    y->setNumberPrecision(3);
    y->setLabel(tr("%1 per channel (log scale)").arg(symbol_));
  } else {
    y->setScaleType(QCPAxis::stLinear);
    y->setTicker(QSharedPointer<QCPAxisTicker>(new QCPAxisTicker));
    y->setNumberFormat(QStringLiteral("gb"));
    y->setNumberPrecision(4);
    y->setLabel(tr("%1 per channel").arg(symbol_));
  }
  plot_->yAxis2->setScaleType(y->scaleType());
  plot_->yAxis2->setTicker(y->ticker());
}

void ChannelPlot::resetView() {
  const int a = index(axis_);
  double hi = 0;
  for (float x : absMax_[a])
    if (std::isfinite(x)) hi = std::max<double>(hi, x);
  if (hi <= 0) hi = 1;
  plot_->xAxis->setRange(-1.0, static_cast<double>(std::max<std::size_t>(order_.size(), 1)));
  const double floor = logY_ ? positiveFloor(absMax_[a], rms_[a]) : 0.0;
  if (logY_) plot_->yAxis->setRange(floor, hi * 3.0);
  else plot_->yAxis->setRange(0.0, hi * 1.08);
  // Bars rise from the axis' floor, not from 0 (which a log axis puts far
  // below the plot): SVG export cannot clip (QSvgGenerator ignores clip rects).
  bars_->setBaseValue(floor);
  outlierBars_->setBaseValue(floor);
  plot_->replot();
}

void ChannelPlot::centreOn(std::size_t channel) {
  if (!hasPlot_ || channel >= position_.size()) return;
  const double x = static_cast<double>(position_[channel]);
  // Wide enough to see the neighbours the channel stands out from.
  const double half = std::max(8.0, static_cast<double>(order_.size()) / 40.0);
  plot_->xAxis->setRange(x - half, x + half);
  readout_->setText(readoutAt(x));
  readout_->setVisible(true);
  plot_->replot();
}

void ChannelPlot::onListRow(int row) {
  QListWidgetItem* item = list_->item(row);
  if (!item) return;
  const auto channel = static_cast<std::size_t>(item->data(Qt::UserRole).toULongLong());
  centreOn(channel);
  emit channelActivated(axis_, static_cast<int>(channel));
}

QVector<double> ChannelPlot::plottedAbsMax() const {
  QVector<double> out;
  for (std::size_t c : order_) out << static_cast<double>(absMax_[index(axis_)][c]);
  return out;
}

QVector<double> ChannelPlot::plottedRms() const {
  QVector<double> out;
  const auto& r = rms_[index(axis_)];
  for (std::size_t c : order_) out << (c < r.size() ? static_cast<double>(r[c]) : NAN);
  return out;
}

QVector<int> ChannelPlot::plottedChannels() const {
  QVector<int> out;
  for (std::size_t c : order_) out << static_cast<int>(c);
  return out;
}

QVector<int> ChannelPlot::listedOutliers() const {
  QVector<int> out;
  for (int i = 0; i < list_->count(); ++i) out << list_->item(i)->data(Qt::UserRole).toInt();
  return out;
}

QString ChannelPlot::readoutAt(double x) const {
  if (!hasPlot_ || order_.empty()) return {};
  const double p = std::round(x);
  if (p < 0 || p >= static_cast<double>(order_.size())) return {};
  const auto pos = static_cast<std::size_t>(p);
  const std::size_t c = order_[pos];
  const int a = index(axis_);
  const bool outlier = std::binary_search(outliers_[a].begin(), outliers_[a].end(), c);
  QString text = tr("%1 %2%3\nabs-max %4")
                     .arg(axisNoun(axis_))
                     .arg(c)
                     .arg(outlier ? tr("  (outlier)") : QString())
                     .arg(number(absMax_[a][c]));
  if (c < rms_[a].size()) text += tr("\nRMS %1").arg(number(rms_[a][c]));
  if (inputOnly_ && c < rms_[a].size()) text += tr("\nimportance (mean x²) %1").arg(number(rms_[a][c] * rms_[a][c]));
  if (sorted_) text += tr("\nrank %1 of %2").arg(pos + 1).arg(order_.size());
  return text;
}

QString ChannelPlot::plotTitle() const {
  if (title_.isEmpty()) return {};
  return title_ + (axis_ == Axis::Input ? QStringLiteral(" input channels") : QStringLiteral(" output channels"));
}

QString ChannelPlot::toCsv() const {
  if (!hasPlot_) return {};
  const int a = index(axis_);
  QString out = axis_ == Axis::Input ? QStringLiteral("input_channel,abs_max,rms,outlier\n")
                                     : QStringLiteral("output_channel,abs_max,rms,outlier\n");
  const auto& v = absMax_[a];
  const auto& r = rms_[a];
  for (std::size_t c = 0; c < v.size(); ++c) {
    const bool outlier = std::binary_search(outliers_[a].begin(), outliers_[a].end(), c);
    out += QStringLiteral("%1,%2,%3,%4\n")
               .arg(c)
               .arg(csvFloat(v[c]), c < r.size() ? csvFloat(r[c]) : QStringLiteral("nan"))
               .arg(outlier ? 1 : 0);
  }
  return out;
}

void ChannelPlot::onMouseMove(QMouseEvent* event) {
  if (!hasPlot_) return;
  const bool inside = plot_->axisRect()->rect().contains(event->pos());
  const QString text = inside ? readoutAt(plot_->xAxis->pixelToCoord(event->pos().x())) : QString();
  if (text.isEmpty() && !readout_->visible()) return;
  readout_->setText(text);
  readout_->setVisible(!text.isEmpty());
  plot_->replot(QCustomPlot::rpQueuedReplot);
}

}  // namespace qs::ui
