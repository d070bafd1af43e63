#include "widgets/model_overview.h"

#include <QComboBox>
#include <QHBoxLayout>
#include <QLabel>
#include <QStackedWidget>
#include <QVBoxLayout>
#include <algorithm>
#include <cmath>
#include <qcustomplot.h>

#include "model/model.h"
#include "stats/layer_summary.h"
#include "widgets/display_format.h"
#include "widgets/plot_frame.h"

namespace qs::ui {

namespace {

// Roles in execution order within a block, with their offset from the block's
// x and a colour each (Tableau 10: distinct, also in print).
struct RoleStyle {
  LayerRole role;
  double offset;
  QColor colour;
};
const RoleStyle kRoles[] = {
    {LayerRole::Embed, 0.0, QColor(127, 127, 127)},  {LayerRole::Q, -0.3, QColor(31, 119, 180)},
    {LayerRole::K, -0.2, QColor(255, 127, 14)},      {LayerRole::V, -0.1, QColor(44, 160, 44)},
    {LayerRole::O, 0.0, QColor(214, 39, 40)},        {LayerRole::Gate, 0.1, QColor(148, 103, 189)},
    {LayerRole::Up, 0.2, QColor(140, 86, 75)},       {LayerRole::Down, 0.3, QColor(227, 119, 194)},
    {LayerRole::LmHead, 0.0, QColor(23, 190, 207)},  {LayerRole::Other, 0.4, QColor(188, 189, 34)},
};

const RoleStyle& styleOf(LayerRole r) {
  for (const RoleStyle& s : kRoles)
    if (s.role == r) return s;
  return kRoles[std::size(kRoles) - 1];
}

constexpr double kHitPixels = 9.0;  // how close the mouse must be to a point

}  // namespace

ModelOverview::ModelOverview(QWidget* parent)
    : QWidget(parent),
      metricBox_(new QComboBox(this)),
      hint_(new QLabel(this)),
      stack_(new QStackedWidget(this)),
      messageLabel_(new QLabel(this)),
      plot_(new QCustomPlot(this)) {
  metricBox_->addItem(tr("Abs-max (log)"), static_cast<int>(Metric::AbsMax));
  metricBox_->addItem(tr("Kurtosis (log)"), static_cast<int>(Metric::Kurtosis));
  metricBox_->addItem(tr("Outlier input channels"), static_cast<int>(Metric::OutliersIn));
  metricBox_->addItem(tr("Outlier output channels"), static_cast<int>(Metric::OutliersOut));
  connect(metricBox_, qOverload<int>(&QComboBox::currentIndexChanged), this,
          [this] { setMetric(static_cast<Metric>(metricBox_->currentData().toInt())); });
  hint_->setText(tr("Click a point to open that layer"));
  hint_->setStyleSheet(QStringLiteral("color: #606060;"));
  auto* controls = new QHBoxLayout;
  controls->setContentsMargins(6, 4, 6, 0);
  controls->addWidget(new QLabel(tr("Per layer:"), this));
  controls->addWidget(metricBox_);
  controls->addStretch(1);
  controls->addWidget(hint_);

  style_message_label(messageLabel_);
  stack_->addWidget(messageLabel_);
  stack_->addWidget(plot_);
  auto* layout = new QVBoxLayout(this);
  layout->setContentsMargins(0, 0, 0, 0);
  layout->addLayout(controls);
  layout->addWidget(stack_, 1);

  titleElement_ = add_title_and_zoom(plot_, font());
  mirror_axes(plot_);

  // The legend (by role) in its own column right of the plot: inside, it would
  // cover the points of the first or last blocks.
  plot_->legend->setVisible(true);
  plot_->axisRect()->insetLayout()->take(plot_->legend);
  auto* side = new QCPLayoutGrid;
  plot_->plotLayout()->addElement(1, 1, side);
  side->addElement(0, 0, plot_->legend);
  side->addElement(1, 0, new QCPLayoutElement(plot_));  // pushes the legend to the top
  side->setRowStretchFactor(0, 0.001);
  side->setMargins(QMargins(0, 12, 6, 0));
  plot_->plotLayout()->setColumnStretchFactor(1, 0.001);
  plot_->legend->setBorderPen(Qt::NoPen);

  hoverMark_ = plot_->addGraph();
  hoverMark_->setLineStyle(QCPGraph::lsNone);
  hoverMark_->setScatterStyle(QCPScatterStyle(QCPScatterStyle::ssCircle, QPen(Qt::black, 2), Qt::NoBrush, 13));
  hoverMark_->removeFromLegend();

  readout_ = add_hover_readout(plot_);

  plot_->setMouseTracking(true);
  connect(plot_, &QCustomPlot::mouseMove, this, &ModelOverview::onMouseMove);
  connect(plot_, &QCustomPlot::mousePress, this, [this](QMouseEvent* e) { pressPos_ = e->pos(); });
  // A click, not the end of a drag-pan, opens the layer.
  connect(plot_, &QCustomPlot::mouseRelease, this, [this](QMouseEvent* e) {
    if (e->button() != Qt::LeftButton || (e->pos() - pressPos_).manhattanLength() > 4) return;
    const int layer = layerAt(e->pos());
    if (layer >= 0) activateLayer(layer);
  });
  connect(plot_, &QCustomPlot::mouseDoubleClick, this, [this](QMouseEvent*) { resetView(); });
  installExportMenu(plot_, [this](ExportAction a) { emit exportRequested(a); });

  applyYScale();
  showPlaceholder(tr("Open a model to see its layers along depth"));
}

void ModelOverview::setFigures(const Model& model, const std::vector<LayerFigures>& figures) {
  layers_.clear();
  const int blocks = model.block_count();
  int extra = 0;  // layers outside blocks that are neither embed nor lm_head
  for (std::size_t i = 0; i < model.layers.size(); ++i) {
    const Layer& l = model.layers[i];
    Point p;
    p.name = fromStd(l.name);
    p.role = fromStd(layer_role_name(l.role));
    p.block = l.block;
    if (blocks == 0) p.x = static_cast<double>(i);
    else if (l.block >= 0) p.x = l.block + styleOf(l.role).offset;
    else if (l.role == LayerRole::Embed) p.x = -1;
    else if (l.role == LayerRole::LmHead) p.x = blocks;
    else p.x = blocks + 1 + extra++;
    if (i < figures.size() && figures[i].ok) {
      const LayerFigures& f = figures[i];
      p.ok = true;
      p.absMax = f.abs_max;
      p.kurtosis = f.kurtosis;
      p.outliersIn = static_cast<double>(f.outliers_in);
      p.outliersOut = static_cast<double>(f.outliers_out);
    }
    layers_.push_back(p);
  }

  // x ticks name what sits there: embed, the blocks, lm_head.
  if (blocks > 0) {
    auto ticker = QSharedPointer<QCPAxisTickerText>(new QCPAxisTickerText);
    ticker->addTick(-1, tr("embed"));
    const int step = std::max(1, blocks / 16);  // about 16 labels at most
    for (int b = 0; b < blocks; b += step) ticker->addTick(b, QString::number(b));
    ticker->addTick(blocks, tr("lm_head"));
    plot_->xAxis->setTicker(ticker);
    plot_->xAxis->setLabel(tr("block (within a block, left to right: q k v o gate up down)"));
  } else {
    plot_->xAxis->setTicker(QSharedPointer<QCPAxisTicker>(new QCPAxisTicker));
    plot_->xAxis->setLabel(tr("layer (model order)"));
  }
  modelName_ = QStringLiteral("%1 layers · %2 blocks").arg(layers_.size()).arg(blocks);
  hasPlot_ = true;
  stack_->setCurrentWidget(plot_);
  rebuild();
}

void ModelOverview::showPlaceholder(const QString& message) { showMessage(message, false); }
void ModelOverview::showBusy(const QString& message) { showMessage(message, false); }
void ModelOverview::showError(const QString& message) { showMessage(message, true); }

void ModelOverview::showMessage(const QString& message, bool error) {
  hasPlot_ = false;
  messageLabel_->setText(message);
  messageLabel_->setStyleSheet(error ? QStringLiteral("color: #b00020;") : QStringLiteral("color: #707070;"));
  stack_->setCurrentWidget(messageLabel_);
}

QString ModelOverview::message() const { return hasPlot_ ? QString() : messageLabel_->text(); }

void ModelOverview::setMetric(Metric m) {
  {
    const QSignalBlocker block(metricBox_);
    metricBox_->setCurrentIndex(metricBox_->findData(static_cast<int>(m)));
  }
  if (m == metric_) return;
  metric_ = m;
  if (hasPlot_) rebuild();
  else applyYScale();
}

double ModelOverview::valueOf(const Point& p) const {
  if (!p.ok) return NAN;
  switch (metric_) {
    case Metric::AbsMax: return p.absMax;
    case Metric::Kurtosis: return p.kurtosis + 3.0;  // Pearson kurtosis: > 0, so a log axis can show it
    case Metric::OutliersIn: return p.outliersIn;
    case Metric::OutliersOut: return p.outliersOut;
  }
  return NAN;
}

void ModelOverview::rebuild() {
  for (QCPGraph* g : graphs_) plot_->removeGraph(g);
  graphs_.clear();
  series_.clear();
  for (const RoleStyle& style : kRoles) {
    const QString role = fromStd(layer_role_name(style.role));
    std::vector<int> members;
    for (std::size_t i = 0; i < layers_.size(); ++i)
      if (layers_[i].role == role && std::isfinite(valueOf(layers_[i]))) members.push_back(static_cast<int>(i));
    if (members.empty()) continue;
    std::stable_sort(members.begin(), members.end(),
                     [this](int a, int b) { return layers_[static_cast<std::size_t>(a)].x < layers_[static_cast<std::size_t>(b)].x; });
    QVector<double> keys, values;
    for (int i : members) {
      keys << layers_[static_cast<std::size_t>(i)].x;
      values << valueOf(layers_[static_cast<std::size_t>(i)]);
    }
    QCPGraph* g = plot_->addGraph();
    QColor line = style.colour;
    line.setAlpha(110);  // the trend is context; the points are the data
    g->setPen(QPen(line, 1.2));
    g->setScatterStyle(QCPScatterStyle(QCPScatterStyle::ssDisc, style.colour, 7));
    g->setName(role);
    g->setData(keys, values, true);  // sorted by x above; the order maps points to layers
    graphs_.push_back(g);
    series_.push_back(std::move(members));
  }
  hoverMark_->data()->clear();
  readout_->setVisible(false);

  static const char* names[] = {"abs-max", "kurtosis", "outlier input channels", "outlier output channels"};
  titleElement_->setText(tr("Model overview: %1 per layer\n%2").arg(tr(names[static_cast<int>(metric_)]), modelName_));
  applyYScale();
  resetView();
}

void ModelOverview::applyYScale() {
  QCPAxis* y = plot_->yAxis;
  const bool log = metric_ == Metric::AbsMax || metric_ == Metric::Kurtosis;
  if (log) {
    y->setScaleType(QCPAxis::stLogarithmic);
    y->setTicker(QSharedPointer<QCPAxisTickerLog>(new QCPAxisTickerLog));
    y->setNumberFormat(QStringLiteral("gb"));
    y->setNumberPrecision(3);
  } else {
    auto ticker = QSharedPointer<QCPAxisTickerFixed>(new QCPAxisTickerFixed);
    ticker->setTickStep(1.0);  // counts are whole numbers
    ticker->setScaleStrategy(QCPAxisTickerFixed::ssMultiples);
    y->setScaleType(QCPAxis::stLinear);
    y->setTicker(ticker);
    y->setNumberFormat(QStringLiteral("gb"));
    y->setNumberPrecision(6);
  }
  switch (metric_) {
    case Metric::AbsMax: y->setLabel(tr("weight abs-max (log scale)")); break;
    case Metric::Kurtosis: y->setLabel(tr("kurtosis = excess + 3 (log scale; Gaussian = 3)")); break;
    case Metric::OutliersIn: y->setLabel(tr("outlier input channels")); break;
    case Metric::OutliersOut: y->setLabel(tr("outlier output channels")); break;
  }
  plot_->yAxis2->setScaleType(y->scaleType());
  plot_->yAxis2->setTicker(y->ticker());
}

void ModelOverview::resetView() {
  double xlo = INFINITY, xhi = -INFINITY, ylo = INFINITY, yhi = -INFINITY;
  for (const Point& p : layers_) {
    const double v = valueOf(p);
    if (!std::isfinite(v)) continue;
    xlo = std::min(xlo, p.x);
    xhi = std::max(xhi, p.x);
    if (v > 0 || plot_->yAxis->scaleType() == QCPAxis::stLinear) ylo = std::min(ylo, v);
    yhi = std::max(yhi, v);
  }
  if (!std::isfinite(xlo)) xlo = 0, xhi = 1;
  plot_->xAxis->setRange(xlo - 0.7, xhi + 0.7);
  if (plot_->yAxis->scaleType() == QCPAxis::stLogarithmic) {
    if (!std::isfinite(ylo) || ylo <= 0) ylo = 1e-3;
    if (!(yhi > ylo)) yhi = ylo * 10;
    plot_->yAxis->setRange(ylo / 2.0, yhi * 2.0);
  } else {
    if (!std::isfinite(yhi)) yhi = 1;
    plot_->yAxis->setRange(-0.5, std::max(1.0, yhi) + 0.8);
  }
  plot_->replot();
}

int ModelOverview::pointCount() const {
  int n = 0;
  for (const auto& s : series_) n += static_cast<int>(s.size());
  return n;
}

QVector<double> ModelOverview::values() const {
  QVector<double> out;
  for (const Point& p : layers_) out << valueOf(p);
  return out;
}

QStringList ModelOverview::seriesNames() const {
  QStringList out;
  for (QCPGraph* g : graphs_) out << g->name();
  return out;
}

QString ModelOverview::roleOf(int layer) const {
  return layer >= 0 && layer < layerCount() ? layers_[static_cast<std::size_t>(layer)].role : QString();
}

QPoint ModelOverview::pointPixel(int layer) const {
  if (layer < 0 || layer >= layerCount()) return {-1, -1};
  const Point& p = layers_[static_cast<std::size_t>(layer)];
  return QPoint(static_cast<int>(std::lround(plot_->xAxis->coordToPixel(p.x))),
                static_cast<int>(std::lround(plot_->yAxis->coordToPixel(valueOf(p)))));
}

int ModelOverview::layerAt(const QPoint& pixel) const {
  if (!hasPlot_) return -1;
  int best = -1;
  double bestDist = kHitPixels;
  for (const auto& members : series_)
    for (int i : members) {
      const QPoint q = pointPixel(i);
      const double d = std::hypot(q.x() - pixel.x(), q.y() - pixel.y());
      if (d <= bestDist) {
        bestDist = d;
        best = i;
      }
    }
  return best;
}

QString ModelOverview::readoutFor(int layer) const {
  if (layer < 0 || layer >= layerCount()) return {};
  const Point& p = layers_[static_cast<std::size_t>(layer)];
  QString text = p.name + QLatin1Char('\n') +
                 (p.block >= 0 ? tr("role %1 · block %2").arg(p.role).arg(p.block) : tr("role %1").arg(p.role));
  if (!p.ok) return text + tr("\nnot readable");
  switch (metric_) {
    case Metric::AbsMax: text += tr("\nabs-max %1").arg(number(p.absMax)); break;
    case Metric::Kurtosis: text += tr("\nexcess kurtosis %1").arg(number(p.kurtosis)); break;
    case Metric::OutliersIn: text += tr("\n%1 outlier input channels").arg(p.outliersIn); break;
    case Metric::OutliersOut: text += tr("\n%1 outlier output channels").arg(p.outliersOut); break;
  }
  return text;
}

QString ModelOverview::plotTitle() const {
  static const char* names[] = {"abs-max", "kurtosis", "outlier input channels", "outlier output channels"};
  return hasPlot_ ? QStringLiteral("model overview %1").arg(QLatin1String(names[static_cast<int>(metric_)])) : QString();
}

QString ModelOverview::toCsv() const {
  if (!hasPlot_) return {};
  QString out = QStringLiteral("layer,name,role,block,abs_max,excess_kurtosis,outliers_in,outliers_out\n");
  for (std::size_t i = 0; i < layers_.size(); ++i) {
    const Point& p = layers_[i];
    const QString nan = QStringLiteral("nan");
    // Joined, not arg()-chained: a name holding "%1" must stay as it is.
    const QStringList fields{QString::number(i),
                             csvField(p.name),
                             csvField(p.role),
                             QString::number(p.block),
                             p.ok ? csvNumber(p.absMax) : nan,
                             p.ok ? csvNumber(p.kurtosis) : nan,
                             p.ok ? csvNumber(p.outliersIn) : nan,
                             p.ok ? csvNumber(p.outliersOut) : nan};
    out += fields.join(QLatin1Char(',')) + QLatin1Char('\n');
  }
  return out;
}

void ModelOverview::activateLayer(int layer) {
  if (layer < 0 || layer >= layerCount()) return;
  emit layerActivated(layer);
}

void ModelOverview::onMouseMove(QMouseEvent* event) {
  if (!hasPlot_) return;
  const int layer = layerAt(event->pos());
  const bool was = readout_->visible();
  if (layer < 0 && !was) return;
  hoverMark_->data()->clear();
  if (layer >= 0) {
    const Point& p = layers_[static_cast<std::size_t>(layer)];
    hoverMark_->addData(p.x, valueOf(p));
  }
  readout_->setText(readoutFor(layer));
  readout_->setVisible(layer >= 0);
  plot_->setCursor(layer >= 0 ? Qt::PointingHandCursor : Qt::ArrowCursor);
  plot_->replot(QCustomPlot::rpQueuedReplot);
}

}  // namespace qs::ui
