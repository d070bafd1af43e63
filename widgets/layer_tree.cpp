#include "widgets/layer_tree.h"

#include <QHeaderView>
#include <QLineEdit>
#include <QMenu>
#include <QSortFilterProxyModel>
#include <QStandardItemModel>
#include <QTreeView>
#include <QVBoxLayout>

#include "model/model.h"
#include "widgets/display_format.h"
#include "widgets/tensor_grouping.h"

namespace qs::ui {

namespace {

QList<QStandardItem*> makeRow(const QString& name, const QString& role, const QString& shape, const QString& dtype,
                              const QString& params) {
  QList<QStandardItem*> row;
  for (const QString& text : {name, role, shape, dtype, params}) {
    auto* item = new QStandardItem(text);
    item->setEditable(false);
    row << item;
  }
  // Numbers line up on the right, like in a spreadsheet.
  row[LayerTree::ParamsColumn]->setTextAlignment(Qt::AlignRight | Qt::AlignVCenter);
  return row;
}

}  // namespace

LayerTree::LayerTree(QWidget* parent)
    : QWidget(parent),
      filter_(new QLineEdit(this)),
      view_(new QTreeView(this)),
      model_(new QStandardItemModel(this)),
      proxy_(new QSortFilterProxyModel(this)) {
  filter_->setPlaceholderText(tr("Filter tensors by name…"));
  filter_->setClearButtonEnabled(true);

  model_->setHorizontalHeaderLabels({tr("Name"), tr("Role"), tr("Shape"), tr("DType"), tr("Params")});
  // Filter on the full tensor name; a group stays visible while one of its tensors matches.
  proxy_->setSourceModel(model_);
  proxy_->setFilterRole(FilterTextRole);
  proxy_->setFilterKeyColumn(NameColumn);
  proxy_->setFilterCaseSensitivity(Qt::CaseInsensitive);
  proxy_->setRecursiveFilteringEnabled(true);

  view_->setModel(proxy_);
  view_->setUniformRowHeights(true);
  view_->setAlternatingRowColors(true);
  // Long names lose their middle, not the ".weight"/".bias" that tells them apart.
  view_->setTextElideMode(Qt::ElideMiddle);
  view_->setIndentation(14);  // two levels only: the default indent wastes name width
  view_->setSelectionMode(QAbstractItemView::SingleSelection);
  view_->setSelectionBehavior(QAbstractItemView::SelectRows);
  view_->header()->setStretchLastSection(false);
  view_->header()->setSectionResizeMode(NameColumn, QHeaderView::Stretch);
  for (int c = RoleColumn; c < ColumnCount; ++c) view_->header()->setSectionResizeMode(c, QHeaderView::ResizeToContents);

  auto* layout = new QVBoxLayout(this);
  layout->setContentsMargins(0, 0, 0, 0);
  layout->setSpacing(4);
  layout->addWidget(filter_);
  layout->addWidget(view_);

  connect(filter_, &QLineEdit::textChanged, this, &LayerTree::applyFilter);
  connect(view_->selectionModel(), &QItemSelectionModel::currentRowChanged, this,
          [this](const QModelIndex& current, const QModelIndex&) { onCurrentChanged(current); });
  view_->setContextMenuPolicy(Qt::CustomContextMenu);
  connect(view_, &QWidget::customContextMenuRequested, this, &LayerTree::showContextMenu);
}

void LayerTree::showContextMenu(const QPoint& pos) {
  const QModelIndex proxyIndex = view_->indexAt(pos);
  if (!proxyIndex.isValid()) return;
  const QModelIndex source = proxy_->mapToSource(proxyIndex.siblingAtColumn(NameColumn));
  const int tensor = model_->data(source, TensorIndexRole).toInt();
  if (tensor < 0) return;  // a group row
  auto* menu = new QMenu(view_);
  menu->setAttribute(Qt::WA_DeleteOnClose);
  QAction* compare = menu->addAction(tr("Compare histogram with this tensor"), this,
                                     [this, tensor] { emit compareRequested(tensor); });
  compare->setEnabled(tensor != current_);
  menu->popup(view_->viewport()->mapToGlobal(pos));
}

void LayerTree::clear() {
  model_->removeRows(0, model_->rowCount());
  itemOfTensor_.clear();
  current_ = -1;
}

void LayerTree::setModel(const Model& model) {
  clear();
  itemOfTensor_.assign(model.tensors.size(), nullptr);
  for (const TensorGroup& group : groupTensors(model)) {
    // A model without blocks is a flat list: tensors at the top level.
    QStandardItem* parent = model_->invisibleRootItem();
    if (!group.title.isEmpty()) {
      std::uint64_t params = 0;
      for (const TensorRow& r : group.rows) params += model.tensors[r.tensor].numel();
      QList<QStandardItem*> row = makeRow(group.title, {}, {}, {}, humanCount(params));
      row[NameColumn]->setData(-1, TensorIndexRole);
      QFont bold = row[NameColumn]->font();
      bold.setBold(true);
      row[NameColumn]->setFont(bold);
      parent->appendRow(row);
      parent = row[NameColumn];
    }
    for (const TensorRow& r : group.rows) {
      const TensorInfo& t = model.tensors[r.tensor];
      const QString fullName = QString::fromStdString(t.name);
      QList<QStandardItem*> row =
          makeRow(r.shortName, r.role, shapeText(t.shape), fromStd(dtype_name(t.dtype)), humanCount(t.numel()));
      row[NameColumn]->setData(static_cast<int>(r.tensor), TensorIndexRole);
      row[NameColumn]->setData(fullName, FilterTextRole);
      row[NameColumn]->setToolTip(fullName);
      row[ParamsColumn]->setToolTip(QString::number(t.numel()));
      parent->appendRow(row);
      itemOfTensor_[r.tensor] = row[NameColumn];
    }
  }
  // Blocks start collapsed except the first, so a large model opens as a short list.
  for (int r = 0; r < proxy_->rowCount(); ++r) view_->setExpanded(proxy_->index(r, 0), r < 2);
}

QStringList LayerTree::groupTitles() const {
  QStringList titles;
  for (int r = 0; r < model_->rowCount(); ++r)
    if (model_->item(r, NameColumn)->data(TensorIndexRole).toInt() < 0) titles << model_->item(r, NameColumn)->text();
  return titles;
}

bool LayerTree::selectTensor(int tensorIndex) {
  if (tensorIndex < 0 || tensorIndex >= tensorRowCount() || !itemOfTensor_[static_cast<std::size_t>(tensorIndex)])
    return false;
  const QModelIndex source = model_->indexFromItem(itemOfTensor_[static_cast<std::size_t>(tensorIndex)]);
  QModelIndex proxyIndex = proxy_->mapFromSource(source);
  if (!proxyIndex.isValid()) {  // hidden by the filter
    filter_->clear();
    proxyIndex = proxy_->mapFromSource(source);
  }
  view_->setCurrentIndex(proxyIndex);
  view_->scrollTo(proxyIndex);
  return true;
}

void LayerTree::onCurrentChanged(const QModelIndex& proxyIndex) {
  const int tensor = proxyIndex.siblingAtColumn(NameColumn).data(TensorIndexRole).toInt();
  if (!proxyIndex.isValid() || tensor < 0 || tensor == current_) return;
  current_ = tensor;
  emit tensorSelected(tensor);
}

void LayerTree::applyFilter(const QString& text) {
  proxy_->setFilterFixedString(text);
  // While filtering, show every match without making the user open each block.
  if (!text.isEmpty()) view_->expandAll();
}

}  // namespace qs::ui
