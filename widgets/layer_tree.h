#pragma once
// LayerTree: the model's tensors grouped by block (see tensor_grouping.h), with
// role, shape, dtype and parameter count, and a name filter. Selecting a row
// emits tensorSelected(index into Model::tensors); the app decides what to do.
// A row's context menu offers to compare the current histogram with that tensor.
#include <QWidget>
#include <vector>

class QLineEdit;
class QSortFilterProxyModel;
class QStandardItem;
class QStandardItemModel;
class QTreeView;
class QModelIndex;

namespace qs {
struct Model;
}

namespace qs::ui {

class LayerTree : public QWidget {
  Q_OBJECT
 public:
  enum Column { NameColumn, RoleColumn, ShapeColumn, DTypeColumn, ParamsColumn, ColumnCount };
  // Item data roles on the name column.
  static constexpr int TensorIndexRole = Qt::UserRole + 1;  // int, -1 on group rows
  static constexpr int FilterTextRole = Qt::UserRole + 2;   // full tensor name

  explicit LayerTree(QWidget* parent = nullptr);

  // Rebuilds the tree from `model` (copied into items: the tree keeps no pointer).
  void setModel(const Model& model);
  void clear();

  // Selects (and scrolls to) a tensor; clears the filter if it hides the row.
  // Emits tensorSelected like a click does. Returns false for an unknown index.
  bool selectTensor(int tensorIndex);
  int currentTensor() const { return current_; }

  // For tests and the app: what is shown.
  int tensorRowCount() const { return static_cast<int>(itemOfTensor_.size()); }
  QStringList groupTitles() const;
  QTreeView* view() const { return view_; }
  QStandardItemModel* itemModel() const { return model_; }
  QLineEdit* filterEdit() const { return filter_; }

 signals:
  void tensorSelected(int tensorIndex);
  // "Compare histogram with this tensor" from a row's context menu.
  void compareRequested(int tensorIndex);

 private:
  void onCurrentChanged(const QModelIndex& proxyIndex);
  void applyFilter(const QString& text);
  void showContextMenu(const QPoint& pos);

  QLineEdit* filter_;
  QTreeView* view_;
  QStandardItemModel* model_;
  QSortFilterProxyModel* proxy_;
  std::vector<QStandardItem*> itemOfTensor_;  // name-column item per tensor index
  int current_ = -1;
};

}  // namespace qs::ui
