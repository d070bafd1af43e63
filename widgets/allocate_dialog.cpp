#include "widgets/allocate_dialog.h"

#include <QDialogButtonBox>
#include <QDoubleSpinBox>
#include <QFormLayout>
#include <QHBoxLayout>
#include <QLabel>
#include <QListWidget>
#include <QPushButton>
#include <QVBoxLayout>
#include <qcustomplot.h>

namespace qs::ui {

AllocateDialog::AllocateDialog(QWidget* parent)
    : QDialog(parent),
      target_(new QDoubleSpinBox(this)),
      formats_(new QListWidget(this)),
      run_(new QPushButton(tr("Allocate"), this)),
      apply_(new QPushButton(tr("Apply to Plan"), this)),
      status_(new QLabel(this)),
      plot_(new QCustomPlot(this)) {
  setWindowTitle(tr("Allocate to a Budget"));
  target_->setRange(1.0, 16.0);
  target_->setDecimals(2);
  target_->setSingleStep(0.25);
  target_->setValue(5.0);
  target_->setSuffix(tr(" bits/weight"));
  formats_->setMaximumWidth(170);
  formats_->setToolTip(tr("Candidate formats: each layer gets one of these"));
  status_->setWordWrap(true);
  target_->setObjectName(QStringLiteral("allocateTarget"));
  formats_->setObjectName(QStringLiteral("allocateCandidates"));
  run_->setObjectName(QStringLiteral("allocateRun"));
  apply_->setObjectName(QStringLiteral("allocateApply"));
  status_->setObjectName(QStringLiteral("allocateStatus"));
  apply_->setEnabled(false);
  run_->setDefault(true);

  plot_->setMinimumSize(460, 300);
  plot_->xAxis->setLabel(tr("average bits/weight"));
  plot_->yAxis->setLabel(tr("summed squared weight error"));
  plot_->yAxis->setScaleType(QCPAxis::stLogarithmic);
  plot_->yAxis->setTicker(QSharedPointer<QCPAxisTickerLog>(new QCPAxisTickerLog));
  plot_->addGraph();
  plot_->graph(0)->setName(tr("Pareto front"));
  plot_->graph(0)->setPen(QPen(QColor(0x1f, 0x77, 0xb4), 1.5));
  plot_->graph(0)->setScatterStyle(QCPScatterStyle(QCPScatterStyle::ssCircle, 4));
  plot_->addGraph();
  plot_->graph(1)->setName(tr("chosen"));
  plot_->graph(1)->setLineStyle(QCPGraph::lsNone);
  plot_->graph(1)->setScatterStyle(QCPScatterStyle(QCPScatterStyle::ssDisc, QColor(0xd6, 0x27, 0x28), 10));
  plot_->legend->setVisible(true);

  auto* form = new QFormLayout;
  form->addRow(tr("Target:"), target_);
  auto* left = new QVBoxLayout;
  left->addLayout(form);
  left->addWidget(new QLabel(tr("Candidates:"), this));
  left->addWidget(formats_, 1);
  left->addWidget(run_);
  auto* right = new QVBoxLayout;
  right->addWidget(plot_, 1);
  right->addWidget(status_);
  auto* body = new QHBoxLayout;
  body->addLayout(left);
  body->addLayout(right, 1);
  auto* buttons = new QDialogButtonBox(QDialogButtonBox::Close, this);
  buttons->addButton(apply_, QDialogButtonBox::AcceptRole);
  auto* layout = new QVBoxLayout(this);
  layout->addLayout(body, 1);
  layout->addWidget(buttons);

  connect(run_, &QPushButton::clicked, this, [this] { emit runRequested(target(), candidates()); });
  connect(apply_, &QPushButton::clicked, this, &AllocateDialog::applyRequested);
  connect(buttons, &QDialogButtonBox::rejected, this, &QDialog::reject);
  connect(target_, &QDoubleSpinBox::valueChanged, this, [this] { apply_->setEnabled(false); });
}

void AllocateDialog::setCandidates(const QStringList& all, const QStringList& checked) {
  formats_->clear();
  for (const QString& f : all) {
    auto* item = new QListWidgetItem(f, formats_);
    item->setFlags(item->flags() | Qt::ItemIsUserCheckable);
    item->setCheckState(checked.contains(f) ? Qt::Checked : Qt::Unchecked);
  }
}

QStringList AllocateDialog::candidates() const {
  QStringList out;
  for (int i = 0; i < formats_->count(); ++i)
    if (formats_->item(i)->checkState() == Qt::Checked) out << formats_->item(i)->text();
  return out;
}

double AllocateDialog::target() const { return target_->value(); }
void AllocateDialog::setTarget(double bits) { target_->setValue(bits); }

void AllocateDialog::showBusy(const QString& message) {
  status_->setText(message);
  run_->setEnabled(false);
  apply_->setEnabled(false);
}

void AllocateDialog::showError(const QString& message) {
  status_->setText(QStringLiteral("<span style='color:#c62828'>%1</span>").arg(message.toHtmlEscaped()));
  run_->setEnabled(true);
  apply_->setEnabled(false);
  hasResult_ = false;
}

void AllocateDialog::setResult(const QVector<double>& bits, const QVector<double>& error, double chosenBits,
                               double chosenError, const QString& summary) {
  plot_->graph(0)->setData(bits, error);
  plot_->graph(1)->setData({chosenBits}, {chosenError});
  plot_->rescaleAxes();
  plot_->xAxis->scaleRange(1.08);
  plot_->yAxis->scaleRange(1.3);
  plot_->replot();
  status_->setText(summary);
  run_->setEnabled(true);
  apply_->setEnabled(true);
  hasResult_ = true;
}

void AllocateDialog::setErrorLabel(const QString& label) {
  plot_->yAxis->setLabel(label);
  plot_->replot();
}

QString AllocateDialog::errorLabel() const { return plot_->yAxis->label(); }

}  // namespace qs::ui
