#include "widgets/histogram_plot.h"

#include <QLabel>
#include <QStackedWidget>
#include <QVBoxLayout>
#include <algorithm>
#include <cmath>
#include <qcustomplot.h>

#include "widgets/display_format.h"

namespace qs::ui {

namespace {

// A log axis cannot show 0: the y range starts half a count below the smallest
// possible non-zero bin, so a bin with one element is still visible.
constexpr double kLogFloor = 0.5;

const QColor kBarFill(70, 130, 180);     // steel blue
const QColor kBarEdge(40, 90, 140);

}  // namespace

HistogramPlot::HistogramPlot(QWidget* parent)
    : QWidget(parent), stack_(new QStackedWidget(this)), messageLabel_(new QLabel(this)), plot_(new QCustomPlot(this)) {
  messageLabel_->setAlignment(Qt::AlignCenter);
  messageLabel_->setWordWrap(true);
  messageLabel_->setMargin(24);
  QFont big = messageLabel_->font();
  big.setPointSizeF(big.pointSizeF() * 1.3);
  messageLabel_->setFont(big);

  stack_->addWidget(messageLabel_);
  stack_->addWidget(plot_);
  auto* layout = new QVBoxLayout(this);
  layout->setContentsMargins(0, 0, 0, 0);
  layout->addWidget(stack_);

  plot_->setInteractions(QCP::iRangeDrag | QCP::iRangeZoom);
  plot_->axisRect()->setRangeZoom(Qt::Horizontal | Qt::Vertical);
  plot_->axisRect()->setRangeDrag(Qt::Horizontal | Qt::Vertical);

  plot_->plotLayout()->insertRow(0);
  QFont titleFont = font();
  titleFont.setPointSizeF(titleFont.pointSizeF() * 1.15);
  titleFont.setBold(true);
  titleElement_ = new QCPTextElement(plot_, QString(), titleFont);
  plot_->plotLayout()->addElement(0, 0, titleElement_);

  plot_->xAxis->setLabel(tr("value"));
  plot_->xAxis2->setVisible(true);  // a closed frame reads as one plot
  plot_->yAxis2->setVisible(true);
  plot_->xAxis2->setTickLabels(false);
  plot_->yAxis2->setTickLabels(false);
  connect(plot_->xAxis, qOverload<const QCPRange&>(&QCPAxis::rangeChanged), plot_->xAxis2,
          qOverload<const QCPRange&>(&QCPAxis::setRange));
  connect(plot_->yAxis, qOverload<const QCPRange&>(&QCPAxis::rangeChanged), plot_->yAxis2,
          qOverload<const QCPRange&>(&QCPAxis::setRange));

  bars_ = new QCPBars(plot_->xAxis, plot_->yAxis);
  bars_->setWidthType(QCPBars::wtPlotCoords);
  bars_->setPen(QPen(kBarEdge, 1));
  bars_->setBrush(kBarFill);
  bars_->setName(tr("count"));

  readout_ = new QCPItemText(plot_);
  readout_->setClipToAxisRect(true);
  readout_->position->setType(QCPItemPosition::ptAxisRectRatio);
  readout_->position->setCoords(0.99, 0.02);
  readout_->setPositionAlignment(Qt::AlignRight | Qt::AlignTop);
  readout_->setTextAlignment(Qt::AlignLeft);
  readout_->setPadding(QMargins(6, 4, 6, 4));
  readout_->setBrush(QColor(255, 255, 255, 230));
  readout_->setPen(QPen(QColor(150, 150, 150)));
  readout_->setVisible(false);

  plot_->setMouseTracking(true);
  connect(plot_, &QCustomPlot::mouseMove, this, &HistogramPlot::onMouseMove);
  connect(plot_, &QCustomPlot::mouseDoubleClick, this, [this](QMouseEvent*) { resetView(); });

  applyYScale();
  showPlaceholder(tr("Select a layer in the tree to see its weight histogram"));
}

void HistogramPlot::setHistogram(const Histogram& hist, const QString& title) {
  title_ = title;
  lo_ = hist.lo;
  hi_ = hist.hi;
  width_ = hist.bin_width();
  centers_.clear();
  counts_.clear();
  QVector<double> keys, values;  // the drawn bars: non-zero bins only
  for (std::size_t i = 0; i < hist.counts.size(); ++i) {
    const double c = static_cast<double>(hist.counts[i]);
    centers_ << hist.bin_center(i);
    counts_ << c;
    if (c > 0) {
      keys << hist.bin_center(i);
      values << c;
    }
  }
  bars_->setWidth(width_ > 0 ? width_ : 1.0);
  bars_->setData(keys, values, true);

  std::uint64_t total = 0;
  for (auto c : hist.counts) total += c;
  titleElement_->setText(tr("%1\n%2 bins · %3 values").arg(title).arg(hist.counts.size()).arg(humanCount(total)));
  readout_->setVisible(false);
  state_ = State::Plot;
  stack_->setCurrentWidget(plot_);
  resetView();
}

void HistogramPlot::showPlaceholder(const QString& message) { showMessage(State::Placeholder, message); }
void HistogramPlot::showBusy(const QString& message) { showMessage(State::Busy, message); }
void HistogramPlot::showError(const QString& message) { showMessage(State::Error, message); }

void HistogramPlot::showMessage(State state, const QString& message) {
  state_ = state;
  messageLabel_->setText(message);
  // Errors stand out; the other states are quiet grey.
  messageLabel_->setStyleSheet(state == State::Error ? QStringLiteral("color: #b00020;")
                                                     : QStringLiteral("color: #707070;"));
  stack_->setCurrentWidget(messageLabel_);
}

QString HistogramPlot::message() const { return state_ == State::Plot ? QString() : messageLabel_->text(); }

void HistogramPlot::setLogY(bool on) {
  if (on == logY_) return;
  logY_ = on;
  applyYScale();
  resetView();
}

void HistogramPlot::applyYScale() {
  QCPAxis* y = plot_->yAxis;
  if (logY_) {
    y->setScaleType(QCPAxis::stLogarithmic);
    y->setTicker(QSharedPointer<QCPAxisTickerLog>(new QCPAxisTickerLog));
    y->setNumberFormat(QStringLiteral("eb"));  // 10^n, the way log counts are read
    y->setNumberPrecision(0);
    y->setLabel(tr("count per bin (log scale)"));
  } else {
    y->setScaleType(QCPAxis::stLinear);
    y->setTicker(QSharedPointer<QCPAxisTicker>(new QCPAxisTicker));
    y->setNumberFormat(QStringLiteral("gb"));
    y->setNumberPrecision(6);
    y->setLabel(tr("count per bin"));
  }
  plot_->yAxis2->setScaleType(y->scaleType());
  plot_->yAxis2->setTicker(y->ticker());
}

void HistogramPlot::resetView() {
  const double maxCount = counts_.isEmpty() ? 1.0 : std::max(1.0, *std::max_element(counts_.begin(), counts_.end()));
  const double pad = width_ > 0 ? width_ : 1.0;
  plot_->xAxis->setRange(lo_ - pad, hi_ + pad);
  if (logY_) plot_->yAxis->setRange(kLogFloor, maxCount * 3.0);
  else plot_->yAxis->setRange(0.0, maxCount * 1.08);
  plot_->replot();
}

QString HistogramPlot::readoutAt(double x) const {
  if (centers_.isEmpty() || width_ <= 0 || x < lo_ || x > hi_) return {};
  const auto bin = std::min<qsizetype>(static_cast<qsizetype>((x - lo_) / width_), centers_.size() - 1);
  const double a = lo_ + width_ * static_cast<double>(bin);
  return tr("bin %1: [%2, %3)\ncentre %4\ncount %5")
      .arg(bin)
      .arg(number(a), number(a + width_), number(centers_[bin]))
      .arg(static_cast<qulonglong>(counts_[bin]));
}

void HistogramPlot::onMouseMove(QMouseEvent* event) {
  if (state_ != State::Plot) return;
  const bool inside = plot_->axisRect()->rect().contains(event->pos());
  const QString text = inside ? readoutAt(plot_->xAxis->pixelToCoord(event->pos().x())) : QString();
  if (text.isEmpty() && !readout_->visible()) return;
  readout_->setText(text);
  readout_->setVisible(!text.isEmpty());
  plot_->replot(QCustomPlot::rpQueuedReplot);
}

QPixmap HistogramPlot::toPixmap(int width, int height) {
  if (state_ != State::Plot) return grab();
  return plot_->toPixmap(width, height);
}

}  // namespace qs::ui
