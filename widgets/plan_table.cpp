#include "widgets/plan_table.h"

#include "widgets/quant_error_view.h"
#include "quant/layer_method.h"
#include "quant/method_table.h"

#include <QApplication>
#include <QSplitter>
#include <QBrush>
#include <QColor>
#include <QComboBox>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QItemSelectionModel>
#include <QLabel>
#include <QLineEdit>
#include <QProgressBar>
#include <QPushButton>
#include <QRegularExpression>
#include <QStandardItemModel>
#include <QStyledItemDelegate>
#include <QTableView>
#include <QUndoCommand>
#include <QUndoStack>
#include <QVBoxLayout>
#include <algorithm>
#include <cmath>
#include <limits>
#include <map>

#include "model/dtype.h"
#include "quant/int_grid.h"
#include "widgets/display_format.h"

namespace qs::ui {

QStringList planFormats() {
  // The format table's rows that have a quantizer, integer grids in the common
  // shapes after the element formats, and the keep rows last.
  QStringList out, kept;
  for (const FormatRow& r : format_table()) {
    if (!r.fake_quant || r.kind == FormatKind::IntGrid) continue;
    if (r.keeps_precision && r.gguf == DType::F32) continue;  // F32 sources are already that; offered by typing it
    (r.keeps_precision ? kept : out) << QString::fromUtf8(r.name.data(), static_cast<int>(r.name.size()));
  }
  for (int bits : {8, 4, 3})
    for (const char* g : {"-g128", "-g64", "-g32", "-ch"})
      for (const char* sym : {"", "-sym"}) out << QStringLiteral("int%1%2%3").arg(bits).arg(QLatin1String(g), QLatin1String(sym));
  return out + kept;
}

QStringList planMethods() {
  QStringList out;
  for (const MethodRow& m : method_table())
    if (m.consumers & consumer_bit(Consumer::Measure)) out << QString::fromUtf8(m.name.data(), static_cast<int>(m.name.size()));
  return out;
}

bool methodNeedsCalibration(const QString& method) {
  const MethodRow* m = find_method(method.toStdString());
  return m && m->needs_calibration();
}

bool isRtnMethod(const QString& method) { return find_method(method.toStdString()) == &method_row(MethodId::Rtn); }

bool isKeptFormat(const QString& format) {
  auto c = parse_quant_choice(format.toStdString());
  return c && c->keeps_precision();
}

bool isStoredAsIs(const QString& format) {
  auto c = parse_quant_choice(format.toStdString());
  return c && c->keeps_precision() && c->gguf_type() == DType::F32;
}

QString formatMismatch(const QString& format, std::int64_t cols) {
  auto choice = parse_quant_choice(format.toStdString());
  if (!choice) return QString::fromStdString(choice.error().message);
  if (auto r = choice->fits(cols); !r) return QString::fromStdString(r.error().message);
  return {};
}

namespace {

QString formatOf(const LayerConfig& c) { return QString::fromStdString(c.format); }
QString methodOf(const LayerConfig& c) { return QString::fromStdString(c.method); }

QString sqnrText(double db) {
  if (std::isinf(db)) return QStringLiteral("exact");
  return QString::number(db, 'f', 2);
}

}  // namespace

// ---- model ----------------------------------------------------------------------

PlanTableModel::PlanTableModel(QObject* parent) : QAbstractTableModel(parent) {}

void PlanTableModel::setSource(PlanSource* source) {
  if (source_) disconnect(source_, nullptr, this, nullptr);
  source_ = source;
  rebuildRows();
  if (!source_) return;
  connect(source_, &QObject::destroyed, this, &PlanTableModel::rebuildRows);  // no rows without a plan
  connect(source_, &PlanSource::layersReset, this, &PlanTableModel::rebuildRows);
  connect(source_, &PlanSource::configsChanged, this, [this](const QVector<int>& rows) {
    for (int r : rows)
      if (r >= 0 && r < rowCount()) emit dataChanged(index(r, Format), index(r, ColumnCount - 1));
    emit configsChanged(rows);
    emit totalsChanged();
  });
  connect(source_, &PlanSource::figuresChanged, this, [this](int r) {
    if (r >= 0 && r < rowCount()) emit dataChanged(index(r, Format), index(r, ColumnCount - 1));
    emit totalsChanged();
  });
}

void PlanTableModel::rebuildRows() {
  beginResetModel();
  rows_.clear();
  modelBytes_ = 0;
  modelWeights_ = 0;
  const std::shared_ptr<const Model> model = source_ ? source_->model() : nullptr;
  if (model) {
    modelBytes_ = static_cast<double>(model->weight_bytes());
    for (const TensorInfo& t : model->tensors) modelWeights_ += static_cast<double>(t.numel());
    for (const qs::Layer& l : model->layers) {
      const TensorInfo& t = model->tensors[l.weight];
      Row r;
      r.name = QString::fromStdString(l.name);
      std::string_view rest;
      const int block = tensor_block(l.name, &rest);
      r.shortName = block >= 0 ? QString::fromUtf8(rest.data(), static_cast<qsizetype>(rest.size())) : r.name;
      r.role = fromStd(layer_role_name(l.role));
      r.block = l.block;
      r.tensor = l.weight;
      r.rows = t.rows();
      r.cols = t.cols();
      r.weights = static_cast<double>(t.numel());
      r.storedBytes = static_cast<double>(t.nbytes);
      rows_.push_back(std::move(r));
    }
  }
  endResetModel();
  emit totalsChanged();
}

const LayerConfig& PlanTableModel::config(int row) const { return source_->configs()[static_cast<std::size_t>(row)]; }

int PlanTableModel::rowCount(const QModelIndex& parent) const {
  return parent.isValid() ? 0 : static_cast<int>(rows_.size());
}
int PlanTableModel::columnCount(const QModelIndex& parent) const { return parent.isValid() ? 0 : ColumnCount; }

QVariant PlanTableModel::headerData(int section, Qt::Orientation orientation, int role) const {
  if (orientation != Qt::Horizontal) return {};
  static const char* names[] = {"Block", "Layer", "Role", "Shape", "Format", "Method",
                                "Bits/w", "Size", "SQNR (dB)", "Max error", "Output error", "Time (ms)"};
  static const char* tips[] = {"Transformer block (blank: outside the blocks)",
                               "Layer name within its block",
                               "Layer role",
                               "Weight shape [rows, cols]",
                               "Quantization format (double-click to change)",
                               "Quantization method; gptq and awq need calibration data",
                               "Storage bits per weight, scales included",
                               "Size of the quantized weight",
                               "Weight signal-to-quantization-noise ratio: 20 log10(|W| / |W - Q|)",
                               "Largest |W - Q|",
                               "Relative output error on the calibration data: tr(ΔW H ΔWᵀ) / tr(W H Wᵀ) with H = XᵀX/n "
                               "of this layer's input (— : no calibrated input, e.g. the head)",
                               "Time the method took for this layer (quantize, dequantize, measure)"};
  if (section < 0 || section >= ColumnCount) return {};
  if (role == Qt::DisplayRole) return tr(names[section]);
  if (role == Qt::ToolTipRole) return tr(tips[section]);
  return {};
}

Qt::ItemFlags PlanTableModel::flags(const QModelIndex& index) const {
  Qt::ItemFlags f = QAbstractTableModel::flags(index);
  if (index.column() == Format || index.column() == Method) f |= Qt::ItemIsEditable;
  return f;
}

QVariant PlanTableModel::data(const QModelIndex& index, int role) const {
  if (!source_ || !index.isValid() || index.row() >= static_cast<int>(rows_.size())) return {};
  const Row& r = rows_[static_cast<std::size_t>(index.row())];
  const LayerConfig& c = config(index.row());
  const LayerFiguresState& fig = source_->figures(index.row());
  const int col = index.column();
  const bool ready = fig.state == State::Ready;
  const bool quantized = !isStoredAsIs(formatOf(c));
  if (role == Qt::DisplayRole || role == Qt::EditRole) {
    switch (col) {
      case Block: return r.block >= 0 ? QVariant(r.block) : QVariant(QString());
      case Layer: return r.shortName;
      case Role: return r.role;
      case Shape: return QStringLiteral("%1 × %2").arg(r.rows).arg(r.cols);
      case Format:
        if (role == Qt::EditRole) return formatOf(c);
        if (fig.state == State::Failed) return tr("%1 ✗").arg(formatOf(c));
        if (ready && !fig.m.applied.empty()) return tr("%1 → %2").arg(formatOf(c), QString::fromStdString(fig.m.applied));
        return formatOf(c);
      case Method: return methodOf(c);
      default: break;
    }
    if (fig.state == State::Failed) return col == Bits ? QVariant(tr("does not fit")) : QVariant(QStringLiteral("—"));
    if (!ready) return col == Bits ? QVariant(tr("measuring…")) : QVariant(QString());
    switch (col) {
      case Bits: return QString::number(fig.m.bits_per_weight, 'f', 3);
      case Bytes: return humanBytes(static_cast<std::uint64_t>(std::llround(planBytes(index.row()))));
      case Sqnr: return quantized ? sqnrText(fig.m.error.sqnr_db) : tr("kept");
      case MaxError: return quantized ? QString::number(fig.m.error.max_abs, 'g', 3) : QStringLiteral("0");
      case OutputError:
        if (!quantized) return QStringLiteral("0");
        return fig.m.rel_output_error >= 0 ? QString::number(fig.m.rel_output_error, 'e', 2) : QStringLiteral("—");
      case Time: return quantized ? QString::number(fig.m.milliseconds, 'f', fig.m.milliseconds < 10 ? 2 : 1) : QString();
      default: return {};
    }
  }
  if (role == Qt::UserRole) {  // raw numbers, for sorting and tests
    switch (col) {
      case Bits: return ready ? QVariant(fig.m.bits_per_weight) : QVariant();
      case Bytes: return ready ? QVariant(planBytes(index.row())) : QVariant();
      case Sqnr: return ready ? QVariant(fig.m.error.sqnr_db) : QVariant();
      case MaxError: return ready ? QVariant(fig.m.error.max_abs) : QVariant();
      case OutputError: return ready && fig.m.rel_output_error >= 0 ? QVariant(fig.m.rel_output_error) : QVariant();
      case Time: return ready ? QVariant(fig.m.milliseconds) : QVariant();
      default: return {};
    }
  }
  if (role == Qt::ToolTipRole) {
    if (fig.state == State::Failed) return tr("%1 cannot take %2:\n%3").arg(r.name, formatOf(c), fig.error);
    if (col == Layer) return r.name;
    if (col == Format && ready && !fig.m.note.empty()) return QString::fromStdString(fig.m.note);
    if (col == Method && !isRtnMethod(methodOf(c)))
      return methodNeedsCalibration(methodOf(c)) && !calibrated_
                 ? tr("%1 needs calibration data: load or make it (Tools ▸ Calibrate…)").arg(methodOf(c))
                 : tr("The figures are %1's result on this layer%2").arg(methodOf(c),
                       calibrated_ ? tr(" (with the calibration data)") : QString());
    if (col == Bytes && ready)
      return tr("%1 bytes (stored now: %2)")
          .arg(std::llround(planBytes(index.row())))
          .arg(humanBytes(static_cast<std::uint64_t>(r.storedBytes)));
    return {};
  }
  if (role == Qt::ForegroundRole) {
    if (fig.state == State::Failed && (col == Format || col == Bits)) return QBrush(QColor(0xc6, 0x28, 0x28));
    if (col == Method && methodNeedsCalibration(methodOf(c))) return QBrush(QColor(0xa0, 0x60, 0x00));
    if (col >= Bits && !ready) return QBrush(QColor(0x80, 0x80, 0x80));
    return {};
  }
  if (role == Qt::BackgroundRole) {
    if (fig.state == State::Failed) return QBrush(QColor(0xfd, 0xec, 0xea));
    if (r.block >= 0 && r.block % 2 == 1) return QBrush(QColor(0xf3, 0xf5, 0xf9));  // blocks in bands
    return {};
  }
  if (role == Qt::TextAlignmentRole && col >= Bits) return QVariant(int(Qt::AlignRight | Qt::AlignVCenter));
  if (role == Qt::TextAlignmentRole && col == Block) return QVariant(int(Qt::AlignCenter));
  return {};
}

bool PlanTableModel::setData(const QModelIndex& index, const QVariant& value, int role) {
  if (role != Qt::EditRole || !index.isValid() || !source_ || (index.column() != Format && index.column() != Method))
    return false;
  const int row = index.row();
  const QString text = value.toString().trimmed();
  if (text.isEmpty()) return false;
  LayerConfig c = config(row);
  const bool format = index.column() == Format;
  if (text == (format ? formatOf(c) : methodOf(c))) return false;
  (format ? c.format : c.method) = text.toStdString();
  const QString what = format ? tr("format") : tr("method");
  source_->setLayerConfig({row}, format ? kFormatField : kMethodField, c,
                          tr("Set %1 of %2 to %3").arg(what, rows_[static_cast<std::size_t>(row)].name, text),
                          /*mergeable=*/true);
  return true;
}

void PlanTableModel::applyToRows(const QVector<int>& rows, const std::optional<QString>& format,
                                 const std::optional<QString>& method) {
  if (!source_ || (!format && !method)) return;
  LayerConfig value;
  unsigned fields = 0;
  QStringList what;
  if (format) {
    value.format = format->toStdString();
    fields |= kFormatField;
    what << *format;
  }
  if (method) {
    value.method = method->toStdString();
    fields |= kMethodField;
    what << *method;
  }
  int changing = 0;
  for (int r : rows)
    if (r >= 0 && r < rowCount() &&
        ((format && formatOf(config(r)) != *format) || (method && methodOf(config(r)) != *method)))
      ++changing;
  source_->setLayerConfig(rows, fields, value,
                          tr("Apply %1 to %n layer(s)", nullptr, changing).arg(what.join(QStringLiteral(" + "))));
}

void PlanTableModel::replaceConfigs(const std::vector<LayerConfig>& configs, const QString& preset,
                                    const QString& text) {
  if (source_) source_->replaceConfigs(configs, preset, text);
}

const std::vector<LayerConfig>& PlanTableModel::configs() const {
  static const std::vector<LayerConfig> none;
  return source_ ? source_->configs() : none;
}

QString PlanTableModel::preset() const { return source_ ? source_->preset() : QString(); }
QUndoStack* PlanTableModel::undoStack() const { return source_ ? source_->undoStack() : nullptr; }
Plan PlanTableModel::plan() const { return source_ ? source_->plan() : Plan{}; }

PlanTableModel::State PlanTableModel::state(int row) const { return source_->figures(row).state; }
const LayerQuantError& PlanTableModel::measurement(int row) const { return source_->figures(row).m; }
QString PlanTableModel::failure(int row) const { return source_->figures(row).error; }

double PlanTableModel::planBytes(int row) const {
  const Row& r = rows_[static_cast<std::size_t>(row)];
  const LayerFiguresState& f = source_->figures(row);
  if (f.state != State::Ready) return r.storedBytes;
  return f.m.bits_per_weight * r.weights / 8.0;
}

bool PlanTableModel::allSettled() const {
  for (int i = 0; i < rowCount(); ++i)
    if (source_->figures(i).state == State::Pending) return false;
  return true;
}

PlanTotals PlanTableModel::totals() const {
  PlanTotals t;
  t.originalModelBytes = modelBytes_;
  t.planModelBytes = modelBytes_;
  t.worstSqnrDb = std::numeric_limits<double>::infinity();
  double bits = 0;
  for (std::size_t i = 0; i < rows_.size(); ++i) {
    const Row& r = rows_[i];
    const LayerFiguresState& f = source_->figures(static_cast<int>(i));
    if (f.state == State::Pending) ++t.pending;
    if (f.state == State::Failed) ++t.failed;
    if (f.state != State::Ready) continue;
    ++t.measured;
    t.planModelBytes += planBytes(static_cast<int>(i)) - r.storedBytes;
    t.layerWeights += r.weights;
    bits += f.m.bits_per_weight * r.weights;
    t.squaredError += f.m.error.mse * r.weights;
    if (f.m.rel_output_error >= 0) {
      ++t.outputErrorRows;
      t.outputErrorSum += f.m.rel_output_error;
      if (t.worstOutputRow < 0 || f.m.rel_output_error > t.worstOutputError) {
        t.worstOutputError = f.m.rel_output_error;
        t.worstOutputRow = static_cast<int>(i);
      }
    }
    if (f.m.error.sqnr_db < t.worstSqnrDb) {
      t.worstSqnrDb = f.m.error.sqnr_db;
      t.worstRow = static_cast<int>(i);
    }
  }
  t.layerAverageBits = t.layerWeights > 0 ? bits / t.layerWeights : 0;
  // The one account: every tensor of the model, each layer as measured (its
  // stored size until then, and where its format does not fit), the rest as stored.
  t.modelWeights = modelWeights_;
  t.averageBits = modelWeights_ > 0 ? 8.0 * t.planModelBytes / modelWeights_ : 0;
  return t;
}

// ---- filter ----------------------------------------------------------------------

void PlanFilterModel::setRole(const QString& role) {
  role_ = role;
  invalidateFilter();
}

void PlanFilterModel::setNameFilter(const QString& text) {
  name_ = text.trimmed();
  invalidateFilter();
}

bool PlanFilterModel::filterAcceptsRow(int sourceRow, const QModelIndex&) const {
  const auto* m = qobject_cast<const PlanTableModel*>(sourceModel());
  if (!m || sourceRow >= m->rowCount()) return true;
  if (!role_.isEmpty() && m->roleName(sourceRow) != role_) return false;
  if (name_.isEmpty()) return true;
  const QString name = m->layerName(sourceRow);
  if (name.contains(name_, Qt::CaseInsensitive)) return true;
  const QRegularExpression re(name_, QRegularExpression::CaseInsensitiveOption);
  return re.isValid() && re.match(name).hasMatch();
}

// ---- delegates -------------------------------------------------------------------

namespace {

// A combo of the valid values; for formats, those the layer's shape cannot take
// are disabled and say why.
class ChoiceDelegate : public QStyledItemDelegate {
 public:
  // `calibrated` (methods only): the editor's flag; methods that need calibration are offered when set.
  ChoiceDelegate(bool formats, const bool* calibrated, QObject* parent)
      : QStyledItemDelegate(parent), formats_(formats), calibrated_(calibrated) {}

  QWidget* createEditor(QWidget* parent, const QStyleOptionViewItem&, const QModelIndex& index) const override {
    auto* combo = new QComboBox(parent);
    auto* items = new QStandardItemModel(combo);
    const QString current = index.data(Qt::EditRole).toString();
    QStringList values = formats_ ? planFormats() : planMethods();
    if (!values.contains(current)) values.prepend(current);
    std::int64_t cols = 0;
    if (formats_) {
      const auto* proxy = qobject_cast<const QSortFilterProxyModel*>(index.model());
      const QModelIndex src = proxy ? proxy->mapToSource(index) : index;
      const QString shape = src.sibling(src.row(), PlanTableModel::Shape).data().toString();
      cols = shape.section(QStringLiteral(" × "), 1, 1).toLongLong();
    }
    for (const QString& v : values) {
      auto* item = new QStandardItem(v);
      item->setData(v, Qt::UserRole);
      if (formats_) {
        const QString why = formatMismatch(v, cols);
        if (!why.isEmpty()) {
          item->setText(tr("%1 — does not fit").arg(v));
          item->setToolTip(why);
          item->setForeground(QBrush(QColor(0xc6, 0x28, 0x28)));
        }
      } else if (methodNeedsCalibration(v) && !(calibrated_ && *calibrated_)) {
        item->setText(tr("%1 (needs calibration)").arg(v));
        item->setToolTip(tr("Load calibration data to use %1").arg(v));
        item->setEnabled(false);
      }
      items->appendRow(item);
    }
    combo->setModel(items);
    return combo;
  }
  void setEditorData(QWidget* editor, const QModelIndex& index) const override {
    auto* combo = static_cast<QComboBox*>(editor);
    const int i = combo->findData(index.data(Qt::EditRole).toString(), Qt::UserRole);
    combo->setCurrentIndex(std::max(i, 0));
  }
  void setModelData(QWidget* editor, QAbstractItemModel* model, const QModelIndex& index) const override {
    auto* combo = static_cast<QComboBox*>(editor);
    model->setData(index, combo->currentData(Qt::UserRole), Qt::EditRole);
  }

 private:
  static QString tr(const char* s) { return QCoreApplication::translate("qs::ui::PlanEditor", s); }
  bool formats_;
  const bool* calibrated_;
};

}  // namespace

// ---- editor ----------------------------------------------------------------------

PlanEditor::PlanEditor(QWidget* parent)
    : QWidget(parent),
      model_(new PlanTableModel(this)),
      filter_(new PlanFilterModel(this)),
      view_(new QTableView(this)),
      nameFilter_(new QLineEdit(this)),
      roleFilter_(new QComboBox(this)),
      presets_(new QComboBox(this)),
      applyFormat_(new QComboBox(this)),
      applyMethod_(new QComboBox(this)),
      applyButton_(new QPushButton(tr("Apply"), this)),
      allocateButton_(new QPushButton(tr("Allocate to Budget…"), this)),
      totals_(new QLabel(this)),
      progress_(new QProgressBar(this)),
      errorView_(new QuantErrorView(this)) {
  filter_->setSourceModel(model_);
  view_->setModel(filter_);
  view_->setColumnHidden(PlanTableModel::OutputError, true);  // until calibration data is loaded
  view_->setObjectName(QStringLiteral("planTable"));
  view_->setSelectionBehavior(QAbstractItemView::SelectRows);
  view_->setSelectionMode(QAbstractItemView::ExtendedSelection);
  view_->setEditTriggers(QAbstractItemView::DoubleClicked | QAbstractItemView::SelectedClicked |
                         QAbstractItemView::EditKeyPressed);
  view_->setItemDelegateForColumn(PlanTableModel::Format, new ChoiceDelegate(true, nullptr, view_));
  view_->setItemDelegateForColumn(PlanTableModel::Method, new ChoiceDelegate(false, &outputErrorOn_, view_));
  view_->verticalHeader()->hide();
  view_->verticalHeader()->setDefaultSectionSize(fontMetrics().height() + 6);
  view_->horizontalHeader()->setSectionResizeMode(QHeaderView::Interactive);
  view_->horizontalHeader()->setStretchLastSection(false);
  view_->setWordWrap(false);
  const int em = fontMetrics().horizontalAdvance(QLatin1Char('M'));
  // Wide enough for "does not fit", "182.8 KiB" and the headers; the layer name takes what is left.
  const double widths[PlanTableModel::ColumnCount] = {3.6, 12, 5.6, 8.5, 7.5, 5.5, 8.5, 6.8, 7.2, 7.2, 9.4, 7};
  for (int c = 0; c < PlanTableModel::ColumnCount; ++c) view_->setColumnWidth(c, static_cast<int>(widths[c] * em));
  view_->horizontalHeader()->setSectionResizeMode(PlanTableModel::Layer, QHeaderView::Stretch);
  view_->horizontalHeader()->setMinimumSectionSize(3 * em);

  nameFilter_->setPlaceholderText(tr("Filter by name (text or regex)"));
  nameFilter_->setClearButtonEnabled(true);
  roleFilter_->addItem(tr("All roles"), QString());
  for (const char* r : {"q", "k", "v", "o", "gate", "up", "down", "embed", "lm_head", "other"})
    roleFilter_->addItem(QString::fromLatin1(r), QString::fromLatin1(r));
  presets_->setToolTip(tr("Start from a preset (one undo step)"));
  applyFormat_->addItem(tr("(format)"), QString());
  for (const QString& f : planFormats()) applyFormat_->addItem(f, f);
  applyMethod_->addItem(tr("(method)"), QString());
  for (const QString& m : planMethods()) {
    applyMethod_->addItem(m, m);
    if (methodNeedsCalibration(m)) {
      auto* items = qobject_cast<QStandardItemModel*>(applyMethod_->model());
      if (items) items->item(applyMethod_->count() - 1)->setEnabled(false);
    }
  }
  applyButton_->setToolTip(tr("Give every selected layer the chosen format and/or method (one undo step)"));
  allocateButton_->setObjectName(QStringLiteral("allocateButton"));
  allocateButton_->setToolTip(tr("Choose a format per layer for a target average bits/weight, "
                                 "minimising the summed squared weight error"));
  totals_->setObjectName(QStringLiteral("planTotals"));
  totals_->setTextInteractionFlags(Qt::TextSelectableByMouse);
  totals_->setWordWrap(true);
  progress_->setMaximumWidth(180);
  progress_->setFormat(tr("measuring %v/%m"));
  progress_->hide();

  // Two short rows rather than one long one: the editor shares the window with the docks.
  auto* top = new QHBoxLayout;
  top->addWidget(new QLabel(tr("Preset:"), this));
  top->addWidget(presets_);
  top->addSpacing(8);
  top->addWidget(allocateButton_);
  top->addStretch(1);
  auto* second = new QHBoxLayout;
  second->addWidget(new QLabel(tr("Show:"), this));
  second->addWidget(roleFilter_);
  second->addWidget(nameFilter_, 1);
  second->addSpacing(8);
  second->addWidget(new QLabel(tr("Selection:"), this));
  second->addWidget(applyFormat_);
  second->addWidget(applyMethod_);
  second->addWidget(applyButton_);
  nameFilter_->setMinimumWidth(8 * em);
  auto* bottom = new QHBoxLayout;
  bottom->addWidget(totals_, 1);
  bottom->addWidget(progress_);
  auto* layout = new QVBoxLayout(this);
  layout->setContentsMargins(4, 4, 4, 4);
  layout->addLayout(top);
  layout->addLayout(second);
  // The table over the selected row's before/after view; the user sets the split.
  auto* split = new QSplitter(Qt::Vertical, this);
  split->setObjectName(QStringLiteral("planSplitter"));
  split->addWidget(view_);
  split->addWidget(errorView_);
  split->setStretchFactor(0, 1);
  split->setStretchFactor(1, 1);
  split->setChildrenCollapsible(true);
  layout->addWidget(split, 1);
  layout->addLayout(bottom);

  connect(nameFilter_, &QLineEdit::textChanged, filter_, &PlanFilterModel::setNameFilter);
  connect(roleFilter_, &QComboBox::currentIndexChanged, this,
          [this] { filter_->setRole(roleFilter_->currentData().toString()); });
  connect(presets_, &QComboBox::activated, this, [this](int i) {
    const QString name = presets_->itemData(i).toString();
    if (!name.isEmpty()) emit presetRequested(name);
  });
  connect(applyButton_, &QPushButton::clicked, this, [this] {
    const QString f = applyFormat_->currentData().toString(), m = applyMethod_->currentData().toString();
    applyToSelection(f.isEmpty() ? std::nullopt : std::optional<QString>(f),
                     m.isEmpty() ? std::nullopt : std::optional<QString>(m));
  });
  connect(allocateButton_, &QPushButton::clicked, this, &PlanEditor::allocateRequested);
  connect(view_, &QTableView::doubleClicked, this, [this](const QModelIndex& index) {
    if (index.column() != PlanTableModel::Format && index.column() != PlanTableModel::Method)
      emit layerActivated(filter_->mapToSource(index).row());
  });
  // The preset combo names the preset the plan started from (a budget, an opened file: none).
  connect(model_, &PlanTableModel::configsChanged, this, [this] {
    const int i = presets_->findData(model_->preset());
    presets_->setCurrentIndex(std::max(i, 0));
  });
  connect(model_, &PlanTableModel::totalsChanged, this, &PlanEditor::updateTotals);
  connect(view_->selectionModel(), &QItemSelectionModel::currentRowChanged, this,
          [this](const QModelIndex& current) {
            if (current.isValid()) emit layerSelected(filter_->mapToSource(current).row());
          });
  updateTotals();
}

void PlanEditor::setSource(PlanSource* source) { model_->setSource(source); }

void PlanEditor::setPresetNames(const QStringList& names) {
  presets_->clear();
  presets_->addItem(tr("(choose)"), QString());
  for (const QString& n : names) presets_->addItem(n, n);
}

void PlanEditor::setRoleFilter(const QString& role) {
  const int i = roleFilter_->findData(role);
  roleFilter_->setCurrentIndex(std::max(i, 0));
}

void PlanEditor::setNameFilter(const QString& text) { nameFilter_->setText(text); }

QVector<int> PlanEditor::selectedRows() const {
  QVector<int> rows;
  for (const QModelIndex& i : view_->selectionModel()->selectedRows()) rows << filter_->mapToSource(i).row();
  std::sort(rows.begin(), rows.end());
  return rows;
}

void PlanEditor::selectRows(const QVector<int>& rows) {
  QItemSelection sel;
  for (int r : rows) {
    const QModelIndex i = filter_->mapFromSource(model_->index(r, 0));
    if (i.isValid()) sel.select(i, i.siblingAtColumn(PlanTableModel::ColumnCount - 1));
  }
  view_->selectionModel()->select(sel, QItemSelectionModel::ClearAndSelect | QItemSelectionModel::Rows);
  if (!rows.isEmpty()) {
    const QModelIndex first = filter_->mapFromSource(model_->index(rows.front(), 0));
    view_->selectionModel()->setCurrentIndex(first, QItemSelectionModel::NoUpdate);
  }
}

void PlanEditor::applyToSelection(const std::optional<QString>& format, const std::optional<QString>& method) {
  if (!format && !method) return;
  model_->applyToRows(selectedRows(), format, method);
}

void PlanEditor::setProgress(int done, int total) {
  if (total <= 0 || done >= total) {
    progress_->hide();
    return;
  }
  progress_->setRange(0, total);
  progress_->setValue(done);
  progress_->show();
}

QString PlanEditor::totalsText() const { return totals_->text(); }

void PlanEditor::setOutputErrorAvailable(bool on) {
  outputErrorOn_ = on;
  model_->setCalibrated(on);
  // GPTQ and AWQ need the calibration data: offered in the apply bar only with it.
  if (auto* items = qobject_cast<QStandardItemModel*>(applyMethod_->model()))
    for (int i = 1; i < applyMethod_->count(); ++i)
      if (methodNeedsCalibration(applyMethod_->itemData(i).toString())) items->item(i)->setEnabled(on);
  view_->setColumnHidden(PlanTableModel::OutputError, !on);
  allocateButton_->setToolTip(
      on ? tr("Choose a format per layer for a target average bits/weight, minimising the summed relative output "
              "error on the calibration data (relative weight error where a layer has no calibrated input)")
         : tr("Choose a format per layer for a target average bits/weight, "
              "minimising the summed squared weight error"));
  updateTotals();
}

void PlanEditor::updateTotals() {
  const PlanTotals t = model_->totals();
  if (model_->rowCount() == 0) {
    totals_->setText(tr("No model open"));
    return;
  }
  constexpr double MiB = 1024.0 * 1024.0;
  QString text = tr("<b>%1 MiB</b> (original %2 MiB, %3 %) · <b>%4</b> bits/weight · squared error %5 · worst "
                    "SQNR %6 dB%7")
                     .arg(t.planModelBytes / MiB, 0, 'f', 2)
                     .arg(t.originalModelBytes / MiB, 0, 'f', 2)
                     .arg(t.originalModelBytes > 0 ? 100.0 * t.planModelBytes / t.originalModelBytes : 0.0, 0, 'f', 1)
                     .arg(t.averageBits, 0, 'f', 3)
                     .arg(t.squaredError, 0, 'g', 4)
                     .arg(std::isinf(t.worstSqnrDb) ? tr("∞") : QString::number(t.worstSqnrDb, 'f', 2))
                     .arg(t.worstRow >= 0 ? tr(" (%1)").arg(model_->layerName(t.worstRow)) : QString());
  if (outputErrorOn_ && t.outputErrorRows > 0)
    text += tr(" · output error: sum %1, worst %2 (%3)")
                .arg(t.outputErrorSum, 0, 'g', 4)
                .arg(t.worstOutputError, 0, 'g', 3)
                .arg(model_->layerName(t.worstOutputRow));
  if (t.failed > 0) text += tr(" · <span style='color:#c62828'>%n layer(s) do not fit their format</span>", nullptr, t.failed);
  if (t.pending > 0) text += tr(" · %n measuring", nullptr, t.pending);
  totals_->setText(text);
}

}  // namespace qs::ui
