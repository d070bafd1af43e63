#include "widgets/heatmap_plot.h"

#include <QCheckBox>
#include <QLabel>
#include <QMenu>
#include <QSignalBlocker>
#include <QStackedWidget>
#include <QTimer>
#include <QVBoxLayout>
#include <algorithm>
#include <cmath>
#include <qcustomplot.h>
#include <vector>

#include "widgets/display_format.h"
#include "widgets/plot_frame.h"

namespace qs::ui {

namespace {

constexpr int kMaxCellsPerSide = 2048;
constexpr int kSettleMs = 150;
constexpr double kMinColorSpan = 1e-4;  // the colour scale's lower end, as a fraction of its upper end
constexpr double kMaxColorSpan = 1e-1;  // wheel notches and drags come in bursts: ask once they stop

// Ticks on whole channel indices only: a channel is a whole number.
class ChannelTicker : public QCPAxisTicker {
 protected:
  double getTickStep(const QCPRange& range) override {
    return std::max(1.0, std::round(QCPAxisTicker::getTickStep(range)));
  }
  int getSubTickCount(double tickStep) override {
    return tickStep < 5 ? 0 : QCPAxisTicker::getSubTickCount(tickStep);
  }
};

// Dark to bright (black, purple, red, orange, pale yellow, after "inferno"):
// brightness grows with |w| at every step, so bright always means large.
QCPColorGradient heatGradient() {
  QCPColorGradient g;
  g.clearColorStops();
  g.setColorStopAt(0.0, QColor(0, 0, 4));
  g.setColorStopAt(0.25, QColor(87, 16, 110));
  g.setColorStopAt(0.5, QColor(188, 55, 84));
  g.setColorStopAt(0.75, QColor(249, 142, 9));
  g.setColorStopAt(1.0, QColor(252, 255, 164));
  g.setColorInterpolation(QCPColorGradient::ciRGB);
  g.setLevelCount(350);
  return g;
}

QString channelSpan(const QString& noun, std::int64_t first, std::int64_t end) {
  if (end - first <= 1) return QObject::tr("%1 %2").arg(noun).arg(first);
  return QObject::tr("%1s %2–%3").arg(noun).arg(first).arg(end - 1);
}

}  // namespace

HeatmapPlot::HeatmapPlot(QWidget* parent)
    : QWidget(parent),
      hint_(new QLabel(this)),
      fitBox_(new QCheckBox(tr("Fit colours"), this)),
      stack_(new QStackedWidget(this)),
      messageLabel_(new QLabel(this)),
      plot_(new QCustomPlot(this)),
      settle_(new QTimer(this)) {
  hint_->setText(tr("Wheel or box: zoom to single weights · Shift+drag: pan · double-click: all"));
  hint_->setToolTip(tr("Zooming (mouse wheel, or a box dragged with the left button) recomputes the region "
                       "in view at screen resolution, down to one weight per cell. Shift+drag pans; a double "
                       "click shows the whole weight again."));
  hint_->setStyleSheet(QStringLiteral("color: #606060;"));
  hint_->setWordWrap(true);
  auto* controls = new QHBoxLayout;
  controls->setContentsMargins(6, 4, 6, 0);
  controls->addWidget(hint_, 1);
  fitBox_->setToolTip(
      tr("Fit the colour scale to what is on screen. Off: one scale per weight, so colours compare across zooms"));
  controls->addWidget(fitBox_);
  connect(fitBox_, &QCheckBox::toggled, this, &HeatmapPlot::setFitColorsToView);

  style_message_label(messageLabel_);
  stack_->addWidget(messageLabel_);
  stack_->addWidget(plot_);
  auto* layout = new QVBoxLayout(this);
  layout->setContentsMargins(0, 0, 0, 0);
  layout->addLayout(controls);
  layout->addWidget(stack_, 1);

  titleElement_ = add_title_and_zoom(plot_, font());
  plot_->setSelectionRectMode(QCP::srmZoom);
  plot_->axisRect()->setBackground(QColor(232, 232, 232));  // outside the computed region: grey, not "small"

  setAxisNames(tr("output channel"), tr("input channel"), QStringLiteral("|w|"));
  plot_->yAxis->setRangeReversed(true);  // row 0 at the top, as a matrix is written
  plot_->xAxis->setTicker(QSharedPointer<QCPAxisTicker>(new ChannelTicker));
  plot_->yAxis->setTicker(QSharedPointer<QCPAxisTicker>(new ChannelTicker));
  plot_->xAxis->grid()->setVisible(false);
  plot_->yAxis->grid()->setVisible(false);
  plot_->xAxis2->setVisible(true);
  plot_->yAxis2->setVisible(true);
  plot_->xAxis2->setTickLabels(false);
  plot_->yAxis2->setTickLabels(false);
  plot_->yAxis2->setRangeReversed(true);
  connect(plot_->xAxis, qOverload<const QCPRange&>(&QCPAxis::rangeChanged), plot_->xAxis2,
          qOverload<const QCPRange&>(&QCPAxis::setRange));
  connect(plot_->yAxis, qOverload<const QCPRange&>(&QCPAxis::rangeChanged), plot_->yAxis2,
          qOverload<const QCPRange&>(&QCPAxis::setRange));

  map2d_ = new QCPColorMap(plot_->xAxis, plot_->yAxis);
  map2d_->setInterpolate(false);
  map2d_->setTightBoundary(false);
  map2d_->setName(tr("max %1").arg(symbol_));

  // The title spans the map and its colour bar: they sit in a grid of their
  // own below it (in one grid, a long title would squeeze the bar's column).
  scale_ = new QCPColorScale(plot_);
  auto* body = new QCPLayoutGrid;
  QCPAxisRect* rect = plot_->axisRect();
  plot_->plotLayout()->take(rect);
  plot_->plotLayout()->addElement(1, 0, body);
  body->addElement(0, 0, rect);
  body->addElement(0, 1, scale_);
  body->setColumnStretchFactor(1, 0.01);
  scale_->setType(QCPAxis::atRight);
  scale_->setDataScaleType(QCPAxis::stLogarithmic);
  scale_->axis()->setTicker(QSharedPointer<QCPAxisTickerLog>(new QCPAxisTickerLog));
  scale_->axis()->setNumberFormat(QStringLiteral("gb"));
  scale_->axis()->setNumberPrecision(3);
  scale_->axis()->setLabel(tr("max %1 in the cell (log scale)").arg(symbol_));
  scale_->setBarWidth(16);
  scale_->setGradient(heatGradient());
  map2d_->setColorScale(scale_);
  auto* margins = new QCPMarginGroup(plot_);
  plot_->axisRect()->setMarginGroup(QCP::msBottom | QCP::msTop, margins);
  scale_->setMarginGroup(QCP::msBottom | QCP::msTop, margins);

  auto makeLabel = [this](double x, double y, Qt::Alignment align) {
    auto* t = new QCPItemText(plot_);
    t->setClipToAxisRect(true);
    t->position->setType(QCPItemPosition::ptAxisRectRatio);
    t->position->setCoords(x, y);
    t->setPositionAlignment(align);
    t->setTextAlignment(Qt::AlignLeft);
    t->setPadding(QMargins(6, 4, 6, 4));
    t->setBrush(QColor(255, 255, 255, 235));
    t->setPen(QPen(QColor(150, 150, 150)));
    t->setVisible(false);
    return t;
  };
  readout_ = makeLabel(0.99, 0.02, Qt::AlignRight | Qt::AlignTop);
  status_ = makeLabel(0.01, 0.98, Qt::AlignLeft | Qt::AlignBottom);
  status_->setText(tr("computing this region…"));

  settle_->setSingleShot(true);
  settle_->setInterval(kSettleMs);
  connect(settle_, &QTimer::timeout, this, &HeatmapPlot::onViewSettled);
  connect(plot_->xAxis, qOverload<const QCPRange&>(&QCPAxis::rangeChanged), this, &HeatmapPlot::onRangeChanged);
  connect(plot_->yAxis, qOverload<const QCPRange&>(&QCPAxis::rangeChanged), this, &HeatmapPlot::onRangeChanged);

  plot_->setMouseTracking(true);
  connect(plot_, &QCustomPlot::mouseMove, this, &HeatmapPlot::onMouseMove);
  // Left drag draws a zoom box; with Shift (or any other button) it does not,
  // so the drag pans instead and a right click opens the menu.
  connect(plot_, &QCustomPlot::mousePress, this, [this](QMouseEvent* e) {
    const bool box = e->button() == Qt::LeftButton && !(e->modifiers() & Qt::ShiftModifier);
    plot_->setSelectionRectMode(box ? QCP::srmZoom : QCP::srmNone);
  });
  connect(plot_, &QCustomPlot::mouseDoubleClick, this, [this](QMouseEvent*) { resetView(); });
  installExportMenu(
      plot_, [this](ExportAction a) { emit exportRequested(a); },
      [this](QMenu* menu) { menu->addAction(tr("Show the whole weight"), this, &HeatmapPlot::resetView); });

  showPlaceholder(tr("Select a layer in the tree to see its |W| heatmap"));
}

void HeatmapPlot::setTensor(const QString& title, std::int64_t rows, std::int64_t cols) {
  title_ = title;
  rows_ = std::max<std::int64_t>(rows, 0);
  cols_ = std::max<std::int64_t>(cols, 0);
  map_ = Heatmap{};
  map2d_->data()->clear();
  haveColors_ = false;
  requested_ = false;
  readout_->setVisible(false);
  showBusy(tr("Computing the |W| heatmap of\n%1…").arg(title));
  adjusting_ = true;
  plot_->xAxis->setRange(-0.5, static_cast<double>(cols_) - 0.5);
  plot_->yAxis->setRange(-0.5, static_cast<double>(rows_) - 0.5);
  adjusting_ = false;
  requestView();
}

void HeatmapPlot::setHeatmap(const Heatmap& h) {
  if (h.rows < 1 || h.cols < 1 || h.row0 < 0 || h.col0 < 0 || h.row1 > rows_ || h.col1 > cols_ ||
      h.abs_max.size() != static_cast<std::size_t>(h.rows) * static_cast<std::size_t>(h.cols))
    return;  // not of this weight
  map_ = h;
  if (!haveColors_) {
    // The weight's own scale, from its first (whole) map: fixed while zooming, so colours compare.
    fitColors(h);
    wholeLo_ = colorLo_;
    wholeHi_ = colorHi_;
    haveColors_ = true;
  } else if (fitColors_) {
    fitColors(h);
  }
  drawMap();

  const bool first = !hasPlot_;
  hasPlot_ = true;
  stack_->setCurrentWidget(plot_);
  // The first request guessed the plot's size; once drawn, ask again if it holds clearly more cells.
  if (first) settle_->start();
  const Region got{h.row0, h.row1, h.col0, h.col1};
  const Region asked{lastRequest_.row0, lastRequest_.row1, lastRequest_.col0, lastRequest_.col1};
  status_->setVisible(requested_ && !(got == asked));
  readout_->setVisible(false);
  updateTitle();
  plot_->replot();
}

void HeatmapPlot::fitColors(const Heatmap& h) {
  // From a decade below the cells' 1st percentile (zoomed in, single weights
  // are smaller than pooled cells) up to the largest |w|: one to four decades.
  std::vector<float> positive;
  positive.reserve(h.abs_max.size());
  for (float v : h.abs_max)
    if (v > 0 && std::isfinite(v)) positive.push_back(v);
  if (positive.empty()) {
    colorHi_ = 1.0;
    colorLo_ = kMinColorSpan;
  } else {
    colorHi_ = *std::max_element(positive.begin(), positive.end());
    auto p1 = positive.begin() + static_cast<std::ptrdiff_t>(positive.size() / 100);
    std::nth_element(positive.begin(), p1, positive.end());
    colorLo_ = std::clamp(static_cast<double>(*p1) / 10.0, colorHi_ * kMinColorSpan, colorHi_ * kMaxColorSpan);
  }
  scale_->setDataRange(QCPRange(colorLo_, colorHi_));
}

void HeatmapPlot::drawMap() {
  const Heatmap& h = map_;
  if (h.rows < 1 || h.cols < 1) return;
  // QCPColorMap wants cell centres; a single cell along a side is drawn as two
  // halves, since one centre has no width.
  const int drawCols = std::max(h.cols, 2), drawRows = std::max(h.rows, 2);
  const double ec = static_cast<double>(h.col1 - h.col0), er = static_cast<double>(h.row1 - h.row0);
  const double x0 = static_cast<double>(h.col0) - 0.5, y0 = static_cast<double>(h.row0) - 0.5;
  auto* data = new QCPColorMapData(drawCols, drawRows,
                                   QCPRange(x0 + 0.5 * ec / drawCols, x0 + (drawCols - 0.5) * ec / drawCols),
                                   QCPRange(y0 + 0.5 * er / drawRows, y0 + (drawRows - 0.5) * er / drawRows));
  for (int i = 0; i < drawRows; ++i)
    for (int j = 0; j < drawCols; ++j) {
      const float v = h.abs_max[static_cast<std::size_t>(std::min(i, h.rows - 1)) * static_cast<std::size_t>(h.cols) +
                                static_cast<std::size_t>(std::min(j, h.cols - 1))];
      data->setCell(j, i, std::max<double>(v, colorLo_));  // a log scale has no place for 0
    }
  map2d_->setData(data, false);
  map2d_->setDataRange(QCPRange(colorLo_, colorHi_));
}

void HeatmapPlot::setFitColorsToView(bool on) {
  {
    const QSignalBlocker block(fitBox_);
    fitBox_->setChecked(on);
  }
  if (on == fitColors_) return;
  fitColors_ = on;
  if (!haveColors_ || map_.rows < 1) return;
  if (on) {
    fitColors(map_);
  } else {  // back to the weight's own scale
    colorLo_ = wholeLo_;
    colorHi_ = wholeHi_;
    scale_->setDataRange(QCPRange(colorLo_, colorHi_));
  }
  drawMap();
  plot_->replot();
}

void HeatmapPlot::showPlaceholder(const QString& message) { showMessage(message, false); }
void HeatmapPlot::showBusy(const QString& message) { showMessage(message, false); }
void HeatmapPlot::showError(const QString& message) { showMessage(message, true); }

void HeatmapPlot::showMessage(const QString& message, bool error) {
  hasPlot_ = false;
  set_message(messageLabel_, message, error);
  stack_->setCurrentWidget(messageLabel_);
}

void HeatmapPlot::setAxisNames(const QString& rowName, const QString& colName, const QString& symbol) {
  rowName_ = rowName;
  colName_ = colName;
  symbol_ = symbol;
  const bool weight = symbol == QLatin1String("|w|");
  plot_->xAxis->setLabel(weight ? tr("%1 (column)").arg(colName) : colName);
  plot_->yAxis->setLabel(weight ? tr("%1 (row)").arg(rowName) : rowName);
  if (map2d_) map2d_->setName(tr("max %1").arg(symbol_));
  if (scale_) scale_->axis()->setLabel(tr("max %1 in the cell (log scale)").arg(symbol_));
}

QString HeatmapPlot::message() const { return hasPlot_ ? QString() : messageLabel_->text(); }

QString HeatmapPlot::plotTitle() const { return title_.isEmpty() ? QString() : title_ + QStringLiteral(" heatmap"); }

void HeatmapPlot::updateTitle() {
  QString detail;
  if (fullResolution()) {
    detail = tr("one value per cell");
  } else {
    const std::int64_t tr_ = (map_.row1 - map_.row0 + map_.rows - 1) / map_.rows;
    const std::int64_t tc = (map_.col1 - map_.col0 + map_.cols - 1) / map_.cols;
    detail = tr("max of up to %1 × %2 values per cell").arg(tr_).arg(tc);
  }
  const bool whole = map_.row0 == 0 && map_.col0 == 0 && map_.row1 == rows_ && map_.col1 == cols_;
  // Long lines are cut at the plot's edges: the name, where, and how fine each get a line.
  const QString where = whole ? tr("[%1 × %2]").arg(rows_).arg(cols_)
                              : tr("rows %1–%2 × cols %3–%4 of [%5 × %6]")
                                    .arg(map_.row0)
                                    .arg(map_.row1 - 1)
                                    .arg(map_.col0)
                                    .arg(map_.col1 - 1)
                                    .arg(rows_)
                                    .arg(cols_);
  const QString what = symbol_ == QLatin1String("|w|") ? QStringLiteral("|W|") : symbol_;
  titleElement_->setText(whole ? tr("%1 of %2\n%3 · %4").arg(what, title_, where, detail)
                               : tr("%1 of %2\n%3\n%4").arg(what, title_, where, detail));
}

float HeatmapPlot::cell(int row, int col) const {
  if (row < 0 || col < 0 || row >= map_.rows || col >= map_.cols) return NAN;
  return map_.abs_max[static_cast<std::size_t>(row) * static_cast<std::size_t>(map_.cols) + static_cast<std::size_t>(col)];
}

std::int64_t HeatmapPlot::tileFirst(int tile, std::int64_t extent, int tiles) {
  // The backend puts offset o in tile floor(o * tiles / extent): tile t starts at ceil(t * extent / tiles).
  return (static_cast<std::int64_t>(tile) * extent + tiles - 1) / tiles;
}

HeatmapPlot::Region HeatmapPlot::cellRegion(int row, int col) const {
  if (row < 0 || col < 0 || row >= map_.rows || col >= map_.cols) return {};
  const std::int64_t er = map_.row1 - map_.row0, ec = map_.col1 - map_.col0;
  return {map_.row0 + tileFirst(row, er, map_.rows), map_.row0 + tileFirst(row + 1, er, map_.rows),
          map_.col0 + tileFirst(col, ec, map_.cols), map_.col0 + tileFirst(col + 1, ec, map_.cols)};
}

bool HeatmapPlot::fullResolution() const {
  return map_.rows > 0 && map_.rows == map_.row1 - map_.row0 && map_.cols == map_.col1 - map_.col0;
}

QString HeatmapPlot::readoutAt(double x, double y) const {
  if (!hasPlot_ || map_.rows < 1 || map_.cols < 1) return {};
  const double ec = static_cast<double>(map_.col1 - map_.col0), er = static_cast<double>(map_.row1 - map_.row0);
  const double fj = std::floor((x - (static_cast<double>(map_.col0) - 0.5)) * map_.cols / ec);
  const double fi = std::floor((y - (static_cast<double>(map_.row0) - 0.5)) * map_.rows / er);
  if (!(fj >= 0 && fj < map_.cols && fi >= 0 && fi < map_.rows)) return {};
  const int i = static_cast<int>(fi), j = static_cast<int>(fj);
  const Region r = cellRegion(i, j);
  const std::int64_t n = (r.row1 - r.row0) * (r.col1 - r.col0);
  QString text = channelSpan(colName_, r.col0, r.col1) + QLatin1Char('\n') +
                 channelSpan(rowName_, r.row0, r.row1) + QLatin1Char('\n');
  if (n == 1) text += tr("%1 = %2").arg(symbol_, number(cell(i, j)));
  else text += tr("max %1 = %2 over %3 values").arg(symbol_, number(cell(i, j))).arg(n);
  return text;
}

QColor HeatmapPlot::colorOf(double value) const {
  return scale_->gradient().color(std::max(value, colorLo_), QCPRange(colorLo_, colorHi_), true);
}

QString HeatmapPlot::toCsv() const {
  if (!hasPlot_) return {};
  QString out = QStringLiteral("out_first,out_last,in_first,in_last,max_abs\n");
  out.reserve(static_cast<qsizetype>(map_.abs_max.size()) * 32);
  for (int i = 0; i < map_.rows; ++i)
    for (int j = 0; j < map_.cols; ++j) {
      const Region r = cellRegion(i, j);
      out += QStringLiteral("%1,%2,%3,%4,%5\n")
                 .arg(r.row0)
                 .arg(r.row1 - 1)
                 .arg(r.col0)
                 .arg(r.col1 - 1)
                 .arg(csvFloat(cell(i, j)));
    }
  return out;
}

void HeatmapPlot::resetView() {
  if (rows_ < 1 || cols_ < 1) return;
  zoomTo({0, rows_, 0, cols_});
}

void HeatmapPlot::zoomTo(const Region& region) {
  if (rows_ < 1 || cols_ < 1) return;
  const std::int64_t r0 = std::clamp<std::int64_t>(region.row0, 0, rows_ - 1);
  const std::int64_t r1 = std::clamp<std::int64_t>(region.row1, r0 + 1, rows_);
  const std::int64_t c0 = std::clamp<std::int64_t>(region.col0, 0, cols_ - 1);
  const std::int64_t c1 = std::clamp<std::int64_t>(region.col1, c0 + 1, cols_);
  adjusting_ = true;
  plot_->xAxis->setRange(static_cast<double>(c0) - 0.5, static_cast<double>(c1) - 0.5);
  plot_->yAxis->setRange(static_cast<double>(r0) - 0.5, static_cast<double>(r1) - 0.5);
  adjusting_ = false;
  readout_->setVisible(false);
  plot_->replot();
  requestView();
}

HeatmapPlot::Region HeatmapPlot::visibleRegion() const {
  const QCPRange x = plot_->xAxis->range(), y = plot_->yAxis->range();
  auto clampTo = [](double v, std::int64_t n) {
    return static_cast<std::int64_t>(std::clamp(v, 0.0, static_cast<double>(n)));
  };
  // Channel c covers [c - 0.5, c + 0.5]: it is in view when that overlaps the range.
  Region r;
  r.col0 = clampTo(std::floor(x.lower + 0.5), cols_);
  r.col1 = clampTo(std::ceil(x.upper + 0.5), cols_);
  r.row0 = clampTo(std::floor(y.lower + 0.5), rows_);
  r.row1 = clampTo(std::ceil(y.upper + 0.5), rows_);
  return r;
}

void HeatmapPlot::setMaxCells(QSize cells) { maxCells_ = cells; }

QSize HeatmapPlot::cellBudget() const {
  if (maxCells_.isValid() && !maxCells_.isEmpty()) return maxCells_;
  QSize px = plot_->axisRect()->rect().size();
  if (px.width() < 40 || px.height() < 40 || !hasPlot_) {
    // Not laid out yet (the first request comes before the first draw):
    // the plot less its axes, title and colour bar.
    px = QSize(stack_->width() - 170, stack_->height() - 120);
  }
  return QSize(std::clamp(px.width(), 64, kMaxCellsPerSide), std::clamp(px.height(), 64, kMaxCellsPerSide));
}

HeatmapRequest HeatmapPlot::wantedRequest() const {
  const Region v = visibleRegion();
  const QSize budget = cellBudget();
  HeatmapRequest r;
  r.row0 = v.row0;
  r.row1 = v.row1;
  r.col0 = v.col0;
  r.col1 = v.col1;
  r.out_rows = static_cast<int>(std::min<std::int64_t>(budget.height(), std::max<std::int64_t>(v.row1 - v.row0, 1)));
  r.out_cols = static_cast<int>(std::min<std::int64_t>(budget.width(), std::max<std::int64_t>(v.col1 - v.col0, 1)));
  return r;
}

void HeatmapPlot::requestView() {
  settle_->stop();
  if (rows_ < 1 || cols_ < 1) return;
  const HeatmapRequest r = wantedRequest();
  if (r.row1 <= r.row0 || r.col1 <= r.col0) return;  // nothing of the weight in view
  lastRequest_ = r;
  requested_ = true;
  if (hasPlot_) {
    const Region got{map_.row0, map_.row1, map_.col0, map_.col1};
    status_->setVisible(!(got == Region{r.row0, r.row1, r.col0, r.col1}) || r.out_rows != map_.rows ||
                        r.out_cols != map_.cols);
    plot_->replot(QCustomPlot::rpQueuedReplot);
  }
  emit regionRequested(r);
}

void HeatmapPlot::onRangeChanged() {
  if (adjusting_ || rows_ < 1) return;
  settle_->start();
}

void HeatmapPlot::resizeEvent(QResizeEvent* event) {
  QWidget::resizeEvent(event);
  if (hasPlot_) settle_->start();  // a bigger window may deserve more cells
}

void HeatmapPlot::onViewSettled() {
  if (rows_ < 1 || cols_ < 1) return;
  // Keep the view on the weight: zoomed out past it shows all of it, panned
  // past an edge stops at the edge.
  auto keep = [this](QCPAxis* axis, std::int64_t n) {
    QCPRange r = axis->range();
    const double lo = -0.5, hi = static_cast<double>(n) - 0.5;
    if (r.size() >= hi - lo) r = QCPRange(lo, hi);
    else if (r.lower < lo) r = QCPRange(lo, lo + r.size());
    else if (r.upper > hi) r = QCPRange(hi - r.size(), hi);
    if (r != axis->range()) axis->setRange(r);
  };
  adjusting_ = true;
  keep(plot_->xAxis, cols_);
  keep(plot_->yAxis, rows_);
  adjusting_ = false;
  plot_->replot(QCustomPlot::rpQueuedReplot);

  const HeatmapRequest w = wantedRequest();
  const bool sameRegion = requested_ && w.row0 == lastRequest_.row0 && w.row1 == lastRequest_.row1 &&
                          w.col0 == lastRequest_.col0 && w.col1 == lastRequest_.col1;
  // The same region needs asking again only when the screen now holds clearly more cells.
  const bool finer = w.out_rows > lastRequest_.out_rows * 5 / 4 || w.out_cols > lastRequest_.out_cols * 5 / 4;
  if (!sameRegion || finer) requestView();
}

void HeatmapPlot::onMouseMove(QMouseEvent* event) {
  if (!hasPlot_) return;
  const bool inside = plot_->axisRect()->rect().contains(event->pos());
  const QString text = inside ? readoutAt(plot_->xAxis->pixelToCoord(event->pos().x()),
                                          plot_->yAxis->pixelToCoord(event->pos().y()))
                              : QString();
  if (text.isEmpty() && !readout_->visible()) return;
  readout_->setText(text);
  readout_->setVisible(!text.isEmpty());
  plot_->replot(QCustomPlot::rpQueuedReplot);
}

}  // namespace qs::ui
