// The plan editor, offscreen, on the demo model (6 blocks, 44 linear layers;
// down_proj rows are 688 long, so the 32/256-blocked ggml formats do not fit
// them): the figures in the table are checked against independent
// measure_quantization calls, the plans against core's resolve_plan /
// plan_preset / allocate_to_budget, and the totals against the rows.
#include <QDoubleSpinBox>
#include <QElapsedTimer>
#include <QListWidget>
#include <QPushButton>
#include <QSignalSpy>
#include <QStandardPaths>
#include <QTableView>
#include <QTemporaryDir>
#include <QUndoStack>
#include <QtTest>
#include <algorithm>
#include <cmath>
#include <memory>
#include <numeric>
#include <qcustomplot.h>
#include <random>

#include "app/document.h"
#include "app/main_window.h"
#include "app/plan_document.h"
#include "demo_window.h"
#include "backend/cpu_backend.h"
#include "demo/demo_model.h"
#include "io/safetensors.h"
#include "export/size_account.h"
#include "quant/allocate.h"
#include "quant/layer_method.h"
#include "quant/measure.h"
#include "quant/plan.h"
#include "util/half.h"
#include "widgets/allocate_dialog.h"
#include "widgets/histogram_plot.h"
#include "widgets/plan_table.h"
#include "widgets/quant_error_view.h"
#include "quant/quant_error_histogram.h"

using qs::app::MainWindow;
using qs::ui::PlanTableModel;

namespace {

constexpr int kWaitMs = 60000;

qs::LayerQuantError reference(const qs::Model& m, int row, const std::string& format) {
  const qs::TensorInfo& t = m.tensors[m.layers[static_cast<std::size_t>(row)].weight];
  auto choice = qs::parse_quant_choice(format);
  if (!choice) qFatal("bad format %s", format.c_str());
  auto r = qs::measure_quantization(t, *choice, qs::OpContext::none());
  if (!r) qFatal("%s", r.error().message.c_str());
  return *r;
}

// Integer grids are measured live by the fused rtn_int_measure_into (the same
// codes; its error sums run in another order: SQNR agrees to ~1e-8 relative).
bool near(double a, double b, double rel = 1e-6) {
  if (std::isinf(a) || std::isinf(b)) return a == b;  // exact (f16 of an F16 weight)
  return std::fabs(a - b) <= rel * std::max(1.0, std::fabs(b));
}

int rowOf(const qs::Model& m, const std::string& name) {
  for (std::size_t i = 0; i < m.layers.size(); ++i)
    if (m.layers[i].name == name) return static_cast<int>(i);
  return -1;
}

}  // namespace

class TstPlanEditor : public QObject {
  Q_OBJECT

 private slots:
  void initTestCase();
  void listsEveryLinearLayerMeasured();
  void editingAFormatMeasuresThatRow();
  void undoRestoresRedoReapplies();
  void editsOfOneCellMerge();
  void thePlanLivesInTheDocument();
  void rapidEditsEndWithTheLast();
  void applyToSelectionIsOneStep();
  void saveLoadRoundTrips();
  void presetGivesResolvedTypes();
  void allocationMeetsTheBudget();
  void allocateDialogByItsControls();
  void totalsAreTheSumOverRows();
  void shapeThatDoesNotFitIsMarked();
  void selectionOverlaysTheGridOnTheHistogram();
  void selectedRowShowsBeforeAfterAndError();
  void autosaveRecovers();
  void liveFeedbackLatencyOn4096x11008();

 private:
  std::unique_ptr<MainWindow> openWindow(const QString& path);
  bool settle(MainWindow& w);
  bool setFormat(MainWindow& w, int row, const QString& format);

  qs::test::DemoModelDir demo_;
};

void TstPlanEditor::initTestCase() {
  qs::test::use_test_settings("tst_plan_editor");
  std::string error;
  QVERIFY2(demo_.write(error), error.c_str());
}

std::unique_ptr<MainWindow> TstPlanEditor::openWindow(const QString& path) {
  auto w = qs::test::open_window(path, kWaitMs, {}, QStringLiteral("plan"));
  if (!w || !settle(*w)) return nullptr;
  return w;
}

bool TstPlanEditor::settle(MainWindow& w) {
  return QTest::qWaitFor([&] { return w.planEditor()->tableModel()->allSettled() && !w.document()->isMeasuring(); },
                         kWaitMs);
}

bool TstPlanEditor::setFormat(MainWindow& w, int row, const QString& format) {
  PlanTableModel* t = w.planEditor()->tableModel();
  return t->setData(t->index(row, PlanTableModel::Format), format, Qt::EditRole);
}

void TstPlanEditor::listsEveryLinearLayerMeasured() {
  auto w = openWindow(demo_.path());
  QVERIFY(w);
  const auto model = w->document()->model();
  PlanTableModel* t = w->planEditor()->tableModel();
  QCOMPARE(t->rowCount(), 44);
  QCOMPARE(static_cast<std::size_t>(t->rowCount()), model->layers.size());
  QCOMPARE(w->planEditor()->tableView()->model()->rowCount(), 44);  // through the filter
  // The default plan (q8_0) measured in the background: q_proj of block 0 as measure_quantization says.
  const int q0 = rowOf(*model, "model.layers.0.self_attn.q_proj");
  QVERIFY(q0 >= 0);
  QCOMPARE(t->state(q0), PlanTableModel::State::Ready);
  const auto ref = reference(*model, q0, "q8_0");
  QCOMPARE(t->measurement(q0).bits_per_weight, ref.bits_per_weight);
  QVERIFY(near(t->measurement(q0).error.sqnr_db, ref.error.sqnr_db));
  // Filters: by role and by name.
  w->planEditor()->setRoleFilter(QStringLiteral("down"));
  QCOMPARE(w->planEditor()->tableView()->model()->rowCount(), 6);
  w->planEditor()->setRoleFilter(QString());
  w->planEditor()->setNameFilter(QStringLiteral("layers.3."));
  QCOMPARE(w->planEditor()->tableView()->model()->rowCount(), 7);
  w->planEditor()->setNameFilter(QString());
}

void TstPlanEditor::editingAFormatMeasuresThatRow() {
  auto w = openWindow(demo_.path());
  QVERIFY(w);
  const auto model = w->document()->model();
  PlanTableModel* t = w->planEditor()->tableModel();
  for (const auto& [name, format] : std::vector<std::pair<std::string, std::string>>{
           {"model.layers.2.mlp.up_proj", "int4-g128"}, {"model.layers.1.self_attn.v_proj", "q4_k"},
           {"model.layers.4.mlp.down_proj", "int3-ch-sym"}, {"model.layers.0.mlp.gate_proj", "nf4"},
           {"model.layers.5.self_attn.q_proj", "f16"}}) {
    const int row = rowOf(*model, name);
    QVERIFY(row >= 0);
    QVERIFY(setFormat(*w, row, QString::fromStdString(format)));
    QCOMPARE(t->configs()[static_cast<std::size_t>(row)].format, format);
    QVERIFY(settle(*w));
    QCOMPARE(t->state(row), PlanTableModel::State::Ready);
    const auto ref = reference(*model, row, format);
    QCOMPARE(t->measurement(row).bits_per_weight, ref.bits_per_weight);
    QVERIFY2(near(t->measurement(row).error.sqnr_db, ref.error.sqnr_db),
             qPrintable(QStringLiteral("%1 vs %2").arg(t->measurement(row).error.sqnr_db, 0, 'g', 15).arg(ref.error.sqnr_db, 0, 'g', 15)));
    QVERIFY(near(t->measurement(row).error.max_abs, ref.error.max_abs));
    // The cells show the same numbers.
    QCOMPARE(t->index(row, PlanTableModel::Bits).data().toString(), QString::number(ref.bits_per_weight, 'f', 3));
    QCOMPARE(t->index(row, PlanTableModel::Sqnr).data().toString(),
             std::isinf(ref.error.sqnr_db) ? QStringLiteral("exact") : QString::number(ref.error.sqnr_db, 'f', 2));
  }
}

void TstPlanEditor::undoRestoresRedoReapplies() {
  auto w = openWindow(demo_.path());
  QVERIFY(w);
  const auto model = w->document()->model();
  PlanTableModel* t = w->planEditor()->tableModel();
  QUndoStack* undo = t->undoStack();
  const int row = rowOf(*model, "model.layers.3.self_attn.o_proj");
  QVERIFY(row >= 0);
  const auto before = reference(*model, row, "q8_0");
  const auto after = reference(*model, row, "int4-g32");
  QVERIFY(setFormat(*w, row, QStringLiteral("int4-g32")));
  QVERIFY(settle(*w));
  QVERIFY(near(t->measurement(row).error.sqnr_db, after.error.sqnr_db));
  QVERIFY(!undo->isClean());

  undo->undo();
  QCOMPARE(t->configs()[static_cast<std::size_t>(row)].format, std::string("q8_0"));
  QVERIFY(settle(*w));
  QCOMPARE(t->state(row), PlanTableModel::State::Ready);
  QCOMPARE(t->measurement(row).bits_per_weight, before.bits_per_weight);
  QVERIFY(near(t->measurement(row).error.sqnr_db, before.error.sqnr_db));
  QVERIFY(undo->isClean());

  undo->redo();
  QCOMPARE(t->configs()[static_cast<std::size_t>(row)].format, std::string("int4-g32"));
  QVERIFY(settle(*w));
  QCOMPARE(t->measurement(row).bits_per_weight, after.bits_per_weight);
  QVERIFY(near(t->measurement(row).error.sqnr_db, after.error.sqnr_db));

  // The Edit menu's actions drive the same stack.
  QAction* undoAction = w->findChild<QAction*>(QStringLiteral("planUndo"));
  QVERIFY(undoAction && undoAction->isEnabled());
  undoAction->trigger();
  QCOMPARE(t->configs()[static_cast<std::size_t>(row)].format, std::string("q8_0"));
}

void TstPlanEditor::editsOfOneCellMerge() {
  auto w = openWindow(demo_.path());
  QVERIFY(w);
  PlanTableModel* t = w->planEditor()->tableModel();
  QUndoStack* undo = t->undoStack();
  QCOMPARE(undo->count(), 0);
  QVERIFY(setFormat(*w, 5, QStringLiteral("int8-ch")));
  QVERIFY(setFormat(*w, 5, QStringLiteral("int4-g64")));
  QVERIFY(setFormat(*w, 5, QStringLiteral("q4_0")));
  QCOMPARE(undo->count(), 1);
  QVERIFY(setFormat(*w, 6, QStringLiteral("q4_0")));  // another cell: a step of its own
  QCOMPARE(undo->count(), 2);
  undo->undo();
  undo->undo();
  QCOMPARE(t->configs()[5].format, std::string("q8_0"));
  QCOMPARE(t->configs()[6].format, std::string("q8_0"));
  QVERIFY(settle(*w));
}

// The plan is the Document's: the table has no copy of its own. An edit made
// on the document (a field mask: the method only) shows in the table, each
// layer keeping its own format; the figures of the changed layers come from
// the document's measurement straight into the plan (nothing routes them);
// a repeat of the same edit on the same layers merges into one undo step.
void TstPlanEditor::thePlanLivesInTheDocument() {
  auto w = openWindow(demo_.path());
  QVERIFY(w);
  const auto model = w->document()->model();
  qs::app::PlanDocument* plan = w->document()->plan();
  PlanTableModel* t = w->planEditor()->tableModel();
  QCOMPARE(t->undoStack(), plan->undoStack());
  QVERIFY(&t->configs() == &plan->configs());
  QVERIFY(setFormat(*w, 3, QStringLiteral("q4_0")));  // layer 3 now differs in format
  const int v0 = rowOf(*model, "model.layers.1.self_attn.v_proj");
  QVERIFY(v0 >= 0 && v0 != 3);
  QSignalSpy figures(plan, &qs::ui::PlanSource::figuresChanged);
  const int steps = plan->undoStack()->count();
  qs::LayerConfig value;
  value.method = "clip";
  value.format = "int2-ch";  // not in the mask: ignored
  plan->setLayerConfig({3, v0}, qs::ui::kMethodField, value, QStringLiteral("clip"));
  QCOMPARE(plan->undoStack()->count(), steps + 1);
  QCOMPARE(plan->configs()[3].format, std::string("q4_0"));
  QCOMPARE(plan->configs()[static_cast<std::size_t>(v0)].format, std::string("q8_0"));
  QCOMPARE(plan->configs()[3].method, std::string("clip"));
  QCOMPARE(t->index(3, PlanTableModel::Method).data().toString(), QStringLiteral("clip"));
  QVERIFY(plan->figures(3).state == PlanTableModel::State::Pending);
  QVERIFY(settle(*w));
  QVERIFY(plan->allSettled());
  QVERIFY(figures.count() >= 2);
  QCOMPARE(t->measurement(3).bits_per_weight, plan->figures(3).m.bits_per_weight);
  QVERIFY(plan->figures(3).state == PlanTableModel::State::Ready);
  // The same fields of the same layers again: merged; undo goes back past both.
  plan->setLayerConfig({3}, qs::ui::kMethodField, {"", "outliers", {}}, QStringLiteral("outliers"), true);
  plan->setLayerConfig({3}, qs::ui::kMethodField, {"", "rtn", {}}, QStringLiteral("rtn"), true);
  const int after = plan->undoStack()->count();
  plan->undoStack()->undo();
  QCOMPARE(plan->configs()[3].method, std::string("clip"));
  QCOMPARE(plan->undoStack()->count(), after);
  QVERIFY(settle(*w));
}

void TstPlanEditor::rapidEditsEndWithTheLast() {
  auto w = openWindow(demo_.path());
  QVERIFY(w);
  const auto model = w->document()->model();
  PlanTableModel* t = w->planEditor()->tableModel();
  const int row = rowOf(*model, "model.layers.5.mlp.gate_proj");
  const QStringList formats = {QStringLiteral("int8-g128"), QStringLiteral("int4-g128"), QStringLiteral("q5_1"),
                               QStringLiteral("int3-ch"), QStringLiteral("int4-g64-sym")};
  for (const QString& f : formats) QVERIFY(setFormat(*w, row, f));  // faster than the debounce
  QVERIFY(settle(*w));
  const auto ref = reference(*model, row, "int4-g64-sym");
  QCOMPARE(t->measurement(row).bits_per_weight, ref.bits_per_weight);
  QVERIFY(near(t->measurement(row).error.sqnr_db, ref.error.sqnr_db));
  // Superseded requests inside the debounce were never measured. (The first
  // edit, int8-g128, starts at once by design — a lone edit does not wait — so
  // whether it finished before the second cancelled it is a race: not checked.)
  QVERIFY(!w->document()->cachedMeasurement(row, QStringLiteral("q5_1")));
  QVERIFY(!w->document()->cachedMeasurement(row, QStringLiteral("int3-ch")));
}

void TstPlanEditor::applyToSelectionIsOneStep() {
  auto w = openWindow(demo_.path());
  QVERIFY(w);
  const auto model = w->document()->model();
  PlanTableModel* t = w->planEditor()->tableModel();
  QVector<int> rows;
  for (std::size_t i = 0; i < model->layers.size(); ++i)
    if (model->layers[i].role == qs::LayerRole::Q || model->layers[i].role == qs::LayerRole::K) rows << static_cast<int>(i);
  QCOMPARE(rows.size(), 12);
  w->planEditor()->selectRows(rows);
  QCOMPARE(w->planEditor()->selectedRows(), rows);
  const int steps = t->undoStack()->count();
  w->planEditor()->applyToSelection(QStringLiteral("q4_1"), QStringLiteral("clip"));
  QCOMPARE(t->undoStack()->count(), steps + 1);
  for (std::size_t i = 0; i < model->layers.size(); ++i) {
    const bool chosen = rows.contains(static_cast<int>(i));
    QCOMPARE(t->configs()[i].format, std::string(chosen ? "q4_1" : "q8_0"));
    QCOMPARE(t->configs()[i].method, std::string(chosen ? "clip" : "rtn"));
  }
  QVERIFY(settle(*w));
  // The rows are measured with the clip search (core's, called here), never worse than plain q4_1.
  {
    const qs::TensorInfo& wt = model->tensors[model->layers[static_cast<std::size_t>(rows.front())].weight];
    std::vector<float> x(static_cast<std::size_t>(wt.numel()));
    QVERIFY(qs::tensor_to_f32(wt, x.data()).ok());
    auto clip = qs::quantize_with_method(x.data(), wt.rows(), wt.cols(), *qs::parse_quant_choice("q4_1"),
                                         {"q4_1", "clip", {}}, {}, qs::OpContext::none());
    QVERIFY(clip.ok());
    QCOMPARE(t->measurement(rows.front()).error.sqnr_db, clip->figures.error.sqnr_db);
    QVERIFY(t->measurement(rows.front()).error.sqnr_db >= reference(*model, rows.front(), "q4_1").error.sqnr_db);
  }
  t->undoStack()->undo();
  for (std::size_t i = 0; i < model->layers.size(); ++i) QCOMPARE(t->configs()[i].format, std::string("q8_0"));
  QVERIFY(settle(*w));
  // Outlier keeping needs no calibration: offered, and measured with its side table counted.
  w->planEditor()->applyToSelection(QStringLiteral("int4-g128"), QStringLiteral("outliers"));
  QVERIFY(settle(*w));
  {
    const qs::TensorInfo& wt = model->tensors[model->layers[static_cast<std::size_t>(rows.front())].weight];
    std::vector<float> x(static_cast<std::size_t>(wt.numel()));
    QVERIFY(qs::tensor_to_f32(wt, x.data()).ok());
    auto kept = qs::quantize_with_method(x.data(), wt.rows(), wt.cols(), *qs::parse_quant_choice("int4-g128"),
                                         {"int4-g128", "outliers", {}}, {}, qs::OpContext::none());
    QVERIFY(kept.ok());
    QCOMPARE(t->measurement(rows.front()).error.sqnr_db, kept->figures.error.sqnr_db);
    QCOMPARE(t->measurement(rows.front()).bits_per_weight, kept->figures.bits_per_weight);
    QVERIFY(t->measurement(rows.front()).bits_per_weight > reference(*model, rows.front(), "int4-g128").bits_per_weight);
    QVERIFY(t->measurement(rows.front()).error.sqnr_db > reference(*model, rows.front(), "int4-g128").error.sqnr_db);
  }
}

void TstPlanEditor::saveLoadRoundTrips() {
  auto w = openWindow(demo_.path());
  QVERIFY(w);
  PlanTableModel* t = w->planEditor()->tableModel();
  QVERIFY(setFormat(*w, 2, QStringLiteral("int4-g128")));
  QVERIFY(setFormat(*w, 9, QStringLiteral("q6_k")));
  QVERIFY(t->setData(t->index(9, PlanTableModel::Method), QStringLiteral("clip"), Qt::EditRole));
  const qs::Plan saved = t->plan();
  QCOMPARE(saved.overrides.size(), std::size_t(2));
  const QString path = demo_.filePath(QStringLiteral("plan.json"));
  QVERIFY(w->savePlan(path));
  QVERIFY(t->undoStack()->isClean());
  auto read = qs::read_plan(path.toStdString());
  QVERIFY(read.ok());
  QVERIFY(*read == saved);

  QVERIFY(w->applyPreset(QStringLiteral("q4_0")));
  QVERIFY(!(t->plan() == saved));
  QVERIFY(w->loadPlan(path));
  QVERIFY(t->plan() == saved);
  auto configs = qs::resolve_plan(saved, *w->document()->model());
  QVERIFY(configs.ok());
  QVERIFY(t->configs() == *configs);
  QVERIFY(settle(*w));

  // A bad file is an error that names it, and the plan stays.
  const QString bad = demo_.filePath(QStringLiteral("bad.json"));
  QFile f(bad);
  QVERIFY(f.open(QIODevice::WriteOnly));
  f.write(R"({"version": 1, "default": {"format": "q9_9"}})");
  f.close();
  QVERIFY(!w->loadPlan(bad));
  QVERIFY(w->lastError().contains(QStringLiteral("bad.json")));
  QVERIFY(t->plan() == saved);
}

void TstPlanEditor::presetGivesResolvedTypes() {
  auto w = openWindow(demo_.path());
  QVERIFY(w);
  const auto model = w->document()->model();
  PlanTableModel* t = w->planEditor()->tableModel();
  const int steps = t->undoStack()->count();
  QVERIFY(w->applyPreset(QStringLiteral("q4_k_m")));
  QCOMPARE(t->undoStack()->count(), steps + 1);
  auto plan = qs::plan_preset("q4_k_m", *model);
  QVERIFY(plan.ok());
  auto configs = qs::resolve_plan(*plan, *model);
  QVERIFY(configs.ok());
  QVERIFY(t->configs() == *configs);
  QCOMPARE(t->preset(), QStringLiteral("q4_k_m"));
  // Not one uniform type: the mix differs between layers.
  QVERIFY(std::any_of(configs->begin(), configs->end(), [&](const qs::LayerConfig& c) { return c.format != (*configs)[0].format; }));
  QVERIFY(settle(*w));
  t->undoStack()->undo();
  QCOMPARE(t->configs()[0].format, std::string("q8_0"));
}

void TstPlanEditor::allocationMeetsTheBudget() {
  auto w = openWindow(demo_.path());
  QVERIFY(w);
  const auto model = w->document()->model();
  PlanTableModel* t = w->planEditor()->tableModel();
  const QStringList formats = {QStringLiteral("q8_0"), QStringLiteral("q6_k"), QStringLiteral("q4_k"),
                               QStringLiteral("int4-g128"), QStringLiteral("int3-g128"), QStringLiteral("int8-ch")};
  const int steps = t->undoStack()->count();
  QSignalSpy allocated(w.get(), &MainWindow::planAllocated);
  qs::ui::AllocateDialog* dialog = w->allocateDialog();
  dialog->show();
  w->allocate(5.0, formats, true);
  QVERIFY(allocated.wait(kWaitMs));
  QCOMPARE(t->undoStack()->count(), steps + 1);

  // The same as the core's allocation, computed here.
  std::vector<std::string> names;
  for (const QString& f : formats) names.push_back(f.toStdString());
  auto costs = qs::measure_candidates(*model, names, qs::OpContext::none());
  QVERIFY(costs.ok());
  // The budget is over every weight of the model (its account: no GGUF conversion for the demo).
  const qs::AccountedFixedPart fixed = qs::allocation_fixed_part(*model, *costs);
  QVERIFY(!fixed.gguf);
  auto a = qs::allocate_to_budget(*model, *costs, 5.0, fixed.fixed);
  QVERIFY(a.ok());
  QVERIFY(a->bits_per_weight <= 5.0);
  auto configs = qs::resolve_plan(a->plan, *model);
  QVERIFY(configs.ok());
  QVERIFY(t->configs() == *configs);

  // The totals bar shows the figure the allocation chose (one account), within the budget.
  QVERIFY(settle(*w));
  for (int r = 0; r < t->rowCount(); ++r) QCOMPARE(t->state(r), PlanTableModel::State::Ready);
  QVERIFY(t->totals().averageBits <= 5.0 + 1e-9);
  QVERIFY(near(t->totals().averageBits, a->bits_per_weight, 1e-9));

  // The dialog shows the front and the chosen point.
  QVERIFY(dialog->hasResult());
  QCOMPARE(static_cast<std::size_t>(dialog->plot()->graph(0)->dataCount()), a->pareto.size());
  for (const qs::ParetoPoint& p : a->pareto) {  // the graph keeps its points sorted by bits
    bool found = false;
    for (int i = 0; i < dialog->plot()->graph(0)->dataCount() && !found; ++i)
      found = dialog->plot()->graph(0)->dataMainKey(i) == p.bits_per_weight &&
              dialog->plot()->graph(0)->dataMainValue(i) == p.squared_error;
    QVERIFY(found);
  }
  QCOMPARE(dialog->plot()->graph(1)->dataCount(), 1);
  QCOMPARE(dialog->plot()->graph(1)->dataMainKey(0), a->bits_per_weight);
  QCOMPARE(dialog->plot()->graph(1)->dataMainValue(0), a->squared_error);
  if (const QByteArray shots = qgetenv("QS_SHOT_DIR"); !shots.isEmpty()) {
    dialog->resize(820, 460);
    QTest::qWait(200);
    dialog->grab().save(QDir(QString::fromLocal8Bit(shots)).filePath(QStringLiteral("allocate-dialog.png")));
    w->resize(1280, 800);
    QTest::qWait(200);
    w->grab().save(QDir(QString::fromLocal8Bit(shots)).filePath(QStringLiteral("plan-allocated.png")));
  }
  t->undoStack()->undo();
  QCOMPARE(t->configs()[0].format, std::string("q8_0"));
  QVERIFY(settle(*w));
}

// The allocation dialog as a user drives it: the editor's button opens it, the
// target and candidates are set in its controls, Allocate runs, Apply turns the
// result into the plan (one undo step) and closes it; a changed target disables
// Apply until the next run; no candidate is refused with a message.
void TstPlanEditor::allocateDialogByItsControls() {
  auto w = openWindow(demo_.path());
  QVERIFY(w);
  const auto model = w->document()->model();
  PlanTableModel* t = w->planEditor()->tableModel();
  const auto before = t->configs();
  auto* open = w->planEditor()->findChild<QPushButton*>(QStringLiteral("allocateButton"));
  QVERIFY(open);
  QTest::mouseClick(open, Qt::LeftButton);
  qs::ui::AllocateDialog* dialog = w->allocateDialog();
  QVERIFY(QTest::qWaitForWindowExposed(dialog));
  auto* target = dialog->findChild<QDoubleSpinBox*>(QStringLiteral("allocateTarget"));
  auto* list = dialog->findChild<QListWidget*>(QStringLiteral("allocateCandidates"));
  auto* run = dialog->findChild<QPushButton*>(QStringLiteral("allocateRun"));
  auto* apply = dialog->findChild<QPushButton*>(QStringLiteral("allocateApply"));
  QVERIFY(target && list && run && apply);
  QVERIFY(!apply->isEnabled());

  // Nothing checked: refused, nothing runs.
  for (int i = 0; i < list->count(); ++i) list->item(i)->setCheckState(Qt::Unchecked);
  QTest::mouseClick(run, Qt::LeftButton);
  QVERIFY(!w->document()->isAllocating());
  QVERIFY(!dialog->hasResult());

  const QStringList chosen = {QStringLiteral("q8_0"), QStringLiteral("int4-g128"), QStringLiteral("int3-g128")};
  for (int i = 0; i < list->count(); ++i)
    if (chosen.contains(list->item(i)->text())) list->item(i)->setCheckState(Qt::Checked);
  QCOMPARE(dialog->candidates().size(), chosen.size());
  target->setValue(6.0);  // these candidates meet 5.7522 bits/weight at least over the whole demo model
  QTest::mouseClick(run, Qt::LeftButton);
  QVERIFY(QTest::qWaitFor([&] { return dialog->hasResult() && apply->isEnabled(); }, kWaitMs));
  QVERIFY(t->configs() == before);  // nothing applied yet

  // A new target invalidates the shown result until it is run again.
  target->setValue(6.5);
  QVERIFY(!apply->isEnabled());
  QTest::mouseClick(run, Qt::LeftButton);
  QVERIFY(QTest::qWaitFor([&] { return apply->isEnabled(); }, kWaitMs));
  const int steps = t->undoStack()->count();
  QTest::mouseClick(apply, Qt::LeftButton);
  QVERIFY(QTest::qWaitFor([&] { return !dialog->isVisible(); }, kWaitMs));
  QCOMPARE(t->undoStack()->count(), steps + 1);

  std::vector<std::string> names;
  for (const QString& f : chosen) names.push_back(f.toStdString());
  auto costs = qs::measure_candidates(*model, names, qs::OpContext::none());
  QVERIFY(costs.ok());
  auto a = qs::allocate_to_budget(*model, *costs, 6.5, qs::allocation_fixed_part(*model, *costs).fixed);
  QVERIFY(a.ok());
  auto configs = qs::resolve_plan(a->plan, *model);
  QVERIFY(configs.ok());
  QVERIFY(t->configs() == *configs);
  t->undoStack()->undo();
  QVERIFY(t->configs() == before);
  QVERIFY(settle(*w));
}

void TstPlanEditor::totalsAreTheSumOverRows() {
  auto w = openWindow(demo_.path());
  QVERIFY(w);
  const auto model = w->document()->model();
  PlanTableModel* t = w->planEditor()->tableModel();
  QVERIFY(w->applyPreset(QStringLiteral("q4_k_m")));
  QVERIFY(settle(*w));
  const qs::ui::PlanTotals totals = t->totals();
  double bytes = static_cast<double>(model->weight_bytes()), bits = 0, weights = 0, err = 0;
  double worst = INFINITY;
  int measured = 0;
  for (int r = 0; r < t->rowCount(); ++r) {
    if (t->state(r) != PlanTableModel::State::Ready) continue;
    ++measured;
    const auto& tensor = model->tensors[model->layers[static_cast<std::size_t>(r)].weight];
    const double n = static_cast<double>(tensor.numel());
    const auto& m = t->measurement(r);
    bytes += m.bits_per_weight * n / 8.0 - static_cast<double>(tensor.nbytes);
    bits += m.bits_per_weight * n;
    weights += n;
    err += m.error.mse * n;
    worst = std::min(worst, m.error.sqnr_db);
  }
  QCOMPARE(totals.measured, measured);
  QCOMPARE(totals.measured + totals.failed, t->rowCount());
  QVERIFY(near(totals.planModelBytes, bytes, 1e-12));
  QCOMPARE(totals.originalModelBytes, static_cast<double>(model->weight_bytes()));
  QVERIFY(totals.planModelBytes < totals.originalModelBytes);
  QVERIFY(near(totals.layerAverageBits, bits / weights, 1e-12));
  // Bits/weight over the whole model: every tensor, the layers as measured, the rest as stored.
  double all = 0;
  for (const auto& tensor : model->tensors) all += static_cast<double>(tensor.numel());
  QVERIFY(near(totals.averageBits, 8.0 * bytes / all, 1e-12));
  QVERIFY(near(totals.squaredError, err, 1e-12));
  QCOMPARE(totals.worstSqnrDb, worst);
  // The bar says it.
  QVERIFY(w->planEditor()->totalsText().contains(QString::number(8.0 * bytes / all, 'f', 3)));
}

void TstPlanEditor::shapeThatDoesNotFitIsMarked() {
  auto w = openWindow(demo_.path());
  QVERIFY(w);
  const auto model = w->document()->model();
  PlanTableModel* t = w->planEditor()->tableModel();
  const int down = rowOf(*model, "model.layers.1.mlp.down_proj");  // rows of 688: no 256 blocks
  QVERIFY(down >= 0);
  // A ggml type is measured as llama.cpp stores it: Q4_K on rows of 688 is llama-quantize's F16 fallback.
  QVERIFY(setFormat(*w, down, QStringLiteral("q4_k")));
  QVERIFY(settle(*w));
  QCOMPARE(t->state(down), PlanTableModel::State::Ready);
  QCOMPARE(t->index(down, PlanTableModel::Format).data().toString(), QStringLiteral("q4_k → f16"));
  QVERIFY(t->index(down, PlanTableModel::Format).data(Qt::ToolTipRole).toString().contains(QStringLiteral("688")));
  QCOMPARE(t->measurement(down).bits_per_weight, 16.0);
  // Other formats that do not fit are marked, with the reason.
  QVERIFY(setFormat(*w, down, QStringLiteral("int4-g128")));
  QVERIFY(settle(*w));
  QCOMPARE(t->state(down), PlanTableModel::State::Failed);
  QVERIFY2(t->failure(down).contains(QStringLiteral("688")), qPrintable(t->failure(down)));
  QCOMPARE(t->index(down, PlanTableModel::Bits).data().toString(), QStringLiteral("does not fit"));
  QVERIFY(t->index(down, PlanTableModel::Format).data(Qt::ToolTipRole).toString().contains(QStringLiteral("688")));
  QVERIFY(!qs::ui::formatMismatch(QStringLiteral("q4_k"), 688).isEmpty());
  QVERIFY(qs::ui::formatMismatch(QStringLiteral("int4-g16"), 688).isEmpty());
  QVERIFY(t->totals().failed >= 1);
  // A format that fits clears the mark.
  QVERIFY(setFormat(*w, down, QStringLiteral("int4-ch")));
  QVERIFY(settle(*w));
  QCOMPARE(t->state(down), PlanTableModel::State::Ready);
}

void TstPlanEditor::selectionOverlaysTheGridOnTheHistogram() {
  auto w = openWindow(demo_.path());
  QVERIFY(w);
  const auto model = w->document()->model();
  const int row = rowOf(*model, "model.layers.2.self_attn.k_proj");
  QVERIFY(setFormat(*w, row, QStringLiteral("int3-g128")));
  QSignalSpy shown(w.get(), &MainWindow::statsShown);
  w->planEditor()->selectRows({row});
  QVERIFY(shown.wait(kWaitMs) || w->currentTensor() == static_cast<int>(model->layers[static_cast<std::size_t>(row)].weight));
  QCOMPARE(w->currentTensor(), static_cast<int>(model->layers[static_cast<std::size_t>(row)].weight));
  QVERIFY(QTest::qWaitFor([&] { return w->histogramPlot()->gridLevels().size() == 8; }, kWaitMs));
  // Double-clicking the row's name shows the histogram with that grid; another format, another grid.
  QVERIFY(setFormat(*w, row, QStringLiteral("q6_k")));
  QTableView* view = w->planEditor()->tableView();
  const QModelIndex name = view->model()->index(row, PlanTableModel::Layer);
  view->scrollTo(name);
  QVERIFY(view->visualRect(name).isValid());
  QTest::mousePress(view->viewport(), Qt::LeftButton, {}, view->visualRect(name).center());  // as a real double-click starts
  QTest::mouseRelease(view->viewport(), Qt::LeftButton, {}, view->visualRect(name).center());
  QTest::mouseDClick(view->viewport(), Qt::LeftButton, {}, view->visualRect(name).center());
  QCOMPARE(w->viewTabs()->currentWidget(), static_cast<QWidget*>(w->histogramPlot()));
  QVERIFY(QTest::qWaitFor([&] { return w->histogramPlot()->gridLevels().size() == 64; }, kWaitMs));
  if (const QByteArray shots = qgetenv("QS_SHOT_DIR"); !shots.isEmpty()) {
    QTest::qWait(200);
    w->grab().save(QDir(QString::fromLocal8Bit(shots)).filePath(QStringLiteral("plan-histogram-grid.png")));
  }
  QVERIFY(settle(*w));
}

// The view under the table: the selected row's weights before/after the round
// trip and its error, equal to core's quant_error_histograms for that format;
// it follows format edits of the row; an unfit format says why.
void TstPlanEditor::selectedRowShowsBeforeAfterAndError() {
  auto w = openWindow(demo_.path());
  QVERIFY(w);
  const auto model = w->document()->model();
  qs::ui::QuantErrorView* view = w->planEditor()->errorView();
  QVERIFY(view->isVisible());
  const int row = rowOf(*model, "model.layers.1.self_attn.q_proj");
  const QString layer = QStringLiteral("model.layers.1.self_attn.q_proj");
  const qs::TensorInfo& t = model->tensors[model->layers[static_cast<std::size_t>(row)].weight];
  for (const QString& format : {QStringLiteral("int4-g128"), QStringLiteral("q4_k"), QStringLiteral("nf4")}) {
    QVERIFY(setFormat(*w, row, format));
    w->planEditor()->selectRows({row});
    QVERIFY2(QTest::qWaitFor([&] { return view->layer() == layer && view->format() == format; }, kWaitMs),
             qPrintable(view->caption()));
    auto choice = qs::parse_quant_choice(format.toStdString());
    QVERIFY(choice.ok());
    auto ref = qs::quant_error_histograms(t, *choice, 128, qs::OpContext::none());
    QVERIFY(ref.ok());
    QCOMPARE(view->valuesPlot()->state(), qs::ui::HistogramPlot::State::Plot);
    QCOMPARE(view->valuesPlot()->binCounts().size(), 128);
    for (int b = 0; b < 128; ++b) {
      QCOMPARE(view->valuesPlot()->binCounts()[b], static_cast<double>(ref->before.counts[static_cast<std::size_t>(b)]));
      QCOMPARE(view->valuesPlot()->comparisonCounts()[b], static_cast<double>(ref->after.counts[static_cast<std::size_t>(b)]));
      QCOMPARE(view->errorPlot()->binCounts()[b], static_cast<double>(ref->error.counts[static_cast<std::size_t>(b)]));
    }
    QVERIFY2(view->valuesPlot()->headingText().contains(QStringLiteral("128 bins · 65.5 K values")),
             qPrintable(view->valuesPlot()->headingText()));
    // Every weight is counted once in each plot.
    const auto sum = [](const QVector<double>& c) { return std::accumulate(c.begin(), c.end(), 0.0); };
    QCOMPARE(sum(view->valuesPlot()->binCounts()), static_cast<double>(t.numel()));
    QCOMPARE(sum(view->valuesPlot()->comparisonCounts()), static_cast<double>(t.numel()));
    QCOMPARE(sum(view->errorPlot()->binCounts()), static_cast<double>(t.numel()));
    QVERIFY2(view->caption().contains(QStringLiteral("%1 dB").arg(ref->figures.sqnr_db, 0, 'f', 2)), qPrintable(view->caption()));
    QVERIFY(settle(*w));
  }
  // A format the row cannot take: the error names the reason. (A ggml type is shown as
  // llama.cpp stores it instead: q4_k on these rows is its F16 fallback.)
  const int down = rowOf(*model, "model.layers.0.mlp.down_proj");  // 688-long rows
  QVERIFY(setFormat(*w, down, QStringLiteral("int4-g128")));
  w->planEditor()->selectRows({down});
  QVERIFY2(QTest::qWaitFor([&] { return view->caption().contains(QStringLiteral("not a multiple")); }, kWaitMs),
           qPrintable(view->caption()));
  QCOMPARE(view->valuesPlot()->state(), qs::ui::HistogramPlot::State::Error);
  if (const QByteArray shots = qgetenv("QS_SHOT_DIR"); !shots.isEmpty()) {
    QVERIFY(setFormat(*w, row, QStringLiteral("int3-g128")));
    w->planEditor()->selectRows({row});
    QVERIFY(QTest::qWaitFor([&] { return view->format() == QStringLiteral("int3-g128"); }, kWaitMs));
    QTest::qWait(200);
    w->grab().save(QDir(QString::fromLocal8Bit(shots)).filePath(QStringLiteral("plan-before-after.png")));
  }
  QVERIFY(settle(*w));
}

void TstPlanEditor::autosaveRecovers() {
  auto w = openWindow(demo_.path());
  QVERIFY(w);
  PlanTableModel* t = w->planEditor()->tableModel();
  QFile::remove(w->autosavePath());
  QVERIFY(setFormat(*w, 3, QStringLiteral("int4-g64")));
  QVERIFY(QTest::qWaitFor([&] { return QFile::exists(w->autosavePath()); }, 10000));
  const qs::Plan edited = t->plan();
  // A "crash": a new window on the same model recovers the plan.
  auto w2 = openWindow(demo_.path());
  QVERIFY(w2);
  QVERIFY(w2->recoverAutosave());
  QVERIFY(w2->planEditor()->tableModel()->plan() == edited);
  QVERIFY(!w2->planEditor()->tableModel()->undoStack()->isClean());
  QVERIFY(settle(*w2));
  // Saving removes the copy.
  QVERIFY(w2->savePlan(demo_.filePath(QStringLiteral("recovered.json"))));
  QVERIFY(!QFile::exists(w2->autosavePath()));
}

// Live feedback: edit -> row updated, on a 4096 x 11008 F16 layer (Llama-7B's
// down_proj shape, transposed as HF stores up/gate), in a synthetic model.
// Every edit must update its row; how fast is a benchmark figure (printed here,
// recorded in docs/benchmarks.md), not an assertion a loaded machine can flake.
void TstPlanEditor::liveFeedbackLatencyOn4096x11008() {
  const QString dir = demo_.filePath(QStringLiteral("big"));
  QVERIFY(QDir().mkpath(dir));
  const std::int64_t rows = 4096, cols = 11008;
  std::vector<std::uint16_t> w(static_cast<std::size_t>(rows * cols));
  std::mt19937 rng(7);
  std::normal_distribution<float> normal(0.0f, 0.02f);
  for (auto& h : w) h = qs::f32_to_f16(normal(rng));
  std::vector<qs::SafetensorsWriteEntry> entries(1);
  entries[0].name = "model.layers.0.mlp.up_proj.weight";
  entries[0].dtype = qs::DType::F16;
  entries[0].shape = {rows, cols};
  entries[0].data = std::as_bytes(std::span<const std::uint16_t>(w));
  const QString file = QDir(dir).filePath(QStringLiteral("model.safetensors"));
  auto written = qs::write_safetensors(file.toStdString(), entries);
  QVERIFY2(written.ok(), written.ok() ? "" : written.error().message.c_str());
  w = {};

  auto win = openWindow(file);
  QVERIFY(win);
  PlanTableModel* t = win->planEditor()->tableModel();
  QCOMPARE(t->rowCount(), 1);
  const QStringList formats = {QStringLiteral("int4-g128"), QStringLiteral("int8-ch"), QStringLiteral("int4-g64-sym"),
                               QStringLiteral("int3-g128"), QStringLiteral("int4-g32"), QStringLiteral("q4_0"),
                               QStringLiteral("q4_k")};
  // As a user does: the row is selected (clicked) before its cell is edited.
  win->planEditor()->selectRows({0});
  QTest::qWait(500);
  for (const QString& f : formats) {
    QElapsedTimer clock;
    clock.start();
    QVERIFY(setFormat(*win, 0, f));
    QVERIFY(QTest::qWaitFor([&] { return t->state(0) == PlanTableModel::State::Ready; }, kWaitMs));
    const qint64 ms = clock.elapsed();
    qInfo("live feedback %-13s edit -> row updated %4lld ms (method %.1f ms; a lone edit starts at once, "
          "edits during a measurement wait %d ms)", qPrintable(f), ms, t->measurement(0).milliseconds,
          win->document()->measureDebounceMs());
  }
}

QTEST_MAIN(TstPlanEditor)
#include "tst_plan_editor.moc"
