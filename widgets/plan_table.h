#pragma once
// The plan editor: one row per linear layer (model order, so grouped by
// block) with its format and method and the live figures of that choice
// (bits/weight, bytes, weight SQNR, max error, method time), a totals bar,
// filters by role and name, "apply to selection", presets and an undo stack
// for every edit.
//
// PlanTableModel shows the plan the app's document holds (plan_source.h):
// each row's config and figures come from there, and edits go there (each one
// undo step on the document's stack). It holds only what the rows show of the
// model (names, shapes, sizes) and measures nothing.
#include <QAbstractTableModel>
#include <QPointer>
#include <QSortFilterProxyModel>
#include <QStringList>
#include <QVector>
#include <QWidget>
#include <optional>
#include <vector>

#include "model/model.h"
#include "quant/measure.h"
#include "quant/plan.h"
#include "widgets/plan_source.h"

class QComboBox;
class QLabel;
class QLineEdit;
class QProgressBar;
class QPushButton;
class QTableView;
class QUndoStack;

namespace qs::ui {

class QuantErrorView;

// The formats the editor offers, in menu order.
QStringList planFormats();
// The methods; those that need calibration data are offered only when it is loaded.
QStringList planMethods();
bool methodNeedsCalibration(const QString& method);
// Why `format` cannot quantize a weight with rows of `cols` values; empty when it can.
QString formatMismatch(const QString& format, std::int64_t cols);
// Float formats (f16, bf16, f32): no grid, nothing a block or group size could refuse.
bool isKeptFormat(const QString& format);
// F32: stored exactly as the source holds it (no measurement).
bool isStoredAsIs(const QString& format);
// The method is plain round to nearest.
bool isRtnMethod(const QString& method);

struct PlanTotals {
  double originalModelBytes = 0;  // every tensor of the checkpoint as stored
  double planModelBytes = 0;      // the same with each layer at its planned size (unmeasured: as stored)
  double layerWeights = 0;        // weights of the measured layers
  double modelWeights = 0;        // every tensor's elements
  // Bits per weight of the whole model as planned: 8 planModelBytes / modelWeights
  // (embeddings, norms and layers that do not fit counted as stored; docs/plan-format.md).
  double averageBits = 0;
  double layerAverageBits = 0;    // over the measured layers only
  double squaredError = 0;        // sum over measured layers of mse * weights
  double worstSqnrDb = 0;         // lowest SQNR among measured layers (+inf if none is lossy)
  int worstRow = -1;
  int measured = 0, failed = 0, pending = 0;
  // Relative output error tr(dW H dW^T) / tr(W H W^T) (calibrated rows only): sum and worst.
  double outputErrorSum = 0, worstOutputError = 0;
  int worstOutputRow = -1, outputErrorRows = 0;
};

class PlanTableModel : public QAbstractTableModel {
  Q_OBJECT
 public:
  enum Column { Block, Layer, Role, Shape, Format, Method, Bits, Bytes, Sqnr, MaxError, OutputError, Time, ColumnCount };
  using State = LayerFiguresState::State;

  explicit PlanTableModel(QObject* parent = nullptr);

  // The plan shown and edited (the app's document); null: none, no rows.
  void setSource(PlanSource* source);

  int rowCount(const QModelIndex& parent = {}) const override;
  int columnCount(const QModelIndex& parent = {}) const override;
  QVariant data(const QModelIndex& index, int role) const override;
  QVariant headerData(int section, Qt::Orientation orientation, int role) const override;
  Qt::ItemFlags flags(const QModelIndex& index) const override;
  // Format and Method cells: an undoable edit (consecutive edits of one cell merge).
  bool setData(const QModelIndex& index, const QVariant& value, int role) override;

  // The source's undo stack (null without a source).
  QUndoStack* undoStack() const;

  // Edits, each one undo step on the source's stack.
  void applyToRows(const QVector<int>& rows, const std::optional<QString>& format,
                   const std::optional<QString>& method);
  void replaceConfigs(const std::vector<LayerConfig>& configs, const QString& preset, const QString& text);

  // What the source holds.
  const std::vector<LayerConfig>& configs() const;
  QString preset() const;
  Plan plan() const;
  State state(int row) const;
  const LayerQuantError& measurement(int row) const;
  QString failure(int row) const;
  double planBytes(int row) const;  // at the measured bits/weight; as stored when not measured
  QString layerName(int row) const { return rows_[static_cast<std::size_t>(row)].name; }
  std::size_t weightTensor(int row) const { return rows_[static_cast<std::size_t>(row)].tensor; }
  QString roleName(int row) const { return rows_[static_cast<std::size_t>(row)].role; }
  bool allSettled() const;  // no row waits for figures
  // Calibration data is loaded (the methods that need it are measured, not only offered).
  void setCalibrated(bool on) { calibrated_ = on; }
  bool calibrated() const { return calibrated_; }
  PlanTotals totals() const;

 signals:
  // Rows whose config changed (by an edit, an undo, a preset...; the source measures them).
  void configsChanged(const QVector<int>& rows);
  void totalsChanged();

 private:
  void rebuildRows();
  const LayerConfig& config(int row) const;

  bool calibrated_ = false;
  QPointer<PlanSource> source_;  // the app's document (destroyed before the editor)
  struct Row {  // what the row shows of the model
    QString name, shortName, role;
    int block = -1;
    std::size_t tensor = 0;
    std::int64_t rows = 0, cols = 0;
    double weights = 0, storedBytes = 0;
  };
  std::vector<Row> rows_;
  double modelBytes_ = 0, modelWeights_ = 0;
};

// Filters the table by role and by a substring (or regular expression) of the layer name.
class PlanFilterModel : public QSortFilterProxyModel {
  Q_OBJECT
 public:
  using QSortFilterProxyModel::QSortFilterProxyModel;
  void setRole(const QString& role);      // empty: all
  void setNameFilter(const QString& text);

 protected:
  bool filterAcceptsRow(int sourceRow, const QModelIndex& sourceParent) const override;

 private:
  QString role_, name_;
};

class PlanEditor : public QWidget {
  Q_OBJECT
 public:
  explicit PlanEditor(QWidget* parent = nullptr);

  PlanTableModel* tableModel() const { return model_; }
  PlanFilterModel* filterModel() const { return filter_; }
  QTableView* tableView() const { return view_; }
  QComboBox* presetCombo() const { return presets_; }
  // The selected row's before/after and error histograms (the app fills it).
  QuantErrorView* errorView() const { return errorView_; }

  // The plan shown and edited (the app's document).
  void setSource(PlanSource* source);
  void setPresetNames(const QStringList& names);
  void setRoleFilter(const QString& role);
  void setNameFilter(const QString& text);
  // Source rows selected in the table (model order).
  QVector<int> selectedRows() const;
  void selectRows(const QVector<int>& rows);
  // The format/method chosen in the "apply to selection" bar, applied to the selection (one undo step).
  void applyToSelection(const std::optional<QString>& format, const std::optional<QString>& method);
  // Progress of the background fill (done of total), or hidden when total is 0.
  void setProgress(int done, int total);
  QString totalsText() const;
  // Calibration data loaded: the output-error column shows, the totals add its sum and worst.
  void setOutputErrorAvailable(bool on);
  bool outputErrorAvailable() const { return outputErrorOn_; }

 signals:
  void presetRequested(const QString& name);
  void allocateRequested();
  // The current row changed: the app overlays its grid on the histogram.
  void layerSelected(int row);
  // A row was double-clicked outside its Format/Method cells: show its histogram.
  void layerActivated(int row);

 private:
  void updateTotals();

  PlanTableModel* model_;
  PlanFilterModel* filter_;
  QTableView* view_;
  QLineEdit* nameFilter_;
  QComboBox* roleFilter_;
  QComboBox* presets_;
  QComboBox* applyFormat_;
  QComboBox* applyMethod_;
  QPushButton* applyButton_;
  QPushButton* allocateButton_;
  QLabel* totals_;
  QProgressBar* progress_;
  QuantErrorView* errorView_;
  bool outputErrorOn_ = false;
};

}  // namespace qs::ui
