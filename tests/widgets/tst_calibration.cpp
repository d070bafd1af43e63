// Calibration in the GUI, offscreen, on a copy of stories260K (so that the
// default calibration file lands in a temporary folder, never in ../shared):
// the Calibrate dialog runs core calibrate() and writes the file, which a
// later open loads by itself; the activation views show the numbers of an
// independent core calibrate() run with the same settings; the plan editor's
// output-error column equals relative_output_error_h on the loaded Hessian;
// a cancelled run leaves no file; another model's or a corrupt file is
// refused with the core's message.
#include <QDir>
#include <QFile>
#include <QLabel>
#include <QLineEdit>
#include <QPushButton>
#include <QSignalSpy>
#include <QSpinBox>
#include <QStandardPaths>
#include <QTableView>
#include <QTemporaryDir>
#include <QToolButton>
#include <QtTest>
#include <cmath>
#include <memory>

#include "app/document.h"
#include "app/main_window.h"
#include "backend/cpu_backend.h"
#include "calib/calibrate.h"
#include "calib/calibration_file.h"
#include "demo/demo_model.h"
#include "io/open_model.h"
#include "export/size_account.h"
#include "quant/allocate.h"
#include "quant/layer_method.h"
#include "quant/measure.h"
#include "quant/metrics.h"
#include "stats/outliers.h"
#include "widgets/allocate_dialog.h"
#include "widgets/calibrate_dialog.h"
#include "widgets/quant_error_view.h"
#include "widgets/channel_plot.h"
#include "widgets/heatmap_plot.h"
#include "widgets/histogram_plot.h"
#include "widgets/layer_tree.h"
#include "widgets/plan_table.h"

using qs::app::MainWindow;
using qs::ui::PlanTableModel;

namespace {

constexpr int kWaitMs = 120000;
constexpr int kSeqs = 4, kLen = 64, kSeed = 3;

void snapshot(QWidget* w, const QString& name) {
  const QString dir = qEnvironmentVariable("QS_SHOT_DIR");
  if (dir.isEmpty() || !w) return;
  QTest::qWait(200);
  w->grab().save(dir + QLatin1Char('/') + name + QStringLiteral(".png"));
}

int rowOf(const qs::Model& m, const std::string& name) {
  for (std::size_t i = 0; i < m.layers.size(); ++i)
    if (m.layers[i].name == name) return static_cast<int>(i);
  return -1;
}

}  // namespace

class TstCalibration : public QObject {
  Q_OBJECT

 private slots:
  void initTestCase();
  void calibrateThroughTheDialog();
  void activationViewsShowTheCoresNumbers();
  void outputErrorColumnIsTheHessianError();
  void calibratedMethodsAreMeasuredInTheTable();
  void allocationMinimisesTheOutputError();
  void reopeningLoadsTheDefaultFile();
  void badFilesAreRefused();
  void readOnlyFolderIsNotWritten();
  void cancelLeavesNoFile();

 private:
  std::unique_ptr<MainWindow> openWindow(const QString& path);
  bool settle(MainWindow& w);

  QTemporaryDir dir_;
  QString model_, text_, calibPath_;
  bool haveShared_ = false;
  qs::CalibrationRun ref_;  // core calibrate() with the dialog's settings
};

void TstCalibration::initTestCase() {
  QStandardPaths::setTestModeEnabled(true);
  QCoreApplication::setOrganizationName(QStringLiteral("QuantScopeTests"));
  QCoreApplication::setApplicationName(QStringLiteral("tst_calibration"));
  QVERIFY(dir_.isValid());
  const QString shared = QStringLiteral(QS_SHARED_DIR);
  const QString hf = shared + QStringLiteral("/models/stories260K/hf");
  text_ = shared + QStringLiteral("/models/stories260K/eval/tiny_stories_eval.txt");
  if (!QFile::exists(hf + QStringLiteral("/model.safetensors")) || !QFile::exists(text_)) {
    qInfo("SKIP: ../shared/models/stories260K is absent (fresh clone): the calibration tests need it");
    return;
  }
  haveShared_ = true;
  // A writable copy: the default calibration file goes next to the model.
  model_ = dir_.filePath(QStringLiteral("stories260K"));
  QVERIFY(QDir().mkpath(model_));
  for (const QString& f : QDir(hf).entryList(QDir::Files)) {
    QVERIFY(QFile::copy(hf + QLatin1Char('/') + f, model_ + QLatin1Char('/') + f));
    QFile(model_ + QLatin1Char('/') + f).setPermissions(QFileDevice::ReadOwner | QFileDevice::WriteOwner);
  }
  auto m = qs::open_model(model_.toStdString());
  QVERIFY2(m.ok(), m.ok() ? "" : m.error().message.c_str());
  calibPath_ = QString::fromStdString(qs::default_calibration_path(*m));
  QVERIFY(calibPath_.startsWith(dir_.path()));
  qs::CalibrationSettings s;
  s.text_files = {text_.toStdString()};
  s.sequences = kSeqs;
  s.seq_len = kLen;
  s.seed = kSeed;
  auto run = qs::calibrate(*m, s);
  QVERIFY2(run.ok(), run.ok() ? "" : run.error().message.c_str());
  ref_ = std::move(*run);
}

std::unique_ptr<MainWindow> TstCalibration::openWindow(const QString& path) {
  auto w = std::make_unique<MainWindow>(qs::cpu_backend());
  w->setInteractiveErrors(false);
  w->show();
  QSignalSpy opened(w->document(), &qs::app::Document::modelOpened);
  w->openPath(path);
  if (!opened.wait(kWaitMs)) return nullptr;
  if (!settle(*w)) return nullptr;
  return w;
}

bool TstCalibration::settle(MainWindow& w) {
  return QTest::qWaitFor(
      [&] {
        return w.planEditor()->tableModel()->allSettled() && !w.document()->isMeasuring() &&
               !w.document()->isLoadingCalibration();
      },
      kWaitMs);
}

void TstCalibration::calibrateThroughTheDialog() {
  if (!haveShared_) QSKIP("../shared/models/stories260K is absent");
  QFile::remove(calibPath_);
  auto w = openWindow(model_);
  QVERIFY(w);
  QVERIFY(!w->document()->calibration());
  QVERIFY(w->calibrateAction()->isEnabled());
  w->calibrateAction()->trigger();
  qs::ui::CalibrateDialog* d = w->calibrateDialog();
  QVERIFY(d->isVisible());
  QCOMPARE(d->outputEdit()->text(), calibPath_);  // next to the model by default
  // The forward pass goes where the window's compute backend is: the CPU here.
  QVERIFY2(d->summaryText().contains(QStringLiteral("forward pass on CPU (")), qPrintable(d->summaryText()));
  d->setTextFiles({text_});
  d->sequencesBox()->setValue(kSeqs);
  d->seqLenBox()->setValue(kLen);
  d->seedBox()->setValue(kSeed);
  snapshot(d, QStringLiteral("calibrate-dialog"));
  QSignalSpy ended(w.get(), &MainWindow::calibrationRunEnded);
  QSignalSpy loaded(w.get(), &MainWindow::calibrationLoaded);
  QTest::mouseClick(d->startButton(), Qt::LeftButton);
  QVERIFY(ended.count() > 0 || ended.wait(kWaitMs));
  QVERIFY2(!d->resultIsError(), qPrintable(d->resultText()));
  QVERIFY(!d->isRunning());
  QVERIFY2(d->resultText().contains(QStringLiteral("%1 tokens").arg(kSeqs * kLen)), qPrintable(d->resultText()));
  QVERIFY(d->resultText().contains(calibPath_));
  // The job reports the runner it used, and the dialog shows it.
  QVERIFY2(d->resultText().contains(QStringLiteral("forward pass on CPU (")), qPrintable(d->resultText()));
  QVERIFY(!d->resultText().contains(QStringLiteral("not used")));
  snapshot(d, QStringLiteral("calibrate-dialog-result"));
  QVERIFY(QFile::exists(calibPath_));
  QVERIFY(loaded.count() > 0);
  // The file reads back with core's reader, for this model, with our settings.
  auto m = qs::open_model(model_.toStdString());
  QVERIFY(m.ok());
  auto f = qs::read_calibration_file(calibPath_.toStdString(), &*m);
  QVERIFY2(f.ok(), f.ok() ? "" : f.error().message.c_str());
  QCOMPARE(f->run.settings.sequences, kSeqs);
  QCOMPARE(f->run.settings.seq_len, kLen);
  QCOMPARE(f->run.capture.tokens, static_cast<std::int64_t>(kSeqs * kLen));
  QCOMPARE(f->run.capture.inputs.size(), ref_.capture.inputs.size());
  // The document holds the run (and so do the views below).
  QVERIFY(w->document()->calibration());
  QCOMPARE(w->document()->calibration()->run.capture.tokens, ref_.capture.tokens);
  const QString runner = QString::fromStdString(w->document()->calibration()->run.forward_runner);
  QVERIFY2(runner.startsWith(QStringLiteral("CPU (")), qPrintable(runner));
  QVERIFY(w->document()->calibration()->run.runner_fallback.empty());
  QVERIFY(d->resultText().contains(runner));
  QVERIFY(w->activationsAction()->isEnabled());
}

void TstCalibration::activationViewsShowTheCoresNumbers() {
  if (!haveShared_) QSKIP("../shared/models/stories260K is absent");
  QVERIFY(QFile::exists(calibPath_));
  auto w = openWindow(model_);
  QVERIFY(w);
  QVERIFY(QTest::qWaitFor([&] { return w->document()->calibration() != nullptr; }, kWaitMs));
  const auto model = w->document()->model();
  for (const std::string layer : {"model.layers.1.self_attn.q_proj", "model.layers.3.mlp.down_proj"}) {
    const int row = rowOf(*model, layer);
    QVERIFY(row >= 0);
    const qs::Layer& l = model->layers[static_cast<std::size_t>(row)];
    const qs::InputStats* ref = ref_.capture.find_for(l.role, l.block);
    QVERIFY(ref);
    QSignalSpy shown(w.get(), &MainWindow::activationsShownFor);
    w->showTab(QStringLiteral("histogram"));
    w->layerTree()->selectTensor(static_cast<int>(l.weight));
    w->setActivationsShown(true);
    QVERIFY(w->activationsShown());
    QVERIFY(shown.count() > 0 || shown.wait(kWaitMs));
    QVERIFY(QTest::qWaitFor([&] { return w->histogramPlot()->hasPlot(); }, kWaitMs));
    // Histogram: the capture's quarter-octave counts, in order, none lost.
    QVector<double> counts = w->histogramPlot()->binCounts();
    std::vector<std::int64_t> nonzero;
    for (std::int64_t c : ref->histogram)
      if (c > 0) nonzero.push_back(c);
    std::vector<std::int64_t> plotted;
    for (double c : counts)
      if (c > 0) plotted.push_back(static_cast<std::int64_t>(c));
    QCOMPARE(plotted, nonzero);
    QVERIFY(w->histogramPlot()->title().contains(QString::fromStdString(layer)));
    double total = 0;
    for (double c : counts) total += c;
    QCOMPARE(static_cast<std::int64_t>(total) + ref->underflow + ref->overflow + ref->nonfinite, ref->tokens * ref->cols);
    QCOMPARE(w->histogramPlot()->binWidth(), 0.25);  // quarter octaves of log2|x|
    // Channels: per-input-channel abs-max, outliers by the weights' rule.
    qs::ui::ChannelPlot* ch = w->channelPlot();
    QVERIFY(ch->hasPlot());
    QCOMPARE(ch->axis(), qs::ui::ChannelPlot::Axis::Input);
    QVERIFY(ch->inputOnly());
    QCOMPARE(ch->pointCount(), static_cast<int>(ref->cols));
    const QVector<double> absMax = ch->plottedAbsMax();
    const QVector<double> rms = ch->plottedRms();
    for (int c = 0; c < ch->pointCount(); ++c) {
      QCOMPARE(static_cast<float>(absMax[c]), ref->abs_max[static_cast<std::size_t>(c)]);
      QVERIFY(std::fabs(rms[c] - std::sqrt(double(ref->mean_sq[static_cast<std::size_t>(c)]))) <=
              1e-5 * std::max(1.0, rms[c]));
    }
    QCOMPARE(ch->outlierChannels(), qs::outlier_channels(ref->abs_max, w->document()->outlierFactor()));
    // Each input channel's importance (its mean x², llama.cpp's imatrix value) in the hover read-out.
    QVERIFY(!ch->sortByRange());  // x = channel index
    {
      const QString readout = ch->readoutAt(3);
      const double importance = ref->mean_sq[3];
      QVERIFY2(readout.contains(QStringLiteral("importance (mean x²)")), qPrintable(readout));
      const QString value = readout.section(QStringLiteral("importance (mean x²) "), 1).section(QLatin1Char('\n'), 0, 0);
      QVERIFY2(std::fabs(value.toDouble() - importance) <= 1e-3 * importance, qPrintable(value));
    }
    // Heatmap: channel x token |x| (64 tokens x the input's channels: full resolution here).
    QSignalSpy heat(w.get(), &MainWindow::heatmapShown);
    w->showTab(QStringLiteral("heatmap"));
    QVERIFY(QTest::qWaitFor([&] { return w->heatmapPlot()->hasPlot() && heat.count() > 0; }, kWaitMs));
    qs::ui::HeatmapPlot* hm = w->heatmapPlot();
    QCOMPARE(hm->tensorRows(), ref->heatmap_tokens);
    QCOMPARE(hm->tensorCols(), ref->cols);
    if (hm->fullResolution()) {
      for (int i : {0, 1, static_cast<int>(ref->heatmap_tokens) - 1})
        for (int j : {0, 5, static_cast<int>(ref->cols) - 1})
          QCOMPARE(hm->cell(i, j), ref->heatmap[static_cast<std::size_t>(i * ref->cols + j)]);
    } else {  // pooled: each cell the max over the tokens and channels it covers
      const auto r = hm->cellRegion(0, 0);
      float m = 0;
      for (auto i = r.row0; i < r.row1; ++i)
        for (auto j = r.col0; j < r.col1; ++j) m = std::max(m, ref->heatmap[static_cast<std::size_t>(i * ref->cols + j)]);
      QCOMPARE(hm->cell(0, 0), m);
    }
    if (layer.find("down") != std::string::npos) {
      snapshot(w.get(), QStringLiteral("activations-heatmap"));
      w->showTab(QStringLiteral("channels"));
      snapshot(w.get(), QStringLiteral("activations-channels"));
      w->showTab(QStringLiteral("histogram"));
      snapshot(w.get(), QStringLiteral("activations-histogram"));
    }
  }
  // Back to weights: the weight's histogram again.
  w->setActivationsShown(false);
  QVERIFY(QTest::qWaitFor([&] { return w->histogramPlot()->hasPlot(); }, kWaitMs));
  QVERIFY(!w->histogramPlot()->title().startsWith(QStringLiteral("input of")));
  QVERIFY(!w->channelPlot()->inputOnly());
  // A tensor that is no linear layer's weight: the views say so.
  const auto norm = model->find_tensor("model.norm.weight");
  QVERIFY(norm);
  w->setActivationsShown(true);
  w->layerTree()->selectTensor(static_cast<int>(*norm));
  QVERIFY(QTest::qWaitFor([&] { return !w->histogramPlot()->message().isEmpty(); }, kWaitMs));
  QVERIFY2(w->histogramPlot()->message().contains(QStringLiteral("no input activations")),
           qPrintable(w->histogramPlot()->message()));
}

void TstCalibration::outputErrorColumnIsTheHessianError() {
  if (!haveShared_) QSKIP("../shared/models/stories260K is absent");
  QVERIFY(QFile::exists(calibPath_));
  auto w = openWindow(model_);
  QVERIFY(w);
  QVERIFY(QTest::qWaitFor([&] { return w->document()->calibration() != nullptr; }, kWaitMs));
  QVERIFY(settle(*w));
  const auto model = w->document()->model();
  const auto calib = w->document()->calibration();
  PlanTableModel* t = w->planEditor()->tableModel();
  QVERIFY(!w->planEditor()->tableView()->isColumnHidden(PlanTableModel::OutputError));
  w->showTab(QStringLiteral("plan"));

  // Independently: the layer quantize-dequantized by core and the relative error on the file's H.
  auto expected = [&](int row, const std::string& format) {
    const qs::Layer& l = model->layers[static_cast<std::size_t>(row)];
    const qs::TensorInfo& ti = model->tensors[l.weight];
    auto choice = qs::parse_quant_choice(format);
    std::vector<float> wf, deq;
    if (!choice || !qs::quantize_dequantize(ti, *choice, wf, deq, qs::OpContext::none())) return -1.0;
    const qs::InputStats* s = calib->run.capture.find_for(l.role, l.block);
    if (!s || s->hessian.empty()) return -1.0;
    return qs::relative_output_error_h(wf.data(), deq.data(), ti.rows(), ti.cols(), s->hessian.data());
  };
  const int q = rowOf(*model, "model.layers.0.self_attn.q_proj");
  const int gate = rowOf(*model, "model.layers.2.mlp.gate_proj");
  QVERIFY(q >= 0 && gate >= 0);
  for (int row : {q, gate}) {
    QCOMPARE(t->state(row), PlanTableModel::State::Ready);
    const double e = expected(row, t->configs()[static_cast<std::size_t>(row)].format);
    QVERIFY(e > 0);
    QVERIFY2(std::fabs(t->measurement(row).rel_output_error - e) <= 1e-9 * e,
             qPrintable(QStringLiteral("%1 vs %2").arg(t->measurement(row).rel_output_error).arg(e)));
    QCOMPARE(t->index(row, PlanTableModel::OutputError).data().toString(), QString::number(e, 'e', 2));
  }
  // Coarser grid, larger output error; the int grid path (fused without calibration) too.
  const double q8 = t->measurement(q).rel_output_error;
  for (const QString& f : {QStringLiteral("q4_0"), QStringLiteral("int4-g32")}) {
    QVERIFY(t->setData(t->index(q, PlanTableModel::Format), f, Qt::EditRole));
    QVERIFY(settle(*w));
    const double e = expected(q, f.toStdString());
    QVERIFY2(std::fabs(t->measurement(q).rel_output_error - e) <= 1e-9 * e, qPrintable(f));
    QVERIFY2(t->measurement(q).rel_output_error > q8,
             qPrintable(QStringLiteral("%1: %2 vs q8_0 %3").arg(f).arg(t->measurement(q).rel_output_error).arg(q8)));
  }
  // Totals: sum and worst of the rows' output errors.
  const qs::ui::PlanTotals totals = t->totals();
  double sum = 0, worst = 0;
  for (int r = 0; r < t->rowCount(); ++r)
    if (t->measurement(r).rel_output_error >= 0) {
      sum += t->measurement(r).rel_output_error;
      worst = std::max(worst, t->measurement(r).rel_output_error);
    }
  QVERIFY(totals.outputErrorRows > 0);
  QCOMPARE(totals.outputErrorSum, sum);
  QCOMPARE(totals.worstOutputError, worst);
  QVERIFY2(w->planEditor()->totalsText().contains(QStringLiteral("output error: sum")),
           qPrintable(w->planEditor()->totalsText()));
  // The head has no calibrated input: a dash, not a number.
  const int head = rowOf(*model, "lm_head");
  if (head >= 0) {
    QCOMPARE(t->measurement(head).rel_output_error, -1.0);
    QCOMPARE(t->index(head, PlanTableModel::OutputError).data().toString(), QStringLiteral("—"));
  }
  w->planEditor()->tableView()->selectRow(q);
  snapshot(w.get(), QStringLiteral("plan-output-error"));
}

// With calibration loaded the Method column's GPTQ and AWQ are offered and the
// row is measured by the method itself: its figures equal core's
// quantize_with_method on the file's statistics, GPTQ's output error is below
// RTN's, and the before/after view shows the method's result.
void TstCalibration::calibratedMethodsAreMeasuredInTheTable() {
  if (!haveShared_) QSKIP("../shared/models/stories260K is absent");
  auto w = openWindow(model_);
  QVERIFY(w);
  QVERIFY(QTest::qWaitFor([&] { return w->document()->calibration() != nullptr; }, kWaitMs));
  QVERIFY(settle(*w));
  w->showTab(QStringLiteral("plan"));
  const auto model = w->document()->model();
  const auto calib = w->document()->calibration();
  PlanTableModel* t = w->planEditor()->tableModel();
  QVERIFY(t->calibrated());
  const int row = rowOf(*model, "model.layers.1.mlp.up_proj");
  QVERIFY(row >= 0);
  const qs::Layer& l = model->layers[static_cast<std::size_t>(row)];
  const qs::TensorInfo& ti = model->tensors[l.weight];
  const qs::InputStats* st = calib->run.capture.find_for(l.role, l.block);
  QVERIFY(st && !st->hessian.empty());
  std::vector<float> wf(static_cast<std::size_t>(ti.numel()));
  QVERIFY(qs::tensor_to_f32(ti, wf.data()).ok());

  QVERIFY(t->setData(t->index(row, PlanTableModel::Format), QStringLiteral("q4_0"), Qt::EditRole));
  QVERIFY(settle(*w));
  const double rtn = t->measurement(row).rel_output_error;
  QVERIFY(rtn > 0);
  for (const QString& method : {QStringLiteral("gptq"), QStringLiteral("awq"), QStringLiteral("clip")}) {
    QVERIFY(t->setData(t->index(row, PlanTableModel::Method), method, Qt::EditRole));
    QVERIFY(settle(*w));
    QCOMPARE(t->state(row), PlanTableModel::State::Ready);
    const qs::LayerConfig cfg{"q4_0", method.toStdString(), {}};
    auto ref = qs::quantize_with_method(wf.data(), ti.rows(), ti.cols(), *qs::parse_quant_choice("q4_0"), cfg,
                                        {st->hessian.data(), st->mean_abs.data()}, qs::OpContext::none());
    QVERIFY2(ref.ok(), ref.ok() ? "" : ref.error().message.c_str());
    QCOMPARE(t->measurement(row).error.sqnr_db, ref->figures.error.sqnr_db);
    QCOMPARE(t->measurement(row).rel_output_error, ref->rel_output_error);
    qInfo("stories260K %s q4_0 %s: output error %.3e (rtn %.3e)", qPrintable(t->layerName(row)), qPrintable(method),
          ref->rel_output_error, rtn);
    if (method != QLatin1String("clip")) {
      QVERIFY2(ref->rel_output_error < rtn, qPrintable(method));
    }
  }
  // The before/after view of the selected row shows the method's result.
  QVERIFY(t->setData(t->index(row, PlanTableModel::Method), QStringLiteral("gptq"), Qt::EditRole));
  w->planEditor()->selectRows({row});
  qs::ui::QuantErrorView* view = w->planEditor()->errorView();
  QVERIFY2(QTest::qWaitFor([&] { return view->format() == QStringLiteral("q4_0+gptq"); }, kWaitMs), qPrintable(view->caption()));
  QVERIFY2(view->caption().contains(QStringLiteral("%1 dB").arg(t->measurement(row).error.sqnr_db, 0, 'f', 2)),
           qPrintable(view->caption()));
  QVERIFY(settle(*w));
}

// With calibration the allocation's costs are relative output errors: the plan
// it applies is core's allocate_to_budget on measure_candidates with the file's
// Hessians, and the dialog names that error.
void TstCalibration::allocationMinimisesTheOutputError() {
  if (!haveShared_) QSKIP("../shared/models/stories260K is absent");
  auto w = openWindow(model_);
  QVERIFY(w);
  QVERIFY(QTest::qWaitFor([&] { return w->document()->calibration() != nullptr; }, kWaitMs));
  QVERIFY(settle(*w));
  const auto model = w->document()->model();
  const auto calib = w->document()->calibration();
  const QStringList formats = {QStringLiteral("q8_0"), QStringLiteral("q4_0"), QStringLiteral("q5_1")};
  QSignalSpy allocated(w.get(), &MainWindow::planAllocated);
  w->allocateDialog()->show();
  w->allocate(7.0, formats, true);  // over every weight of the GGUF file (at least 6.73 with these candidates)
  QVERIFY(allocated.wait(kWaitMs));
  QCOMPARE(w->allocateDialog()->errorLabel(), QStringLiteral("summed relative output error"));

  std::vector<const float*> hessians;
  for (const qs::Layer& l : model->layers) {
    const qs::InputStats* st = calib->run.capture.find_for(l.role, l.block);
    const std::int64_t cols = model->tensors[l.weight].cols();
    hessians.push_back(st && st->cols == cols && st->hessian.size() == static_cast<std::size_t>(cols * cols) ? st->hessian.data()
                                                                                                              : nullptr);
  }
  auto costs = qs::measure_candidates(*model, {"q8_0", "q4_0", "q5_1"}, qs::OpContext::none(), &hessians);
  QVERIFY(costs.ok());
  const qs::AccountedFixedPart fixed = qs::allocation_fixed_part(*model, *costs);
  QVERIFY(fixed.gguf);
  auto a = qs::allocate_to_budget(*model, *costs, 7.0, fixed.fixed);
  QVERIFY(a.ok());
  auto configs = qs::resolve_plan(a->plan, *model);
  QVERIFY(configs.ok());
  QVERIFY(w->planEditor()->tableModel()->configs() == *configs);
  QVERIFY(settle(*w));
}

void TstCalibration::reopeningLoadsTheDefaultFile() {
  if (!haveShared_) QSKIP("../shared/models/stories260K is absent");
  QVERIFY(QFile::exists(calibPath_));
  auto w = std::make_unique<MainWindow>(qs::cpu_backend());
  w->setInteractiveErrors(false);
  QSignalSpy loaded(w.get(), &MainWindow::calibrationLoaded);
  w->openPath(model_);
  QVERIFY(loaded.wait(kWaitMs));
  QCOMPARE(loaded.front().front().toString(), calibPath_);
  QCOMPARE(w->document()->calibration()->run.capture.tokens, ref_.capture.tokens);
  // Without calibration (another model), the column is hidden again.
  QSignalSpy opened(w->document(), &qs::app::Document::modelOpened);
  w->openDemo();
  QVERIFY(opened.wait(kWaitMs));
  QVERIFY(!w->document()->calibration());
  QVERIFY(w->planEditor()->tableView()->isColumnHidden(PlanTableModel::OutputError));
  QVERIFY(!w->activationsAction()->isEnabled());
}

void TstCalibration::badFilesAreRefused() {
  if (!haveShared_) QSKIP("../shared/models/stories260K is absent");
  QVERIFY(QFile::exists(calibPath_));
  // Another model's file: the demo model refuses stories260K's calibration.
  const QString demo = dir_.filePath(QStringLiteral("demo"));
  QVERIFY(qs::write_demo_model(demo.toStdString()).ok());
  auto w = openWindow(demo);
  QVERIFY(w);
  QSignalSpy errors(w.get(), &MainWindow::errorReported);
  w->loadCalibration(calibPath_);
  QVERIFY(errors.wait(kWaitMs));
  auto demoModel = qs::open_model(demo.toStdString());
  QVERIFY(demoModel.ok());
  auto core = qs::read_calibration_file(calibPath_.toStdString(), &*demoModel);
  QVERIFY(!core.ok());
  QVERIFY2(w->lastError().contains(QString::fromStdString(core.error().message)), qPrintable(w->lastError()));
  QVERIFY(!w->document()->calibration());
  // A corrupt file: the reader's error, nothing loaded, nothing crashes.
  const QString junk = dir_.filePath(QStringLiteral("junk.qscalib.h5"));
  QFile f(junk);
  QVERIFY(f.open(QIODevice::WriteOnly));
  f.write(QByteArray(4096, '\x5a'));
  f.close();
  errors.clear();
  w->loadCalibration(junk);
  QVERIFY(errors.wait(kWaitMs));
  QVERIFY2(w->lastError().contains(junk), qPrintable(w->lastError()));
  QVERIFY(!w->document()->calibration());
}

void TstCalibration::readOnlyFolderIsNotWritten() {
  if (!haveShared_) QSKIP("../shared/models/stories260K is absent");
  auto w = openWindow(model_);
  QVERIFY(w);
  const QString ro = dir_.filePath(QStringLiteral("readonly"));
  QVERIFY(QDir().mkpath(ro));
  QVERIFY(QFile::setPermissions(ro, QFileDevice::ReadOwner | QFileDevice::ExeOwner));
  w->calibrateAction()->trigger();
  qs::ui::CalibrateDialog* d = w->calibrateDialog();
  d->setTextFiles({text_});
  d->sequencesBox()->setValue(2);
  d->seqLenBox()->setValue(16);
  d->setOutputPath(ro + QStringLiteral("/x.qscalib.h5"));
  QSignalSpy ended(w.get(), &MainWindow::calibrationRunEnded);
  QTest::mouseClick(d->startButton(), Qt::LeftButton);
  QVERIFY(ended.count() > 0 || ended.wait(kWaitMs));
  QVERIFY(d->resultIsError());
  QVERIFY2(d->resultText().contains(QStringLiteral("read-only")), qPrintable(d->resultText()));
  QVERIFY(!w->document()->isCalibrating());
  QVERIFY(QDir(ro).entryList(QDir::AllEntries | QDir::NoDotAndDotDot | QDir::Hidden).isEmpty());
  QFile::setPermissions(ro, QFileDevice::ReadOwner | QFileDevice::WriteOwner | QFileDevice::ExeOwner);
}

void TstCalibration::cancelLeavesNoFile() {
  if (!haveShared_) QSKIP("../shared/models/stories260K is absent");
  auto w = openWindow(model_);
  QVERIFY(w);
  const QString out = dir_.filePath(QStringLiteral("cancelled/run.qscalib.h5"));
  QVERIFY(QDir().mkpath(QFileInfo(out).absolutePath()));
  w->calibrateAction()->trigger();
  qs::ui::CalibrateDialog* d = w->calibrateDialog();
  d->setTextFiles({text_});
  d->sequencesBox()->setValue(qs::ui::CalibrateDialog::kMaxSequences);  // long enough to cancel mid-way
  d->seqLenBox()->setValue(256);
  d->setOutputPath(out);
  QSignalSpy ended(w.get(), &MainWindow::calibrationRunEnded);
  QTest::mouseClick(d->startButton(), Qt::LeftButton);
  QVERIFY(d->isRunning());
  QVERIFY(d->cancelButton()->isVisible());
  QTest::qWait(300);
  QVERIFY(ended.isEmpty());
  QTest::mouseClick(d->cancelButton(), Qt::LeftButton);
  QVERIFY(ended.count() > 0 || ended.wait(kWaitMs));
  QVERIFY(!d->isRunning());
  QVERIFY2(d->resultText().contains(QStringLiteral("Cancelled")), qPrintable(d->resultText()));
  QVERIFY(!QFile::exists(out));
  QVERIFY(QDir(QFileInfo(out).absolutePath()).entryList(QDir::AllEntries | QDir::NoDotAndDotDot | QDir::Hidden).isEmpty());
}

QTEST_MAIN(TstCalibration)
#include "tst_calibration.moc"
