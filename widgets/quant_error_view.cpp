#include "widgets/quant_error_view.h"

#include <QHBoxLayout>
#include <QLabel>
#include <QVBoxLayout>
#include <cmath>

#include "widgets/display_format.h"
#include "widgets/histogram_plot.h"

namespace qs::ui {

QuantErrorView::QuantErrorView(QWidget* parent)
    : QWidget(parent), values_(new HistogramPlot(this)), error_(new HistogramPlot(this)), caption_(new QLabel(this)) {
  values_->setObjectName(QStringLiteral("beforeAfterPlot"));
  error_->setObjectName(QStringLiteral("errorPlot"));
  caption_->setObjectName(QStringLiteral("errorCaption"));
  caption_->setTextInteractionFlags(Qt::TextSelectableByMouse);
  auto* plots = new QHBoxLayout;
  plots->setContentsMargins(0, 0, 0, 0);
  plots->addWidget(values_, 3);  // the value plot carries the grid's structure: give it the room
  plots->addWidget(error_, 2);
  auto* layout = new QVBoxLayout(this);
  layout->setContentsMargins(0, 0, 0, 0);
  layout->setSpacing(2);
  layout->addWidget(caption_);
  layout->addLayout(plots, 1);
  setMinimumHeight(220);  // below that the log axes have no room for a shape
  showPlaceholder(tr("Select a row to see its weights before and after quantization"));
}

void QuantErrorView::setResult(const QuantErrorHistograms& h, const QString& layer, const QString& format) {
  layer_ = layer;
  format_ = format;
  values_->setHistogram(h.before, tr("weights before / after %1").arg(format));
  values_->setBarsLegendName(tr("before"));
  values_->setComparison(h.after, tr("after %1").arg(format));
  error_->setHistogram(h.error, tr("error Q(W) − W"));
  const WeightError& e = h.figures;
  const QString sqnr = std::isfinite(e.sqnr_db) ? QStringLiteral("%1 dB").arg(e.sqnr_db, 0, 'f', 2) : tr("exact");
  caption_->setText(tr("<b>%1</b> as %2 — SQNR %3, RMS error %4, max |error| %5")
                        .arg(layer.toHtmlEscaped(), format.toHtmlEscaped(), sqnr, number(std::sqrt(e.mse)),
                             number(e.max_abs)));
}

void QuantErrorView::showPlaceholder(const QString& message) {
  layer_.clear();
  format_.clear();
  caption_->setText(message.toHtmlEscaped());
  values_->showPlaceholder(QString());
  error_->showPlaceholder(QString());
}

void QuantErrorView::showBusy(const QString& message) {
  layer_.clear();  // what is shown is no longer any row's: a reselection asks again
  format_.clear();
  caption_->setText(message.toHtmlEscaped());
  values_->showBusy(tr("Quantizing…"));
  error_->showBusy(QString());
}

void QuantErrorView::showError(const QString& message) {
  layer_.clear();
  format_.clear();
  caption_->setText(message.toHtmlEscaped());
  values_->showError(message);
  error_->showPlaceholder(QString());
}

QString QuantErrorView::caption() const { return caption_->text(); }

}  // namespace qs::ui
