#include "widgets/histogram_plot.h"

#include <QLabel>
#include <QMenu>
#include <QStackedWidget>
#include <QVBoxLayout>
#include <algorithm>
#include <cmath>
#include <qcustomplot.h>

#include "widgets/display_format.h"
#include "widgets/plot_frame.h"

namespace qs::ui {

namespace {

// A log axis cannot show 0: the y range starts half a count below the smallest
// possible non-zero bin, so a bin with one element is still visible.
constexpr double kLogFloor = 0.5;

const QColor kBarFill(70, 130, 180);     // steel blue
const QColor kBarEdge(40, 90, 140);
const QColor kCompare(230, 100, 20);     // orange outline: apart from the blue bars, also in grey print
const QColor kGrid(130, 60, 170, 120);   // light purple ticks: apart from the dotted axis grid
const QColor kClipShade(110, 110, 110, 45);
const QColor kClipLo(30, 150, 60);       // AIMET: min green, max red
const QColor kClipHi(200, 30, 45);

// An item point: x in plot coordinates, y as a fraction of the axis rect (0 top, 1 bottom).
void placeAt(QCPItemPosition* p, QCustomPlot* plot, double x, double yRatio) {
  p->setAxes(plot->xAxis, plot->yAxis);
  p->setAxisRect(plot->axisRect());
  p->setTypeX(QCPItemPosition::ptPlotCoords);
  p->setTypeY(QCPItemPosition::ptAxisRectRatio);
  p->setCoords(x, yRatio);
}

// Both coordinates as fractions of the axis rect.
void placeRatio(QCPItemPosition* p, QCustomPlot* plot, double xRatio, double yRatio) {
  p->setAxisRect(plot->axisRect());
  p->setType(QCPItemPosition::ptAxisRectRatio);
  p->setCoords(xRatio, yRatio);
}

}  // namespace

HistogramPlot::HistogramPlot(QWidget* parent)
    : QWidget(parent), stack_(new QStackedWidget(this)), messageLabel_(new QLabel(this)), plot_(new QCustomPlot(this)) {
  style_message_label(messageLabel_);

  stack_->addWidget(messageLabel_);
  stack_->addWidget(plot_);
  auto* layout = new QVBoxLayout(this);
  layout->setContentsMargins(0, 0, 0, 0);
  layout->addWidget(stack_);

  titleElement_ = add_title_and_zoom(plot_, font());

  plot_->xAxis->setLabel(tr("value"));
  mirror_axes(plot_);

  bars_ = new QCPBars(plot_->xAxis, plot_->yAxis);
  bars_->setWidthType(QCPBars::wtPlotCoords);
  bars_->setPen(QPen(kBarEdge, 1));
  bars_->setBrush(kBarFill);
  bars_->setName(tr("count"));

  readout_ = add_hover_readout(plot_);

  // Overlays, hidden until set.
  compareGraph_ = plot_->addGraph();
  compareGraph_->setLineStyle(QCPGraph::lsStepLeft);
  compareGraph_->setPen(QPen(kCompare, 2));
  compareGraph_->setVisible(false);
  compareGraph_->removeFromLegend();
  auto makeShade = [this] {
    auto* r = new QCPItemRect(plot_);
    r->setPen(Qt::NoPen);
    r->setBrush(kClipShade);
    r->setVisible(false);
    return r;
  };
  clipShadeLo_ = makeShade();
  clipShadeHi_ = makeShade();
  clipShadeLo_->setObjectName(QStringLiteral("clipShadeLo"));
  clipShadeHi_->setObjectName(QStringLiteral("clipShadeHi"));
  auto makeClipLine = [this](const QColor& c, const QString& name) {
    auto* l = new QCPItemLine(plot_);
    l->setPen(QPen(c, 1.5, Qt::DashLine));
    l->setObjectName(name);
    l->setVisible(false);
    return l;
  };
  clipLineLo_ = makeClipLine(kClipLo, QStringLiteral("clipLo"));
  clipLineHi_ = makeClipLine(kClipHi, QStringLiteral("clipHi"));
  plot_->legend->setBrush(QColor(255, 255, 255, 220));
  plot_->axisRect()->insetLayout()->setInsetAlignment(0, Qt::AlignTop | Qt::AlignLeft);
  plot_->legend->setVisible(false);

  plot_->setMouseTracking(true);
  connect(plot_, &QCustomPlot::mouseMove, this, &HistogramPlot::onMouseMove);
  connect(plot_, &QCustomPlot::mouseDoubleClick, this, [this](QMouseEvent*) { resetView(); });
  installExportMenu(
      plot_, [this](ExportAction a) { emit exportRequested(a); },
      [this](QMenu* menu) {
        QAction* compare = menu->addAction(tr("Clear comparison"), this, [this] {
          clearComparison();
          emit comparisonCleared();
        });
        compare->setEnabled(hasComparison());
        QAction* overlays = menu->addAction(tr("Clear grid and clip range"), this, [this] {
          clearGrid();
          clearClipRange();
          emit overlaysCleared();
        });
        overlays->setEnabled(!gridLevels_.isEmpty() || clipOn_);
      });

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
  total_ = 0;  // before the title, which shows it
  for (auto c : hist.counts) total_ += c;
  clearGrid();
  clearClipRange();
  total_ = 0;  // before the title, which counts them
  for (auto c : hist.counts) total_ += c;
  clearComparison();
  updateTitle();
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
  set_message(messageLabel_, message, state == State::Error);  // errors stand out, the rest is quiet grey
  stack_->setCurrentWidget(messageLabel_);
}

void HistogramPlot::setValueLabel(const QString& label) { plot_->xAxis->setLabel(label); }
QString HistogramPlot::valueLabel() const { return plot_->xAxis->label(); }

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
    // Three significant digits, powers of ten only for large counts: a log ticker
    // puts ticks inside a decade too (8, 10, 12, 15, 20), which "10^n" at
    // precision 0 printed as repeated, wrong labels (two "10¹" on one axis).
    y->setNumberFormat(QStringLiteral("gb"));
    y->setNumberPrecision(3);
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
  // Bars rise from the axis' floor, not from 0 (which a log axis puts far
  // below the plot): SVG export cannot clip (QSvgGenerator ignores clip rects).
  bars_->setBaseValue(logY_ ? kLogFloor : 0.0);
  drawComparison();  // its zero bins depend on the scale
}

void HistogramPlot::resetView() {
  const double maxCount = counts_.isEmpty() ? 1.0 : std::max(1.0, *std::max_element(counts_.begin(), counts_.end()));
  const double pad = width_ > 0 ? width_ : 1.0;
  // The data, and the overlays' ends, so that a clip range beyond the data shows too.
  double xlo = lo_, xhi = hi_;
  if (clipOn_) {
    xlo = std::min(xlo, clipLo_);
    xhi = std::max(xhi, clipHi_);
  }
  if (!gridLines_.empty()) {
    xlo = std::min(xlo, *std::min_element(gridLevels_.begin(), gridLevels_.end()));
    xhi = std::max(xhi, *std::max_element(gridLevels_.begin(), gridLevels_.end()));
  }
  plot_->xAxis->setRange(xlo - pad, xhi + pad);
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
      .arg(static_cast<qulonglong>(counts_[bin])) +
         (hasComparison() ? tr("\n%1: %2").arg(compareTitle_).arg(static_cast<qulonglong>(compareCounts_[bin]))
                          : QString());
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

namespace qs::ui {

QString HistogramPlot::headingText() const { return titleElement_->text(); }

QString HistogramPlot::plotTitle() const { return title_.isEmpty() ? QString() : title_ + QStringLiteral(" histogram"); }

QString HistogramPlot::toCsv() const {
  if (state_ != State::Plot) return {};
  QString out = hasComparison() ? QStringLiteral("bin,lo,hi,center,count,compare_count\n")
                                : QStringLiteral("bin,lo,hi,center,count\n");
  for (qsizetype i = 0; i < counts_.size(); ++i) {
    const double a = lo_ + width_ * static_cast<double>(i);
    // The last bin ends exactly at the range's end, whatever the rounding of lo + n * width.
    const double b = i + 1 == counts_.size() ? hi_ : lo_ + width_ * static_cast<double>(i + 1);
    out += QStringLiteral("%1,%2,%3,%4,%5")
               .arg(i)
               .arg(csvNumber(a), csvNumber(b), csvNumber(centers_[i]))
               .arg(static_cast<qulonglong>(counts_[i]));
    if (hasComparison()) out += QLatin1Char(',') + QString::number(static_cast<qulonglong>(compareCounts_[i]));
    out += QLatin1Char('\n');
  }
  return out;
}

void HistogramPlot::setGrid(const QVector<double>& levels, const QString& label) {
  clearGrid();
  gridLevels_ = levels;
  gridLabel_ = label;
  if (levels.size() <= kMaxGridLines) {
    for (double x : levels) {
      if (!std::isfinite(x)) continue;
      auto* line = new QCPItemLine(plot_);
      line->setObjectName(QStringLiteral("gridLine"));
      line->setPen(QPen(kGrid, 1));
      placeAt(line->start, plot_, x, 1.0);
      placeAt(line->end, plot_, x, 0.0);
      gridLines_.push_back(line);
    }
  }
  updateLegend();
  updateTitle();
  resetView();
}

void HistogramPlot::clearGrid() {
  for (QCPItemLine* line : gridLines_) plot_->removeItem(line);
  gridLines_.clear();
  gridLevels_.clear();
  gridLabel_.clear();
  updateLegend();
  updateTitle();
  plot_->replot();
}

void HistogramPlot::setClipRange(double lo, double hi) {
  if (!(lo <= hi) || !std::isfinite(lo) || !std::isfinite(hi)) return;
  clipOn_ = true;
  clipLo_ = lo;
  clipHi_ = hi;
  // Shade from the axis rect's left edge to lo and from hi to its right edge;
  // a rect whose end lies off screen is clipped to what is visible.
  placeRatio(clipShadeLo_->topLeft, plot_, 0.0, 0.0);
  placeAt(clipShadeLo_->bottomRight, plot_, lo, 1.0);
  placeAt(clipShadeHi_->topLeft, plot_, hi, 0.0);
  placeRatio(clipShadeHi_->bottomRight, plot_, 1.0, 1.0);
  placeAt(clipLineLo_->start, plot_, lo, 1.0);
  placeAt(clipLineLo_->end, plot_, lo, 0.0);
  placeAt(clipLineHi_->start, plot_, hi, 1.0);
  placeAt(clipLineHi_->end, plot_, hi, 0.0);
  for (QCPAbstractItem* item : std::initializer_list<QCPAbstractItem*>{clipShadeLo_, clipShadeHi_, clipLineLo_, clipLineHi_})
    item->setVisible(true);
  updateTitle();
  resetView();
}

void HistogramPlot::clearClipRange() {
  clipOn_ = false;
  for (QCPAbstractItem* item : std::initializer_list<QCPAbstractItem*>{clipShadeLo_, clipShadeHi_, clipLineLo_, clipLineHi_})
    item->setVisible(false);
  updateTitle();
  plot_->replot();
}

bool HistogramPlot::setComparison(const Histogram& hist, const QString& title) {
  if (state_ != State::Plot || hist.scale != HistogramScale::Linear ||
      static_cast<qsizetype>(hist.counts.size()) != counts_.size() || hist.lo != lo_ || hist.hi != hi_)
    return false;
  compareCounts_.clear();
  for (auto c : hist.counts) compareCounts_ << static_cast<double>(c);
  compareTitle_ = title;
  compareOutside_ = hist.below + hist.above;
  drawComparison();
  updateLegend();
  plot_->replot();
  return true;
}

void HistogramPlot::setBarsLegendName(const QString& name) {
  barsLegendName_ = name;
  updateLegend();
  plot_->replot();
}

void HistogramPlot::clearComparison() {
  compareCounts_.clear();
  compareTitle_.clear();
  compareOutside_ = 0;
  drawComparison();
  updateLegend();
  plot_->replot();
}

void HistogramPlot::drawComparison() {
  if (compareCounts_.isEmpty()) {
    compareGraph_->data()->clear();
    compareGraph_->setVisible(false);
    return;
  }
  // A step outline over the bin edges: each bin's count from its lower edge to
  // the next, the last one closed at hi. On a log axis (which cannot show 0)
  // an empty bin drops to the axis' floor.
  const double empty = logY_ ? kLogFloor : 0.0;
  QVector<double> keys, values;
  for (qsizetype i = 0; i < compareCounts_.size(); ++i) {
    keys << lo_ + width_ * static_cast<double>(i);
    values << (compareCounts_[i] > 0 ? compareCounts_[i] : empty);
  }
  keys << hi_;
  values << values.back();
  compareGraph_->setData(keys, values, true);
  compareGraph_->setVisible(true);
}

void HistogramPlot::updateTitle() {
  QString text = tr("%1\n%2 bins · %3 values").arg(title_).arg(counts_.size()).arg(humanCount(total_));
  QStringList overlays;
  if (!gridLevels_.isEmpty())
    overlays << tr("%1 (%2 levels)").arg(gridLabel_.isEmpty() ? tr("grid") : gridLabel_).arg(gridLevels_.size());
  if (clipOn_) overlays << tr("clip [%1, %2]").arg(number(clipLo_), number(clipHi_));
  if (!overlays.isEmpty()) text += QStringLiteral(" · ") + overlays.join(QStringLiteral(" · "));
  titleElement_->setText(text);
}

void HistogramPlot::updateLegend() {
  const bool compare = hasComparison();
  if (compare) {
    bars_->setName(barsLegendName_.isEmpty() ? title_ : barsLegendName_);
    compareGraph_->setName(compareOutside_ > 0 ? tr("%1 (%2 values outside this range)")
                                                     .arg(compareTitle_)
                                                     .arg(humanCount(compareOutside_))
                                               : compareTitle_);
    compareGraph_->addToLegend();
  } else {
    bars_->setName(tr("count"));
    compareGraph_->removeFromLegend();
  }
  plot_->legend->setVisible(compare);
}

}  // namespace qs::ui
