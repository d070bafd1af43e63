// The heatmap view, plot export and the histogram overlays, in the main window
// on the demo model, offscreen. What is shown is checked against values
// computed here from the raw F16 bytes (an independent max-pool of |W|, an
// independent binning) and against the outliers the demo generator planted,
// not against the core's own answers.
#include <QClipboard>
#include <QFile>
#include <QFileInfo>
#include <QGuiApplication>
#include <QMenu>
#include <QPainter>
#include <QSvgRenderer>
#include <QSignalSpy>
#include <QSortFilterProxyModel>
#include <QStandardItemModel>
#include <QStandardPaths>
#include <QTreeView>
#include <QTabWidget>
#include <QTemporaryDir>
#include <QWheelEvent>
#include <QtTest>
#include <algorithm>
#include <cmath>
#include <cstring>
#include <memory>
#include <qcustomplot.h>
#include <numeric>
#include <set>

#include "app/document.h"
#include "app/main_window.h"
#include "demo_window.h"
#include "backend/cpu_backend.h"
#include "demo/demo_model.h"
#include "util/half.h"
#include "widgets/channel_plot.h"
#include "widgets/display_format.h"
#include "widgets/heatmap_plot.h"
#include "widgets/histogram_plot.h"
#include "widgets/layer_tree.h"
#include "widgets/model_overview.h"

using qs::app::MainWindow;
using qs::ui::HeatmapPlot;
using qs::ui::HistogramPlot;

namespace {

constexpr int kWaitMs = 30000;

struct Matrix {
  std::int64_t rows = 0, cols = 0;
  std::vector<float> v;  // row-major
  float at(std::int64_t r, std::int64_t c) const { return v[static_cast<std::size_t>(r * cols + c)]; }
};

Matrix decodeF16(const qs::TensorInfo& t) {
  Matrix m;
  m.rows = t.shape.at(0);
  m.cols = t.shape.at(1);
  const auto bytes = t.bytes();
  m.v.resize(t.numel());
  for (std::size_t i = 0; i < m.v.size(); ++i) {
    std::uint16_t h;
    std::memcpy(&h, bytes.data() + 2 * i, 2);
    m.v[i] = qs::f16_to_f32(h);
  }
  return m;
}

// Tiles of an extent as a max-pool with `tiles` cells: the cell of offset o is
// floor(o * tiles / extent), so every weight is in exactly one cell and cells
// differ in size by one at most.
std::vector<float> maxPool(const Matrix& m, std::int64_t r0, std::int64_t r1, std::int64_t c0, std::int64_t c1,
                           int tr, int tc) {
  std::vector<float> out(static_cast<std::size_t>(tr) * static_cast<std::size_t>(tc), 0.0f);
  for (std::int64_t r = r0; r < r1; ++r)
    for (std::int64_t c = c0; c < c1; ++c) {
      const auto i = static_cast<std::size_t>((r - r0) * tr / (r1 - r0));
      const auto j = static_cast<std::size_t>((c - c0) * tc / (c1 - c0));
      float& cell = out[i * static_cast<std::size_t>(tc) + j];
      cell = std::max(cell, std::fabs(m.at(r, c)));
    }
  return out;
}

// Perceived brightness of a colour (Rec. 601 luma).
double luma(const QColor& c) { return 0.299 * c.red() + 0.587 * c.green() + 0.114 * c.blue(); }

QList<QStringList> parseCsv(const QString& text) {
  QList<QStringList> rows;
  for (const QString& line : text.split(QLatin1Char('\n'), Qt::SkipEmptyParts)) rows << line.split(QLatin1Char(','));
  return rows;
}

int itemsNamed(QCustomPlot* plot, const QString& name) {
  int n = 0;
  for (int i = 0; i < plot->itemCount(); ++i)
    if (plot->item(i)->objectName() == name && plot->item(i)->visible()) ++n;
  return n;
}

// With QS_SHOT_DIR set, saves an image of the window there (to look at the views by eye).
void snapshot(QWidget* w, const QString& name) {
  const QString dir = qEnvironmentVariable("QS_SHOT_DIR");
  if (dir.isEmpty() || !w) return;
  QCoreApplication::processEvents();
  w->grab().save(dir + QLatin1Char('/') + name + QStringLiteral(".png"));
}

}  // namespace

class TstHeatmapExport : public QObject {
  Q_OBJECT

 private slots:
  void initTestCase();
  void heatmapIsAnExactMaxPoolOfAbsW();
  void plantedOutlierInputChannelsAreTheBrightestColumns();
  void zoomRequestsTheRegionAndEndsAtExactWeights();
  void csvExportHoldsThePlottedData();
  void savedImagesHaveTheirFormatsMagicBytes();
  void gridOverlayDrawsOneLinePerLevel();
  void compareOverlayShowsTheSecondTensorsCounts();

 private:
  std::unique_ptr<MainWindow> openDemoWindow();
  int tensorIndex(MainWindow& w, const std::string& name);
  const qs::TensorInfo& tensor(MainWindow& w, const std::string& name);
  // Selects `name` and waits for its statistics to be on screen.
  bool selectAndWait(MainWindow& w, const std::string& name);
  // Shows the heatmap tab with `name` selected and waits for its whole-weight heatmap.
  bool showHeatmap(MainWindow& w, const std::string& name, QSize maxCells);

  qs::test::DemoModelDir demo_;
};

void TstHeatmapExport::initTestCase() {
  qs::test::use_test_settings("tst_heatmap_export");
  std::string error;
  QVERIFY2(demo_.write(error), error.c_str());
}

std::unique_ptr<MainWindow> TstHeatmapExport::openDemoWindow() {
  return qs::test::open_window(demo_.path(), kWaitMs, QSize(1400, 900));
}

int TstHeatmapExport::tensorIndex(MainWindow& w, const std::string& name) {
  const auto i = w.document()->model()->find_tensor(name);
  return i ? static_cast<int>(*i) : -1;
}

const qs::TensorInfo& TstHeatmapExport::tensor(MainWindow& w, const std::string& name) {
  return w.document()->model()->tensors.at(static_cast<std::size_t>(tensorIndex(w, name)));
}

bool TstHeatmapExport::selectAndWait(MainWindow& w, const std::string& name) {
  const int index = tensorIndex(w, name);
  if (index < 0) return false;
  if (w.currentTensor() == index && w.histogramPlot()->hasPlot() &&
      w.histogramPlot()->title() == QString::fromStdString(name))
    return true;
  QSignalSpy shown(&w, &MainWindow::statsShown);
  if (!w.layerTree()->selectTensor(index)) return false;
  return QTest::qWaitFor([&] { return !shown.isEmpty() && shown.last().at(0).toInt() == index; }, kWaitMs);
}

bool TstHeatmapExport::showHeatmap(MainWindow& w, const std::string& name, QSize maxCells) {
  HeatmapPlot* plot = w.heatmapPlot();
  plot->setMaxCells(maxCells);
  const int index = tensorIndex(w, name);
  if (!w.showTab(QStringLiteral("heatmap")) || w.viewTabs()->currentWidget() != plot) return false;
  if (!w.layerTree()->selectTensor(index)) return false;
  const qs::TensorInfo& t = tensor(w, name);
  return QTest::qWaitFor(
      [&] {
        const qs::Heatmap& h = plot->heatmap();
        return plot->hasPlot() && plot->title() == QString::fromStdString(name) && h.row0 == 0 && h.col0 == 0 &&
               h.row1 == t.shape[0] && h.col1 == t.shape[1];
      },
      kWaitMs);
}

void TstHeatmapExport::heatmapIsAnExactMaxPoolOfAbsW() {
  auto w = openDemoWindow();
  QVERIFY(w);
  HeatmapPlot* plot = w->heatmapPlot();

  // Uneven pooling both ways: 688 rows into 24 cells, 256 columns into 40.
  const std::string name = "model.layers.2.mlp.gate_proj.weight";
  QVERIFY(showHeatmap(*w, name, QSize(40, 24)));
  const Matrix m = decodeF16(tensor(*w, name));
  QCOMPARE(m.rows, 688);
  QCOMPARE(m.cols, 256);
  QCOMPARE(plot->cellRows(), 24);
  QCOMPARE(plot->cellCols(), 40);
  QVERIFY(!plot->fullResolution());
  const std::vector<float> expected = maxPool(m, 0, m.rows, 0, m.cols, 24, 40);
  for (int i = 0; i < 24; ++i)
    for (int j = 0; j < 40; ++j) {
      QCOMPARE(plot->cell(i, j), expected[static_cast<std::size_t>(i * 40 + j)]);
      // The read-out's channel range is the cell's: the max over exactly those weights.
      const HeatmapPlot::Region r = plot->cellRegion(i, j);
      float mx = 0;
      for (std::int64_t a = r.row0; a < r.row1; ++a)
        for (std::int64_t b = r.col0; b < r.col1; ++b) mx = std::max(mx, std::fabs(m.at(a, b)));
      QCOMPARE(plot->cell(i, j), mx);
    }
  // Cells tile the weight: first and last cells touch its edges, neighbours touch each other.
  QCOMPARE(plot->cellRegion(0, 0).row0, 0);
  QCOMPARE(plot->cellRegion(23, 39).row1, 688);
  QCOMPARE(plot->cellRegion(23, 39).col1, 256);
  for (int i = 1; i < 24; ++i) QCOMPARE(plot->cellRegion(i, 0).row0, plot->cellRegion(i - 1, 0).row1);

  // What QCPColorMap draws: the same values (floored at the log scale's lower end), on a log colour scale.
  QCOMPARE(plot->colorScale()->dataScaleType(), QCPAxis::stLogarithmic);
  QCPColorMapData* data = plot->colorMap()->data();
  QCOMPARE(data->keySize(), 40);
  QCOMPARE(data->valueSize(), 24);
  for (int i = 0; i < 24; ++i)
    for (int j = 0; j < 40; ++j)
      QCOMPARE(data->cell(j, i), std::max<double>(expected[static_cast<std::size_t>(i * 40 + j)], plot->colorLower()));
  // Axes in real channel indices: x = input channel spans the 256 columns, y the 688 rows (row 0 on top).
  QCOMPARE(plot->customPlot()->xAxis->range().lower, -0.5);
  QCOMPARE(plot->customPlot()->xAxis->range().upper, 255.5);
  QCOMPARE(plot->customPlot()->yAxis->range().upper, 687.5);
  QVERIFY(plot->customPlot()->yAxis->rangeReversed());

  // Hover read-out: the channel ranges and the max of the cell under the mouse.
  const HeatmapPlot::Region r = plot->cellRegion(5, 7);
  const QString text = plot->readoutAt(static_cast<double>(r.col0 + r.col1 - 1) / 2.0,
                                       static_cast<double>(r.row0 + r.row1 - 1) / 2.0);
  QVERIFY2(text.contains(QStringLiteral("input channels %1–%2").arg(r.col0).arg(r.col1 - 1)), qPrintable(text));
  QVERIFY2(text.contains(QStringLiteral("output channels %1–%2").arg(r.row0).arg(r.row1 - 1)), qPrintable(text));
  QVERIFY2(text.contains(QStringLiteral("max |w| = %1").arg(qs::ui::number(plot->cell(5, 7)))), qPrintable(text));

  // A 1-D tensor has no heatmap: the view says so and asks for nothing.
  QSignalSpy asked(plot, &HeatmapPlot::regionRequested);
  QSignalSpy shown(w.get(), &MainWindow::heatmapShown);
  QVERIFY(w->layerTree()->selectTensor(tensorIndex(*w, "model.layers.2.input_layernorm.weight")));
  QVERIFY(!plot->hasPlot());
  QVERIFY2(plot->message().contains(QStringLiteral("not a 2-D weight")), qPrintable(plot->message()));
  QCOMPARE(asked.size(), 0);
  QCOMPARE(shown.size(), 1);
}

void TstHeatmapExport::plantedOutlierInputChannelsAreTheBrightestColumns() {
  auto w = openDemoWindow();
  QVERIFY(w);
  HeatmapPlot* plot = w->heatmapPlot();
  const qs::DemoTruth truth = qs::demo_truth(qs::DemoSpec{});
  const std::set<int> planted(truth.hidden_outlier_channels.begin(), truth.hidden_outlier_channels.end());
  QCOMPARE(planted, (std::set<int>{71, 109, 175, 190}));
  const std::string name = "model.layers.0.self_attn.q_proj.weight";

  // The brightest column of cells, by the colour each cell is drawn in.
  auto brightestColumns = [plot](std::size_t n) {
    std::vector<std::pair<double, int>> col;
    for (int j = 0; j < plot->cellCols(); ++j) {
      double best = 0;
      for (int i = 0; i < plot->cellRows(); ++i) best = std::max(best, luma(plot->colorOf(plot->cell(i, j))));
      col.emplace_back(best, j);
    }
    std::sort(col.begin(), col.end(), std::greater<>());
    std::set<int> top;
    for (std::size_t k = 0; k < n && k < col.size(); ++k) top.insert(col[k].second);
    // ...and they stand clearly above the rest.
    return std::make_pair(top, col.size() > n ? col[n - 1].first - col[n].first : 0.0);
  };

  // Full resolution (256 x 256 cells): one column per input channel.
  QVERIFY(showHeatmap(*w, name, QSize(256, 256)));
  QVERIFY(plot->fullResolution());
  auto [top, gap] = brightestColumns(4);
  QCOMPARE(top, planted);
  QVERIFY2(gap > 20, qPrintable(QString::number(gap)));

  // Pooled 4 channels to a cell: the cells holding the planted channels are the brightest.
  QVERIFY(showHeatmap(*w, "model.layers.0.self_attn.k_proj.weight", QSize(64, 32)));
  QVERIFY(showHeatmap(*w, name, QSize(64, 32)));
  QCOMPARE(plot->cellCols(), 64);
  std::set<int> plantedCells;
  for (int c : planted) plantedCells.insert(c / 4);
  auto [pooledTop, pooledGap] = brightestColumns(4);
  QCOMPARE(pooledTop, plantedCells);
  QVERIFY(pooledGap > 10);
}

void TstHeatmapExport::zoomRequestsTheRegionAndEndsAtExactWeights() {
  auto w = openDemoWindow();
  QVERIFY(w);
  HeatmapPlot* plot = w->heatmapPlot();
  const std::string name = "model.layers.0.self_attn.q_proj.weight";
  QVERIFY(showHeatmap(*w, name, QSize(32, 32)));
  QVERIFY(!plot->fullResolution());
  const Matrix m = decodeF16(tensor(*w, name));

  // A rubber band over rows 10..39, columns 100..129: the new heatmap covers
  // exactly that region, one weight per cell, and holds the exact |w|.
  QSignalSpy asked(plot, &HeatmapPlot::regionRequested);
  plot->zoomTo({10, 40, 100, 130});
  QCOMPARE(asked.size(), 1);
  const auto req = asked.at(0).at(0).value<qs::HeatmapRequest>();
  QCOMPARE(req.row0, 10);
  QCOMPARE(req.row1, 40);
  QCOMPARE(req.col0, 100);
  QCOMPARE(req.col1, 130);
  QTRY_VERIFY_WITH_TIMEOUT(plot->heatmap().row0 == 10 && plot->heatmap().col0 == 100 && plot->heatmap().row1 == 40 &&
                               plot->heatmap().col1 == 130,
                           kWaitMs);
  QVERIFY(plot->fullResolution());
  QCOMPARE(plot->cellRows(), 30);
  QCOMPARE(plot->cellCols(), 30);
  for (int i = 0; i < 30; ++i)
    for (int j = 0; j < 30; ++j) {
      QCOMPARE(plot->cell(i, j), std::fabs(m.at(10 + i, 100 + j)));
      QCOMPARE(plot->cellRegion(i, j), (HeatmapPlot::Region{10 + i, 11 + i, 100 + j, 101 + j}));
    }
  const QString text = plot->readoutAt(105.2, 20.1);
  QVERIFY2(text.startsWith(QStringLiteral("input channel 105\noutput channel 20\n|w| = ")), qPrintable(text));
  QVERIFY2(text.endsWith(qs::ui::number(std::fabs(m.at(20, 105)))), qPrintable(text));
  QVERIFY(plot->customPlot()->xAxis->range().lower == 99.5 && plot->customPlot()->xAxis->range().upper == 129.5);

  // The colour scale stays the weight's own while zooming; "Fit colours to view" spans the cells on screen.
  const double wholeLo = plot->colorLower(), wholeHi = plot->colorUpper();
  float maxAbs = 0;
  for (float x : m.v) maxAbs = std::max(maxAbs, std::fabs(x));
  QCOMPARE(wholeHi, static_cast<double>(maxAbs));
  float regionMax = 0;
  for (int i = 0; i < 30; ++i)
    for (int j = 0; j < 30; ++j) regionMax = std::max(regionMax, std::fabs(m.at(10 + i, 100 + j)));
  QVERIFY(regionMax < wholeHi);  // no planted outlier channel in 100..129
  plot->setFitColorsToView(true);
  QCOMPARE(plot->colorUpper(), static_cast<double>(regionMax));
  QCOMPARE(plot->colorMap()->dataRange().upper, static_cast<double>(regionMax));
  plot->setFitColorsToView(false);
  QCOMPARE(plot->colorLower(), wholeLo);
  QCOMPARE(plot->colorUpper(), wholeHi);

  // A newer request supersedes an older one: only the last region is shown,
  // the older answer is dropped (never reaches the view).
  QSignalSpy ready(w->document(), &qs::app::Document::heatmapReady);
  plot->zoomTo({0, 64, 0, 64});
  plot->zoomTo({200, 230, 60, 80});
  QTRY_VERIFY_WITH_TIMEOUT(plot->heatmap().row0 == 200 && plot->heatmap().col0 == 60, kWaitMs);
  QTest::qWait(100);
  QCOMPARE(ready.size(), 1);
  QCOMPARE(plot->heatmap().row1, 230);
  QCOMPARE(plot->heatmap().col1, 80);
  QVERIFY(plot->fullResolution());
  QCOMPARE(plot->cell(3, 11), std::fabs(m.at(203, 71)));  // planted outlier channel 71
  snapshot(w.get(), QStringLiteral("heatmap-zoomed"));

  // Double-click: the whole weight again (pooled to 32 x 32).
  QCustomPlot* cp = plot->customPlot();
  const QPoint centre = cp->axisRect()->rect().center();
  QTest::mouseDClick(plot->customPlot(), Qt::LeftButton, {}, centre);
  QTRY_VERIFY_WITH_TIMEOUT(plot->heatmap().row0 == 0 && plot->heatmap().row1 == 256 && plot->heatmap().col1 == 256,
                           kWaitMs);
  QCOMPARE(plot->cellCols(), 32);

  // Wheel zoom (three notches in, at the centre): after the wheel stops, the
  // visible region is requested and shown.
  for (int k = 0; k < 3; ++k) {
    QWheelEvent wheel(QPointF(centre), plot->customPlot()->mapToGlobal(QPointF(centre)), QPoint(), QPoint(0, 120),
                      Qt::NoButton, Qt::NoModifier, Qt::NoScrollPhase, false);
    QCoreApplication::sendEvent(plot->customPlot(), &wheel);
  }
  const double width = plot->customPlot()->xAxis->range().size();
  QVERIFY2(width < 200, qPrintable(QString::number(width)));
  QTRY_VERIFY_WITH_TIMEOUT(plot->heatmap().col1 - plot->heatmap().col0 < 256, kWaitMs);
  const HeatmapPlot::Region v = plot->visibleRegion();
  QTRY_VERIFY_WITH_TIMEOUT(plot->heatmap().row0 == v.row0 && plot->heatmap().row1 == v.row1 &&
                               plot->heatmap().col0 == v.col0 && plot->heatmap().col1 == v.col1,
                           kWaitMs);
  const qs::Heatmap& h = plot->heatmap();
  QCOMPARE(h.abs_max, maxPool(m, h.row0, h.row1, h.col0, h.col1, h.rows, h.cols));

  // A rubber band dragged with the mouse over input channels ~70..80, output channels ~20..30.
  plot->resetView();
  QTRY_VERIFY_WITH_TIMEOUT(plot->heatmap().col1 - plot->heatmap().col0 == 256, kWaitMs);
  cp->replot();
  const QPoint from(static_cast<int>(cp->xAxis->coordToPixel(70)), static_cast<int>(cp->yAxis->coordToPixel(20)));
  const QPoint to(static_cast<int>(cp->xAxis->coordToPixel(80)), static_cast<int>(cp->yAxis->coordToPixel(30)));
  QTest::mousePress(cp, Qt::LeftButton, {}, from);
  QTest::mouseMove(cp, (from + to) / 2);
  QTest::mouseMove(cp, to);
  QTest::mouseRelease(cp, Qt::LeftButton, {}, to);
  QTRY_VERIFY_WITH_TIMEOUT(plot->fullResolution() && plot->heatmap().col1 - plot->heatmap().col0 <= 12, kWaitMs);
  const qs::Heatmap& band = plot->heatmap();
  QVERIFY2(band.col0 >= 69 && band.col0 <= 71 && band.row0 >= 19 && band.row0 <= 21,
           qPrintable(QStringLiteral("%1 %2").arg(band.col0).arg(band.row0)));
  QCOMPARE(band.abs_max, maxPool(m, band.row0, band.row1, band.col0, band.col1, band.rows, band.cols));
}

void TstHeatmapExport::csvExportHoldsThePlottedData() {
  auto w = openDemoWindow();
  QVERIFY(w);
  const std::string name = "model.layers.1.mlp.down_proj.weight";
  QVERIFY(selectAndWait(*w, name));

  // Histogram: one line per bin, counts as plotted.
  HistogramPlot* hist = w->histogramPlot();
  QList<QStringList> rows = parseCsv(hist->toCsv());
  QCOMPARE(rows.front(), (QStringList{"bin", "lo", "hi", "center", "count"}));
  const QVector<double> counts = hist->binCounts(), centers = hist->binCenters();
  QCOMPARE(rows.size() - 1, counts.size());
  double total = 0;
  for (qsizetype i = 0; i < counts.size(); ++i) {
    QCOMPARE(rows[i + 1][0].toInt(), static_cast<int>(i));
    QCOMPARE(rows[i + 1][3].toDouble(), centers[i]);
    QCOMPARE(rows[i + 1][4].toDouble(), counts[i]);
    QVERIFY(std::abs(rows[i + 1][2].toDouble() - rows[i + 1][1].toDouble() - hist->binWidth()) < 1e-9);
    total += counts[i];
  }
  QCOMPARE(total, 256.0 * 688.0);

  // Channels: one line per input channel, abs-max and RMS as plotted, outliers flagged.
  qs::ui::ChannelPlot* ch = w->channelPlot();
  QTRY_VERIFY_WITH_TIMEOUT(ch->hasPlot(), kWaitMs);
  ch->setAxis(qs::ui::ChannelPlot::Axis::Input);
  rows = parseCsv(ch->toCsv());
  QCOMPARE(rows.front(), (QStringList{"input_channel", "abs_max", "rms", "outlier"}));
  const QVector<double> absMax = ch->plottedAbsMax(), rms = ch->plottedRms();
  QCOMPARE(rows.size() - 1, absMax.size());
  QCOMPARE(absMax.size(), qsizetype{688});
  std::set<int> flagged;
  for (qsizetype c = 0; c < absMax.size(); ++c) {
    QCOMPARE(rows[c + 1][0].toInt(), static_cast<int>(c));
    QCOMPARE(rows[c + 1][1].toFloat(), static_cast<float>(absMax[c]));
    QCOMPARE(rows[c + 1][2].toFloat(), static_cast<float>(rms[c]));
    if (rows[c + 1][3] == QLatin1String("1")) flagged.insert(static_cast<int>(c));
  }
  const qs::DemoTruth truth = qs::demo_truth(qs::DemoSpec{});
  const auto& down = truth.down_outlier_channels.at(1);
  QCOMPARE(flagged, std::set<int>(down.begin(), down.end()));

  // Overview: one line per layer, the plotted metric among its columns.
  qs::ui::ModelOverview* ov = w->modelOverview();
  QTRY_VERIFY_WITH_TIMEOUT(ov->hasPlot(), kWaitMs);
  ov->setMetric(qs::ui::ModelOverview::Metric::OutliersIn);
  rows = parseCsv(ov->toCsv());
  QCOMPARE(rows.front(), (QStringList{"layer", "name", "role", "block", "abs_max", "excess_kurtosis", "outliers_in",
                                      "outliers_out"}));
  const QVector<double> perLayer = ov->values();
  QCOMPARE(rows.size() - 1, perLayer.size());
  const auto model = w->document()->model();
  for (qsizetype i = 0; i < perLayer.size(); ++i) {
    QCOMPARE(rows[i + 1][1], QString::fromStdString(model->layers[static_cast<std::size_t>(i)].name));
    QCOMPARE(rows[i + 1][6].toDouble(), perLayer[i]);
  }
  ov->setMetric(qs::ui::ModelOverview::Metric::AbsMax);
  const QVector<double> absPerLayer = ov->values();
  for (qsizetype i = 0; i < absPerLayer.size(); ++i) QCOMPARE(rows[i + 1][4].toDouble(), absPerLayer[i]);

  // Heatmap: one line per cell with its channel range (inclusive) and max |w|.
  QVERIFY(showHeatmap(*w, name, QSize(50, 20)));
  HeatmapPlot* hm = w->heatmapPlot();
  rows = parseCsv(hm->toCsv());
  QCOMPARE(rows.front(), (QStringList{"out_first", "out_last", "in_first", "in_last", "max_abs"}));
  QCOMPARE(rows.size() - 1, qsizetype{20 * 50});
  for (int i = 0; i < 20; ++i)
    for (int j = 0; j < 50; ++j) {
      const QStringList& f = rows[1 + i * 50 + j];
      const HeatmapPlot::Region r = hm->cellRegion(i, j);
      QCOMPARE(f[0].toLongLong(), r.row0);
      QCOMPARE(f[1].toLongLong(), r.row1 - 1);
      QCOMPARE(f[2].toLongLong(), r.col0);
      QCOMPARE(f[3].toLongLong(), r.col1 - 1);
      QCOMPARE(f[4].toFloat(), hm->cell(i, j));
    }

  // Written by the app, byte for byte the same text; and copied as text.
  const QString path = demo_.filePath(QStringLiteral("heatmap.csv"));
  QVERIFY(w->savePlotCsv(hm, path));
  QFile file(path);
  QVERIFY(file.open(QIODevice::ReadOnly));
  QCOMPARE(QString::fromUtf8(file.readAll()), hm->toCsv());
  QVERIFY(w->copyPlotCsv(hist));
  QCOMPARE(QGuiApplication::clipboard()->text(), hist->toCsv());
}

void TstHeatmapExport::savedImagesHaveTheirFormatsMagicBytes() {
  auto w = openDemoWindow();
  QVERIFY(w);
  QVERIFY(selectAndWait(*w, "model.layers.0.self_attn.q_proj.weight"));
  QTRY_VERIFY_WITH_TIMEOUT(w->modelOverview()->hasPlot(), kWaitMs);
  QVERIFY(showHeatmap(*w, "model.layers.0.self_attn.q_proj.weight", QSize()));
  const std::pair<QString, qs::ui::ExportablePlot*> views[] = {{"histogram", w->histogramPlot()},
                                                               {"channels", w->channelPlot()},
                                                               {"overview", w->modelOverview()},
                                                               {"heatmap", w->heatmapPlot()}};
  for (const auto& [view, plot] : views) {
    QVERIFY2(plot->hasPlot(), qPrintable(view));
    QVERIFY(w->showTab(view));
    QCOMPARE(w->currentPlot(), plot);
    const QByteArray png("\x89PNG\r\n\x1a\n", 8);
    const std::pair<QString, QByteArray> formats[] = {{"png", png}, {"pdf", "%PDF-"}, {"svg", "<?xml"}};
    for (const auto& [suffix, magic] : formats) {
      const QString path = demo_.filePath(view + QStringLiteral(".") + suffix);
      QVERIFY2(w->savePlot(plot, path), qPrintable(path + ": " + w->lastError()));
      if (const QString shots = qEnvironmentVariable("QS_SHOT_DIR"); !shots.isEmpty())
        QFile::copy(path, shots + QLatin1Char('/') + QFileInfo(path).fileName());
      QFile file(path);
      QVERIFY(file.open(QIODevice::ReadOnly));
      const QByteArray bytes = file.readAll();
      QVERIFY2(bytes.size() > 2000, qPrintable(QStringLiteral("%1: %2 bytes").arg(path).arg(bytes.size())));
      QVERIFY2(bytes.startsWith(magic), qPrintable(path + ": " + QString::fromLatin1(bytes.left(16).toHex())));
      if (suffix == QLatin1String("svg")) {
        // A drawing Qt's own SVG renderer reads back, with the plot on it.
        QVERIFY(bytes.contains("<svg"));
        QSvgRenderer svg(bytes);
        QVERIFY2(svg.isValid(), qPrintable(path));
        QCOMPARE(svg.viewBox(), QRect(QPoint(0, 0), plot->customPlot()->size()));
        QImage back(plot->customPlot()->size(), QImage::Format_ARGB32);
        back.fill(Qt::white);
        QPainter painter(&back);
        svg.render(&painter);
        painter.end();
        std::set<QRgb> colours;
        for (int y = 0; y < back.height(); y += 7)
          for (int x = 0; x < back.width(); x += 7) colours.insert(back.pixel(x, y));
        QVERIFY2(colours.size() > 8, qPrintable(path));
        if (!qEnvironmentVariable("QS_SHOT_DIR").isEmpty())
          back.save(qEnvironmentVariable("QS_SHOT_DIR") + QStringLiteral("/svg-") + view + QStringLiteral(".png"));
      }
      if (suffix == QLatin1String("pdf")) {
        QVERIFY(bytes.trimmed().endsWith("%%EOF"));
        QVERIFY(bytes.contains("/Type /Page"));
      }
      if (suffix == QLatin1String("png")) {
        const QImage image = QImage::fromData(bytes, "PNG");
        QCOMPARE(image.size(), plot->customPlot()->size());
        // Not a blank canvas: a plot has many colours.
        std::set<QRgb> colours;
        for (int y = 0; y < image.height(); y += 7)
          for (int x = 0; x < image.width(); x += 7) colours.insert(image.pixel(x, y));
        QVERIFY2(colours.size() > 8, qPrintable(path));
      }
    }
  }
  // No known suffix: an error, no file.
  const QString bad = demo_.filePath(QStringLiteral("plot.bmpx"));
  QVERIFY(!w->savePlot(w->histogramPlot(), bad));
  QVERIFY(!QFile::exists(bad));
  // Copy image: the clipboard holds the plot.
  QVERIFY(w->copyPlotImage(w->heatmapPlot()));
  QCOMPARE(QGuiApplication::clipboard()->image().size(), w->heatmapPlot()->customPlot()->size());

  // Every plot's context menu offers the four exports; "Copy data as CSV" copies that plot's table.
  for (const auto& [view, plot] : views) {
    QVERIFY(w->showTab(view));
    QCustomPlot* cp = plot->customPlot();
    QGuiApplication::clipboard()->clear();
    emit cp->customContextMenuRequested(cp->rect().center());
    QMenu* menu = cp->findChild<QMenu*>();
    QVERIFY2(menu, qPrintable(view));
    QStringList texts;
    QAction* copyCsv = nullptr;
    for (QAction* a : menu->actions()) {
      texts << a->text();
      if (a->text() == QLatin1String("Copy data as CSV")) copyCsv = a;
    }
    for (const char* want : {"Save plot as…", "Copy image", "Export data as CSV…", "Copy data as CSV"})
      QVERIFY2(texts.contains(QString::fromUtf8(want)), qPrintable(view + ": " + texts.join(QLatin1Char('|'))));
    QVERIFY(copyCsv);
    copyCsv->trigger();
    QCOMPARE(QGuiApplication::clipboard()->text(), plot->toCsv());
    menu->close();
    delete menu;
  }
}

void TstHeatmapExport::gridOverlayDrawsOneLinePerLevel() {
  auto w = openDemoWindow();
  QVERIFY(w);
  const std::string name = "model.layers.0.mlp.up_proj.weight";
  QVERIFY(selectAndWait(*w, name));
  HistogramPlot* hist = w->histogramPlot();
  QCustomPlot* plot = hist->customPlot();
  QCOMPARE(itemsNamed(plot, QStringLiteral("gridLine")), 0);

  // The tensor's range from its bytes; the grid as GPTQ's find_params defines it.
  const Matrix m = decodeF16(tensor(*w, name));
  const float mn = *std::min_element(m.v.begin(), m.v.end()), mx = *std::max_element(m.v.begin(), m.v.end());
  auto levels = [&](int bits, bool sym) {
    const int maxq = (1 << bits) - 1;
    float lo = std::min(mn, 0.0f), hi = std::max(mx, 0.0f);
    if (sym) {
      hi = std::max(-lo, hi);
      lo = -hi;
    }
    const float scale = (hi - lo) / static_cast<float>(maxq);
    const float zero = sym ? static_cast<float>(maxq + 1) / 2.0f : std::nearbyint(-lo / scale);
    std::vector<double> out;
    for (int q = 0; q <= maxq; ++q) out.push_back(static_cast<double>(scale) * (q - static_cast<double>(zero)));
    return out;
  };
  auto linePositions = [plot] {
    std::vector<double> xs;
    for (int i = 0; i < plot->itemCount(); ++i)
      if (auto* line = qobject_cast<QCPItemLine*>(plot->item(i)); line && line->objectName() == QLatin1String("gridLine"))
        xs.push_back(line->start->coords().x());
    std::sort(xs.begin(), xs.end());
    return xs;
  };
  auto clipAt = [plot](const QString& item) -> double {
    for (int i = 0; i < plot->itemCount(); ++i)
      if (auto* line = qobject_cast<QCPItemLine*>(plot->item(i)); line && line->objectName() == item && line->visible())
        return line->start->coords().x();
    return NAN;
  };

  const std::pair<int, bool> grids[] = {{4, false}, {4, true}, {3, false}, {8, false}, {2, false}};
  for (const auto& [bits, sym] : grids) {
    w->setGridOverlay(bits, sym);
    const std::vector<double> want = levels(bits, sym);
    QCOMPARE(itemsNamed(plot, QStringLiteral("gridLine")), 1 << bits);
    QCOMPARE(hist->gridLineCount(), 1 << bits);
    const std::vector<double> got = linePositions();
    QCOMPARE(got.size(), want.size());
    for (std::size_t k = 0; k < want.size(); ++k) QVERIFY(std::abs(got[k] - want[k]) <= 1e-6 * std::abs(want[k]) + 1e-9);
    // The clip range is the grid's: dashed ends and shading outside.
    QVERIFY(hist->hasClipRange());
    QVERIFY(std::abs(clipAt(QStringLiteral("clipLo")) - want.front()) < 1e-9);
    QVERIFY(std::abs(clipAt(QStringLiteral("clipHi")) - want.back()) < 1e-9);
    QCOMPARE(itemsNamed(plot, QStringLiteral("clipShadeLo")), 1);
    QCOMPARE(itemsNamed(plot, QStringLiteral("clipShadeHi")), 1);
  }
  // A symmetric int4 grid cannot reach +abs-max: its top level is 7/8 of it (clipped).
  w->setGridOverlay(4, true);
  QVERIFY(hist->clipHi() < std::max(-mn, mx));
  snapshot(w.get(), QStringLiteral("histogram-grid"));

  // Kept for the next tensor (recomputed for its range); None removes it.
  QVERIFY(selectAndWait(*w, "model.layers.0.mlp.down_proj.weight"));
  QCOMPARE(itemsNamed(plot, QStringLiteral("gridLine")), 16);
  w->setGridOverlay(0, false);
  QCOMPARE(itemsNamed(plot, QStringLiteral("gridLine")), 0);
  QVERIFY(!hist->hasClipRange());
  QCOMPARE(itemsNamed(plot, QStringLiteral("clipShadeLo")), 0);

  // The widget API for the plan editor: any list of levels, any clip range.
  hist->setGrid({-0.5, -0.25, 0.0, 0.25, 0.5});
  QCOMPARE(itemsNamed(plot, QStringLiteral("gridLine")), 5);
  hist->setClipRange(-0.3, 0.4);
  QCOMPARE(clipAt(QStringLiteral("clipLo")), -0.3);
  QCOMPARE(clipAt(QStringLiteral("clipHi")), 0.4);
  hist->clearGrid();
  QCOMPARE(itemsNamed(plot, QStringLiteral("gridLine")), 0);
}

void TstHeatmapExport::compareOverlayShowsTheSecondTensorsCounts() {
  auto w = openDemoWindow();
  QVERIFY(w);
  HistogramPlot* hist = w->histogramPlot();
  const std::string a = "model.layers.0.self_attn.q_proj.weight", b = "model.layers.4.self_attn.o_proj.weight";
  QVERIFY(selectAndWait(*w, a));
  QVERIFY(!hist->hasComparison());
  QVERIFY(!hist->comparisonGraph()->visible());

  // B binned on A's bins, here: A's range from its bytes, 64 bins, the core's binning rule.
  auto binOn = [](const Matrix& of, const Matrix& on, int bins) {
    double lo = INFINITY, hi = -INFINITY;
    for (float x : on.v) lo = std::min<double>(lo, x), hi = std::max<double>(hi, x);
    std::vector<double> counts(static_cast<std::size_t>(bins), 0.0);
    for (float x : of.v) {
      if (x < lo || x > hi) continue;
      auto k = static_cast<long long>((x - lo) * (bins / (hi - lo)));
      if (k >= bins) k = bins - 1;
      counts[static_cast<std::size_t>(k)] += 1;
    }
    return counts;
  };
  const Matrix ma = decodeF16(tensor(*w, a)), mb = decodeF16(tensor(*w, b));
  const std::vector<double> want = binOn(mb, ma, 64);

  // "Compare histogram with this tensor" from B's row in the tree.
  QSignalSpy shown(w.get(), &MainWindow::comparisonShown);
  {
    qs::ui::LayerTree* tree = w->layerTree();
    QTreeView* view = tree->view();
    auto* proxy = qobject_cast<QSortFilterProxyModel*>(view->model());
    QVERIFY(proxy);
    const QList<QStandardItem*> found =
        tree->itemModel()->findItems(QStringLiteral("self_attn.o_proj.weight"), Qt::MatchRecursive);
    QModelIndex row;
    for (QStandardItem* item : found)
      if (item->data(qs::ui::LayerTree::TensorIndexRole).toInt() == tensorIndex(*w, b)) row = proxy->mapFromSource(item->index());
    QVERIFY(row.isValid());
    view->expand(row.parent());
    view->scrollTo(row);
    const QRect rect = view->visualRect(row);
    QVERIFY(!rect.isEmpty());
    emit view->customContextMenuRequested(rect.center());
    QMenu* menu = view->findChild<QMenu*>();
    QVERIFY(menu);
    QCOMPARE(menu->actions().size(), 1);
    QCOMPARE(menu->actions().front()->text(), QStringLiteral("Compare histogram with this tensor"));
    menu->actions().front()->trigger();
    delete menu;
  }
  QCOMPARE(w->comparisonTensor(), tensorIndex(*w, b));
  QCOMPARE(w->currentTensor(), tensorIndex(*w, a));  // the selection stays on A
  QTRY_VERIFY_WITH_TIMEOUT(!shown.isEmpty(), kWaitMs);
  QCOMPARE(shown.last().at(0).toInt(), tensorIndex(*w, b));
  QVERIFY(hist->hasComparison());
  QCOMPARE(hist->comparisonTitle(), QString::fromStdString(b));
  const QVector<double> got = hist->comparisonCounts();
  QCOMPARE(got.size(), qsizetype{64});
  for (int i = 0; i < 64; ++i) QCOMPARE(got[i], want[static_cast<std::size_t>(i)]);
  QVERIFY(std::accumulate(want.begin(), want.end(), 0.0) > 0.9 * static_cast<double>(mb.v.size()));
  // The outline: a step at each bin's lower edge with B's count (the bars still A's).
  QCPGraph* outline = hist->comparisonGraph();
  QVERIFY(outline->visible());
  QCOMPARE(outline->dataCount(), 65);
  for (int i = 0; i < 64; ++i) {
    const double key = outline->data()->at(i)->key, value = outline->data()->at(i)->value;
    QVERIFY(std::abs(key - (hist->binCenters()[i] - hist->binWidth() / 2)) < 1e-9);
    if (want[static_cast<std::size_t>(i)] > 0) QCOMPARE(value, want[static_cast<std::size_t>(i)]);
    else QVERIFY(value <= 0.5);  // empty: down to a log axis' floor
  }
  QVERIFY(hist->customPlot()->legend->visible());
  QVERIFY(hist->readoutAt(hist->binCenters()[30]).contains(QString::fromStdString(b)));
  snapshot(w.get(), QStringLiteral("histogram-compare"));
  // The CSV carries both.
  const QList<QStringList> rows = parseCsv(hist->toCsv());
  QCOMPARE(rows.front().last(), QStringLiteral("compare_count"));
  for (int i = 0; i < 64; ++i) QCOMPARE(rows[i + 1].last().toDouble(), want[static_cast<std::size_t>(i)]);

  // Another tensor selected: B again, on the new tensor's bins.
  const std::string c = "model.layers.3.mlp.up_proj.weight";
  shown.clear();
  QVERIFY(selectAndWait(*w, c));
  QTRY_VERIFY_WITH_TIMEOUT(!shown.isEmpty() && hist->hasComparison(), kWaitMs);
  const std::vector<double> want2 = binOn(mb, decodeF16(tensor(*w, c)), 64);
  const QVector<double> got2 = hist->comparisonCounts();
  for (int i = 0; i < 64; ++i) QCOMPARE(got2[i], want2[static_cast<std::size_t>(i)]);

  // Cleared: no outline, no legend, and it stays off for the next tensor.
  w->clearComparison();
  QVERIFY(!hist->hasComparison());
  QVERIFY(!hist->comparisonGraph()->visible());
  QVERIFY(!hist->customPlot()->legend->visible());
  QVERIFY(selectAndWait(*w, a));
  QTest::qWait(200);
  QVERIFY(!hist->hasComparison());
}

QTEST_MAIN(TstHeatmapExport)
#include "tst_heatmap_export.moc"
