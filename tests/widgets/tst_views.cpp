// The channel plot and the model overview in the main window, on the demo
// model, offscreen: what they plot is checked against the outliers the demo
// generator planted (demo_truth) and against per-channel maxima computed here
// from the raw F16 bytes, not against the core's own answers.
#include <QSignalSpy>
#include <QStandardPaths>
#include <QTabWidget>
#include <QTemporaryDir>
#include <QtTest>
#include <algorithm>
#include <cmath>
#include <cstring>
#include <memory>
#include <qcustomplot.h>

#include "app/document.h"
#include "app/main_window.h"
#include "demo_window.h"
#include "backend/cpu_backend.h"
#include "demo/demo_model.h"
#include "util/half.h"
#include "widgets/channel_plot.h"
#include "widgets/layer_tree.h"
#include "widgets/model_overview.h"

using qs::app::MainWindow;
using qs::ui::ChannelPlot;
using qs::ui::ModelOverview;

namespace {

constexpr int kWaitMs = 30000;

// Decoded values of a 2-D F16 weight, row-major [rows, cols].
std::vector<float> decodeF16(const qs::TensorInfo& t) {
  const auto bytes = t.bytes();
  std::vector<float> v(t.numel());
  for (std::size_t i = 0; i < v.size(); ++i) {
    std::uint16_t h;
    std::memcpy(&h, bytes.data() + 2 * i, 2);
    v[i] = qs::f16_to_f32(h);
  }
  return v;
}

QVector<int> sorted(QVector<int> v) {
  std::sort(v.begin(), v.end());
  return v;
}

}  // namespace

class TstViews : public QObject {
  Q_OBJECT

 private slots:
  void initTestCase();
  void channelPlotShowsPlantedInputOutliers();
  void overviewCountsPlantedOutliersPerLayer();
  void overviewClickSelectsTheLayer();

 private:
  std::unique_ptr<MainWindow> openDemoWindow();
  // Selects `name` in the tree and waits until the channel plot shows it.
  bool selectAndWait(MainWindow& w, const std::string& name);

  qs::test::DemoModelDir demo_;
};

void TstViews::initTestCase() {
  qs::test::use_test_settings("tst_views");
  std::string error;
  QVERIFY2(demo_.write(error), error.c_str());
}

std::unique_ptr<MainWindow> TstViews::openDemoWindow() {
  return qs::test::open_window(demo_.path(), kWaitMs);
}

bool TstViews::selectAndWait(MainWindow& w, const std::string& name) {
  const auto index = w.document()->model()->find_tensor(name);
  if (!index || !w.layerTree()->selectTensor(static_cast<int>(*index))) return false;
  ChannelPlot* plot = w.channelPlot();
  return QTest::qWaitFor([&] { return plot->hasPlot() && plot->title() == QString::fromStdString(name); }, kWaitMs);
}

void TstViews::channelPlotShowsPlantedInputOutliers() {
  auto w = openDemoWindow();
  QVERIFY(w);
  QVERIFY(w->showTab(QStringLiteral("channels")));
  QCOMPARE(w->viewTabs()->currentWidget(), w->channelPlot());

  const std::string name = "model.layers.1.self_attn.q_proj.weight";
  QVERIFY(selectAndWait(*w, name));
  ChannelPlot* plot = w->channelPlot();
  plot->setAxis(ChannelPlot::Axis::Input);
  QCOMPARE(plot->axis(), ChannelPlot::Axis::Input);

  // Outliers: exactly the input channels the generator planted, listed at the side.
  const qs::DemoTruth truth = qs::demo_truth(qs::DemoSpec{});
  QVector<int> planted(truth.hidden_outlier_channels.begin(), truth.hidden_outlier_channels.end());
  planted = sorted(planted);
  QVERIFY(!planted.isEmpty());
  QCOMPARE(sorted(plot->listedOutliers()), planted);
  QVector<int> shown;
  for (std::size_t c : plot->outlierChannels()) shown << static_cast<int>(c);
  QCOMPARE(sorted(shown), planted);

  // Abs-max per input channel (column), computed here from the F16 bytes.
  const qs::TensorInfo& t = *std::find_if(w->document()->model()->tensors.begin(),
                                          w->document()->model()->tensors.end(),
                                          [&](const qs::TensorInfo& x) { return x.name == name; });
  QCOMPARE(t.dtype, qs::DType::F16);
  QCOMPARE(t.shape.size(), std::size_t{2});
  const auto rows = static_cast<std::size_t>(t.shape[0]), cols = static_cast<std::size_t>(t.shape[1]);
  const std::vector<float> v = decodeF16(t);
  std::vector<double> colMax(cols, 0.0), rowMax(rows, 0.0);
  for (std::size_t r = 0; r < rows; ++r)
    for (std::size_t c = 0; c < cols; ++c) {
      const double a = std::abs(static_cast<double>(v[r * cols + c]));
      colMax[c] = std::max(colMax[c], a);
      rowMax[r] = std::max(rowMax[r], a);
    }
  QCOMPARE(plot->pointCount(), static_cast<int>(cols));
  const QVector<double> plotted = plot->plottedAbsMax();
  QCOMPARE(plotted.size(), static_cast<qsizetype>(cols));
  for (std::size_t c = 0; c < cols; ++c) QCOMPARE(plotted[static_cast<qsizetype>(c)], colMax[c]);  // F16 -> F32 exact
  // The planted channels stand far above the median channel (the k = 6 rule).
  std::vector<double> sortedMax = colMax;
  std::nth_element(sortedMax.begin(), sortedMax.begin() + static_cast<long>(cols / 2), sortedMax.end());
  for (int c : planted) QVERIFY(colMax[static_cast<std::size_t>(c)] > 6.0 * sortedMax[cols / 2]);

  // The red markers sit exactly on the outlier channels.
  QCPGraph* marks = nullptr;
  for (int g = 0; g < plot->customPlot()->graphCount(); ++g)
    if (plot->customPlot()->graph(g)->name() == QLatin1String("outlier channel")) marks = plot->customPlot()->graph(g);
  QVERIFY(marks);
  QCOMPARE(marks->dataCount(), planted.size());
  for (int i = 0; i < marks->dataCount(); ++i) QVERIFY(planted.contains(static_cast<int>(marks->data()->at(i)->key)));

  // Sorted by range: x is the rank, the read-out still names the true channel.
  plot->setSortByRange(true);
  const QVector<int> order = plot->plottedChannels();
  QCOMPARE(sorted(order.mid(0, planted.size())), planted);
  const QVector<double> bySize = plot->plottedAbsMax();
  QVERIFY(std::is_sorted(bySize.rbegin(), bySize.rend()));
  QVERIFY2(plot->readoutAt(0.0).contains(QStringLiteral("input channel %1").arg(order[0])),
           qPrintable(plot->readoutAt(0.0)));
  plot->setSortByRange(false);
  QVERIFY(plot->readoutAt(5.0).startsWith(QStringLiteral("input channel 5\n")));

  // Clicking a listed outlier centres the plot on it and says which channel.
  QSignalSpy activated(plot, &ChannelPlot::channelActivated);
  QListWidget* list = plot->outlierList();
  QCOMPARE(list->count(), planted.size());
  const QRect itemRect = list->visualItemRect(list->item(1));
  QTest::mouseClick(list->viewport(), Qt::LeftButton, {}, itemRect.center());
  QCOMPARE(activated.size(), 1);
  QCOMPARE(activated.at(0).at(0).value<ChannelPlot::Axis>(), ChannelPlot::Axis::Input);
  QCOMPARE(activated.at(0).at(1).toInt(), planted[1]);
  const QCPRange x = plot->customPlot()->xAxis->range();
  QVERIFY(std::abs(x.center() - planted[1]) < 0.5);
  QVERIFY(x.size() < static_cast<double>(cols) / 4);

  // Output channels: one point per row, abs-max per row.
  plot->setAxis(ChannelPlot::Axis::Output);
  QCOMPARE(plot->pointCount(), 256);
  const QVector<double> perRow = plot->plottedAbsMax();
  for (std::size_t r = 0; r < rows; ++r) QCOMPARE(perRow[static_cast<qsizetype>(r)], rowMax[r]);
  QVERIFY(plot->readoutAt(3.0).startsWith(QStringLiteral("output channel 3\n")));

  // Log-y toggles the axis scale.
  QVERIFY(plot->logY());
  plot->setLogY(false);
  QCOMPARE(plot->customPlot()->yAxis->scaleType(), QCPAxis::stLinear);
  plot->setLogY(true);
  QCOMPARE(plot->customPlot()->yAxis->scaleType(), QCPAxis::stLogarithmic);
}

void TstViews::overviewCountsPlantedOutliersPerLayer() {
  auto w = openDemoWindow();
  QVERIFY(w);
  QVERIFY(w->showTab(QStringLiteral("overview")));
  ModelOverview* overview = w->modelOverview();
  QCOMPARE(w->viewTabs()->currentWidget(), overview);
  // Started by the open itself, without any request from the window.
  QTRY_VERIFY_WITH_TIMEOUT(overview->hasPlot(), kWaitMs);
  const auto model = w->document()->model();
  QCOMPARE(model->layers.size(), std::size_t{44});
  QCOMPARE(overview->layerCount(), 44);
  QCOMPARE(overview->pointCount(), 44);  // one point per layer
  QCOMPARE(overview->seriesNames(),
           (QStringList{"embed", "q", "k", "v", "o", "gate", "up", "down", "lm_head"}));

  const qs::DemoTruth truth = qs::demo_truth(qs::DemoSpec{});
  QCOMPARE(truth.hidden_outlier_channels.size(), std::size_t{4});
  overview->setMetric(ModelOverview::Metric::OutliersIn);
  QCOMPARE(overview->customPlot()->yAxis->scaleType(), QCPAxis::stLinear);
  const QVector<double> counts = overview->values();
  QCOMPARE(counts.size(), qsizetype{44});
  for (std::size_t i = 0; i < model->layers.size(); ++i) {
    const qs::Layer& l = model->layers[i];
    double expected = 0;
    switch (l.role) {
      case qs::LayerRole::Q: case qs::LayerRole::K: case qs::LayerRole::V:
      case qs::LayerRole::Gate: case qs::LayerRole::Up:
        expected = static_cast<double>(truth.hidden_outlier_channels.size());
        QCOMPARE(expected, 4.0);
        break;
      case qs::LayerRole::Down:
        expected = static_cast<double>(truth.down_outlier_channels.at(static_cast<std::size_t>(l.block)).size());
        QCOMPARE(expected, 2.0);
        break;
      default: break;
    }
    QVERIFY2(counts[static_cast<qsizetype>(i)] == expected,
             qPrintable(QStringLiteral("%1: %2 outlier input channels, expected %3")
                            .arg(QString::fromStdString(l.name)).arg(counts[static_cast<qsizetype>(i)]).arg(expected)));
    QCOMPARE(overview->roleOf(static_cast<int>(i)), QString::fromStdString(std::string(qs::layer_role_name(l.role))));
  }
  // The hover read-out names the layer and its value.
  const QString text = overview->readoutFor(1);
  QVERIFY2(text.startsWith(QString::fromStdString(model->layers[1].name)), qPrintable(text));
  QVERIFY2(text.contains(QStringLiteral("%1 outlier input channels").arg(counts[1])), qPrintable(text));

  // Abs-max and kurtosis are on log axes; the abs-max agrees with the layer's own statistics.
  overview->setMetric(ModelOverview::Metric::AbsMax);
  QCOMPARE(overview->customPlot()->yAxis->scaleType(), QCPAxis::stLogarithmic);
  const std::string qName = "model.layers.1.self_attn.q_proj.weight";
  QVERIFY(selectAndWait(*w, qName));
  const auto summary = w->document()->cachedStats(w->currentTensor());
  QVERIFY(summary);
  int qLayer = -1;
  for (std::size_t i = 0; i < model->layers.size(); ++i)
    if (model->tensors[model->layers[i].weight].name == qName) qLayer = static_cast<int>(i);
  QVERIFY(qLayer >= 0);
  QCOMPARE(overview->values()[qLayer], summary->stats.abs_max);
  overview->setMetric(ModelOverview::Metric::Kurtosis);
  QCOMPARE(overview->customPlot()->yAxis->scaleType(), QCPAxis::stLogarithmic);
  QCOMPARE(overview->pointCount(), 44);
}

void TstViews::overviewClickSelectsTheLayer() {
  auto w = openDemoWindow();
  QVERIFY(w);
  QVERIFY(w->showTab(QStringLiteral("model overview")));
  ModelOverview* overview = w->modelOverview();
  QTRY_VERIFY_WITH_TIMEOUT(overview->hasPlot(), kWaitMs);
  const auto model = w->document()->model();

  // A real click on the point of block 3's down_proj.
  int layer = -1;
  for (std::size_t i = 0; i < model->layers.size(); ++i)
    if (model->layers[i].name == "model.layers.3.mlp.down_proj") layer = static_cast<int>(i);
  QVERIFY(layer >= 0);
  QSignalSpy activated(overview, &ModelOverview::layerActivated);
  const QPoint at = overview->pointPixel(layer);
  QCOMPARE(overview->layerAt(at), layer);
  QTest::mouseClick(overview->customPlot(), Qt::LeftButton, {}, at);
  QCOMPARE(activated.size(), 1);
  QCOMPARE(activated.at(0).at(0).toInt(), layer);
  const int weight = static_cast<int>(model->layers[static_cast<std::size_t>(layer)].weight);
  QCOMPARE(w->currentTensor(), weight);
  QCOMPARE(w->layerTree()->currentTensor(), weight);
  // ...and the usual statistics follow, in every view.
  const QString name = QString::fromStdString(model->tensors[static_cast<std::size_t>(weight)].name);
  QTRY_VERIFY_WITH_TIMEOUT(w->channelPlot()->hasPlot() && w->channelPlot()->title() == name, kWaitMs);

  // The slot does the same for the embedding (outside any block).
  int embed = -1;
  for (std::size_t i = 0; i < model->layers.size(); ++i)
    if (model->layers[i].role == qs::LayerRole::Embed) embed = static_cast<int>(i);
  QVERIFY(embed >= 0);
  overview->activateLayer(embed);
  QCOMPARE(w->currentTensor(), static_cast<int>(model->layers[static_cast<std::size_t>(embed)].weight));

  // Opening another model cancels the running overview and starts a new one.
  QSignalSpy started(w->document(), &qs::app::Document::overviewStarted);
  QSignalSpy ready(w->document(), &qs::app::Document::overviewReady);
  w->openPath(demo_.path());
  QTRY_VERIFY_WITH_TIMEOUT(!ready.isEmpty(), kWaitMs);
  QCOMPARE(started.size(), 1);
  QTRY_VERIFY_WITH_TIMEOUT(overview->hasPlot(), kWaitMs);
  QCOMPARE(overview->pointCount(), 44);
}

QTEST_MAIN(TstViews)
#include "tst_views.moc"
