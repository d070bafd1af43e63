#include "widgets/plot_frame.h"

#include <QLabel>
#include <qcustomplot.h>

namespace qs::ui {

void style_message_label(QLabel* label) {
  label->setAlignment(Qt::AlignCenter);
  label->setWordWrap(true);
  label->setMargin(24);
  QFont big = label->font();
  big.setPointSizeF(big.pointSizeF() * 1.3);
  label->setFont(big);
}

void set_message(QLabel* label, const QString& message, bool error) {
  label->setText(message);
  label->setStyleSheet(error ? QStringLiteral("color: #b00020;") : QStringLiteral("color: #707070;"));
}

QCPTextElement* add_title_and_zoom(QCustomPlot* plot, const QFont& base) {
  plot->setInteractions(QCP::iRangeDrag | QCP::iRangeZoom);
  plot->axisRect()->setRangeZoom(Qt::Horizontal | Qt::Vertical);
  plot->axisRect()->setRangeDrag(Qt::Horizontal | Qt::Vertical);
  plot->plotLayout()->insertRow(0);
  QFont titleFont = base;
  titleFont.setPointSizeF(titleFont.pointSizeF() * 1.15);
  titleFont.setBold(true);
  auto* title = new QCPTextElement(plot, QString(), titleFont);
  plot->plotLayout()->addElement(0, 0, title);
  return title;
}

void mirror_axes(QCustomPlot* plot) {
  plot->xAxis2->setVisible(true);
  plot->yAxis2->setVisible(true);
  plot->xAxis2->setTickLabels(false);
  plot->yAxis2->setTickLabels(false);
  QObject::connect(plot->xAxis, qOverload<const QCPRange&>(&QCPAxis::rangeChanged), plot->xAxis2,
                   qOverload<const QCPRange&>(&QCPAxis::setRange));
  QObject::connect(plot->yAxis, qOverload<const QCPRange&>(&QCPAxis::rangeChanged), plot->yAxis2,
                   qOverload<const QCPRange&>(&QCPAxis::setRange));
}

QCPItemText* add_hover_readout(QCustomPlot* plot) {
  auto* readout = new QCPItemText(plot);
  readout->setClipToAxisRect(true);
  readout->position->setType(QCPItemPosition::ptAxisRectRatio);
  readout->position->setCoords(0.99, 0.02);
  readout->setPositionAlignment(Qt::AlignRight | Qt::AlignTop);
  readout->setTextAlignment(Qt::AlignLeft);
  readout->setPadding(QMargins(6, 4, 6, 4));
  readout->setBrush(QColor(255, 255, 255, 230));
  readout->setPen(QPen(QColor(150, 150, 150)));
  readout->setVisible(false);
  return readout;
}

}  // namespace qs::ui
