// The main window on the demo model, offscreen: the tree shows every tensor in
// its block, the histogram shows exactly the counts of an independent binning
// of the tensor's F16 values, log-y toggles, a broken file is an error that
// names the file and leaves the open model alone, and rapid selections end
// with the last one's statistics (older requests superseded, never shown).
#include <QAction>
#include <QFile>
#include <QSignalSpy>
#include <QStandardItemModel>
#include <QStandardPaths>
#include <QTemporaryDir>
#include <QtTest>
#include <algorithm>
#include <cmath>
#include <cstring>
#include <memory>
#include <qcustomplot.h>
#include <set>

#include "app/document.h"
#include "app/main_window.h"
#include "demo_window.h"
#include "backend/cpu_backend.h"
#include "demo/demo_model.h"
#include "util/half.h"
#include "widgets/histogram_plot.h"
#include "widgets/layer_tree.h"
#include "widgets/stats_panel.h"

using qs::app::MainWindow;
using qs::ui::HistogramPlot;
using qs::ui::LayerTree;
using qs::ui::StatsPanel;

namespace {

constexpr int kWaitMs = 30000;

// The histogram the core should produce, from the raw F16 bytes: 64 bins over
// [min, max] of the finite values, bin = floor((x - lo) * (bins / (hi - lo))),
// the maximum in the last bin.
struct Expected {
  double lo = 0, hi = 0;
  std::vector<std::uint64_t> counts;
};

Expected binF16(const qs::TensorInfo& t, int bins = 64) {
  const auto bytes = t.bytes();
  std::vector<float> v(t.numel());
  for (std::size_t i = 0; i < v.size(); ++i) {
    std::uint16_t h;
    std::memcpy(&h, bytes.data() + 2 * i, 2);
    v[i] = qs::f16_to_f32(h);
  }
  Expected e;
  e.lo = INFINITY;
  e.hi = -INFINITY;
  for (float x : v)
    if (std::isfinite(x)) {
      e.lo = std::min<double>(e.lo, x);
      e.hi = std::max<double>(e.hi, x);
    }
  e.counts.assign(static_cast<std::size_t>(bins), 0);
  const double inv = bins / (e.hi - e.lo);
  for (float x : v) {
    if (!std::isfinite(x)) continue;
    auto b = static_cast<long long>(std::floor((x - e.lo) * inv));
    if (b >= bins) b = bins - 1;
    ++e.counts[static_cast<std::size_t>(b)];
  }
  return e;
}

// Tensor rows (not group rows) under `parent`, recursively.
void collectTensorRows(const QStandardItemModel* m, const QModelIndex& parent, std::vector<QModelIndex>& out) {
  for (int r = 0; r < m->rowCount(parent); ++r) {
    const QModelIndex idx = m->index(r, LayerTree::NameColumn, parent);
    if (idx.data(LayerTree::TensorIndexRole).toInt() >= 0) out.push_back(idx);
    collectTensorRows(m, idx, out);
  }
}

}  // namespace

class TstMainWindow : public QObject {
  Q_OBJECT

 private slots:
  void initTestCase();
  void treeGroupsEveryTensorByBlock();
  void histogramHoldsExactlyTheTensorsCounts();
  void logYToggleChangesAxisScale();
  void brokenFileIsAnErrorAndKeepsTheModel();
  void rapidSelectionsEndWithTheLast();

 private:
  // A fresh window (empty stats cache) with the demo model open.
  std::unique_ptr<MainWindow> openDemoWindow();

  qs::test::DemoModelDir demo_;
};

void TstMainWindow::initTestCase() {
  // Keep the user's settings (recent files) out of it.
  qs::test::use_test_settings("tst_main_window");
  std::string error;
  QVERIFY2(demo_.write(error), error.c_str());
}

std::unique_ptr<MainWindow> TstMainWindow::openDemoWindow() {
  return qs::test::open_window(demo_.path(), kWaitMs);
}

void TstMainWindow::treeGroupsEveryTensorByBlock() {
  auto w = openDemoWindow();
  QVERIFY(w);
  const auto model = w->document()->model();
  QCOMPARE(model->tensors.size(), std::size_t{57});

  LayerTree* tree = w->layerTree();
  QCOMPARE(tree->tensorRowCount(), 57);
  QCOMPARE(tree->groupTitles(), (QStringList{"Embedding & head", "Block 0", "Block 1", "Block 2", "Block 3",
                                             "Block 4", "Block 5"}));

  std::vector<QModelIndex> rows;
  collectTensorRows(tree->itemModel(), {}, rows);
  QCOMPARE(rows.size(), std::size_t{57});
  std::set<int> seen;
  int linear = 0;
  const QStringList linearRoles{"q", "k", "v", "o", "gate", "up", "down", "embed", "lm_head"};
  for (const QModelIndex& idx : rows) {
    const int tensor = idx.data(LayerTree::TensorIndexRole).toInt();
    seen.insert(tensor);
    const QString fullName = QString::fromStdString(model->tensors[static_cast<std::size_t>(tensor)].name);
    QCOMPARE(idx.data(Qt::ToolTipRole).toString(), fullName);
    const QString role = idx.siblingAtColumn(LayerTree::RoleColumn).data().toString();
    if (linearRoles.contains(role)) ++linear;
    // Rows under "Block N" are tensors of block N and show their name within the block.
    const QString group = idx.parent().data().toString();
    if (group.startsWith(QLatin1String("Block "))) {
      const QString prefix = QStringLiteral("model.layers.%1.").arg(group.mid(6));
      QVERIFY2(fullName.startsWith(prefix), qPrintable(fullName + " under " + group));
      QCOMPARE(idx.data().toString(), fullName.mid(prefix.size()));
    } else {
      QCOMPARE(group, QStringLiteral("Embedding & head"));
    }
  }
  QCOMPARE(seen.size(), std::size_t{57});
  QCOMPARE(linear, 44);
  QCOMPARE(static_cast<int>(model->layers.size()), 44);
  // Each block: 7 linear layers and 2 norms.
  for (int r = 1; r < tree->itemModel()->rowCount(); ++r) QCOMPARE(tree->itemModel()->item(r)->rowCount(), 9);
}

void TstMainWindow::histogramHoldsExactlyTheTensorsCounts() {
  auto w = openDemoWindow();
  QVERIFY(w);
  const std::string name = "model.layers.2.mlp.down_proj.weight";
  const auto index = w->document()->model()->find_tensor(name);
  QVERIFY(index);
  const int tensor = static_cast<int>(*index);
  QSignalSpy ready(w->document(), &qs::app::Document::statsReady);
  QVERIFY(w->layerTree()->selectTensor(tensor));
  QCOMPARE(w->currentTensor(), tensor);
  HistogramPlot* plot = w->histogramPlot();
  QTRY_VERIFY_WITH_TIMEOUT(plot->state() == HistogramPlot::State::Plot && plot->title() == QString::fromStdString(name),
                           kWaitMs);
  QVERIFY(!ready.isEmpty());
  QCOMPARE(ready.last().at(0).toInt(), tensor);

  const qs::TensorInfo& t = w->document()->model()->tensors[*index];
  QCOMPARE(t.dtype, qs::DType::F16);
  const Expected e = binF16(t);
  const QVector<double> counts = plot->binCounts();
  const QVector<double> centers = plot->binCenters();
  QCOMPARE(counts.size(), qsizetype{64});
  QCOMPARE(centers.size(), qsizetype{64});
  std::uint64_t total = 0;
  const double width = (e.hi - e.lo) / 64.0;
  for (int i = 0; i < 64; ++i) {
    QCOMPARE(static_cast<std::uint64_t>(counts[i]), e.counts[static_cast<std::size_t>(i)]);
    QVERIFY(std::abs(centers[i] - (e.lo + width * (i + 0.5))) <= 1e-9 * std::max(1.0, std::abs(centers[i])));
    total += e.counts[static_cast<std::size_t>(i)];
  }
  QCOMPARE(total, t.numel());
  // The demo's down_proj is heavy-tailed: some bins are empty, and they are not drawn
  // (a log axis has no 0), yet they stay in the data with count 0.
  QVERIFY(std::count(counts.begin(), counts.end(), 0.0) > 0);

  StatsPanel* stats = w->statsPanel();
  QCOMPARE(stats->text(StatsPanel::Min), QString::asprintf("%.4g", e.lo));
  QCOMPARE(stats->text(StatsPanel::Max), QString::asprintf("%.4g", e.hi));
  QCOMPARE(stats->text(StatsPanel::Name), QString::fromStdString(name));
  QCOMPARE(stats->text(StatsPanel::Shape), QStringLiteral("[256, 688]"));
  // The median row: the nearest-rank median of the decoded values, sorted here.
  {
    std::vector<float> v(t.numel());
    const auto* h = reinterpret_cast<const std::uint16_t*>(t.bytes().data());
    for (std::size_t i = 0; i < v.size(); ++i) v[i] = qs::f16_to_f32(h[i]);
    std::sort(v.begin(), v.end());
    const std::size_t rank = (v.size() + 1) / 2 - 1;  // ceil(n / 2) - 1
    QCOMPARE(stats->text(StatsPanel::P50), QString::asprintf("%.4g", static_cast<double>(v[rank])));
  }
  // The hover read-out names the bin and its count.
  QVERIFY(plot->readoutAt(centers[10]).contains(QStringLiteral("count %1").arg(e.counts[10])));
}

void TstMainWindow::logYToggleChangesAxisScale() {
  auto w = openDemoWindow();
  QVERIFY(w);
  HistogramPlot* plot = w->histogramPlot();
  QTRY_VERIFY_WITH_TIMEOUT(plot->state() == HistogramPlot::State::Plot, kWaitMs);
  QCPAxis* y = plot->customPlot()->yAxis;
  QVERIFY(plot->logY());  // the default
  QVERIFY(w->logYAction()->isChecked());
  QCOMPARE(y->scaleType(), QCPAxis::stLogarithmic);
  QVERIFY(y->range().lower > 0);

  w->logYAction()->trigger();
  QVERIFY(!plot->logY());
  QCOMPARE(y->scaleType(), QCPAxis::stLinear);
  QCOMPARE(y->range().lower, 0.0);

  w->logYAction()->trigger();
  QVERIFY(plot->logY());
  QCOMPARE(y->scaleType(), QCPAxis::stLogarithmic);
  QVERIFY(y->range().lower > 0);
}

void TstMainWindow::brokenFileIsAnErrorAndKeepsTheModel() {
  auto w = openDemoWindow();
  QVERIFY(w);
  const auto before = w->document()->model();
  const QString title = w->windowTitle();
  QTRY_VERIFY_WITH_TIMEOUT(w->histogramPlot()->state() == HistogramPlot::State::Plot, kWaitMs);

  const QString broken = demo_.filePath(QStringLiteral("broken.safetensors"));
  {
    QFile f(broken);
    QVERIFY(f.open(QIODevice::WriteOnly));
    QCOMPARE(f.write("abcde", 5), qint64{5});
  }
  QSignalSpy failed(w->document(), &qs::app::Document::openFailed);
  QSignalSpy reported(w.get(), &MainWindow::errorReported);
  w->openPath(broken);
  QVERIFY(failed.wait(kWaitMs));
  QCOMPARE(failed.at(0).at(0).toString(), broken);
  QCOMPARE(reported.size(), 1);
  QVERIFY2(w->lastError().contains(QStringLiteral("broken.safetensors")), qPrintable(w->lastError()));

  // The demo model is still the open one, shown as before.
  QCOMPARE(w->document()->model(), before);
  QCOMPARE(w->windowTitle(), title);
  QCOMPARE(w->layerTree()->tensorRowCount(), 57);
  QCOMPARE(w->histogramPlot()->state(), HistogramPlot::State::Plot);
}

void TstMainWindow::rapidSelectionsEndWithTheLast() {
  auto w = openDemoWindow();
  QVERIFY(w);
  // Let the default selection finish so that only our burst is in flight.
  QTRY_VERIFY_WITH_TIMEOUT(w->histogramPlot()->state() == HistogramPlot::State::Plot, kWaitMs);
  const auto model = w->document()->model();
  std::vector<int> burst;
  for (int block = 0; block < 6; ++block)
    for (const char* m : {"mlp.gate_proj", "mlp.up_proj", "mlp.down_proj"}) {
      const auto i = model->find_tensor("model.layers." + std::to_string(block) + "." + m + ".weight");
      QVERIFY(i);
      burst.push_back(static_cast<int>(*i));
    }
  const int last = burst.back();

  QSignalSpy ready(w->document(), &qs::app::Document::statsReady);
  // No event processing in between: each selection supersedes the one before.
  for (int t : burst) QVERIFY(w->layerTree()->selectTensor(t));
  QCOMPARE(w->currentTensor(), last);
  QCOMPARE(w->histogramPlot()->state(), HistogramPlot::State::Busy);

  const QString lastName = QString::fromStdString(model->tensors[static_cast<std::size_t>(last)].name);
  QTRY_VERIFY_WITH_TIMEOUT(
      w->histogramPlot()->state() == HistogramPlot::State::Plot && w->histogramPlot()->title() == lastName, kWaitMs);
  QTest::qWait(300);  // any straggler from the burst would arrive by now
  QCOMPARE(ready.size(), 1);
  QCOMPARE(ready.at(0).at(0).toInt(), last);
  for (int t : burst)
    if (t != last) QVERIFY2(!w->document()->cachedStats(t), "a superseded result was kept");

  // And what is shown is that tensor's histogram.
  const Expected e = binF16(model->tensors[static_cast<std::size_t>(last)]);
  const QVector<double> counts = w->histogramPlot()->binCounts();
  QCOMPARE(counts.size(), qsizetype{64});
  for (int i = 0; i < 64; ++i) QCOMPARE(static_cast<std::uint64_t>(counts[i]), e.counts[static_cast<std::size_t>(i)]);
  QCOMPARE(w->statsPanel()->text(StatsPanel::Name), lastName);
}

QTEST_MAIN(TstMainWindow)
#include "tst_main_window.moc"
