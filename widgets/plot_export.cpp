#include "widgets/plot_export.h"

#include <QBuffer>
#include <QImage>
#include <QMenu>
#include <QPageSize>
#include <QPdfWriter>
#include <QSvgGenerator>
#include <cmath>
#include <qcustomplot.h>

namespace qs::ui {

std::optional<PlotFormat> plotFormatForSuffix(const QString& suffix) {
  QString s = suffix.trimmed().toLower();
  if (s.startsWith(QLatin1Char('.'))) s.remove(0, 1);
  if (s == QLatin1String("png")) return PlotFormat::Png;
  if (s == QLatin1String("svg")) return PlotFormat::Svg;
  if (s == QLatin1String("pdf")) return PlotFormat::Pdf;
  return std::nullopt;
}

QString plotFormatSuffix(PlotFormat format) {
  switch (format) {
    case PlotFormat::Png: return QStringLiteral("png");
    case PlotFormat::Svg: return QStringLiteral("svg");
    case PlotFormat::Pdf: return QStringLiteral("pdf");
  }
  return {};
}

namespace {

QSize sizeFor(QCustomPlot* plot, QSize size) {
  if (size.isValid() && !size.isEmpty()) return size;
  const QSize own = plot->size();
  return own.isEmpty() ? QSize(1200, 700) : own;  // a plot never shown has no size yet
}

}  // namespace

QImage renderImage(QCustomPlot* plot, QSize size) {
  if (!plot) return {};
  const QSize s = sizeFor(plot, size);
  return plot->toPixmap(s.width(), s.height()).toImage();
}

QByteArray renderPlot(QCustomPlot* plot, PlotFormat format, QSize size) {
  if (!plot) return {};
  const QSize s = sizeFor(plot, size);
  QByteArray bytes;
  QBuffer buffer(&bytes);
  buffer.open(QIODevice::WriteOnly);
  switch (format) {
    case PlotFormat::Png: {
      if (!renderImage(plot, s).save(&buffer, "PNG")) return {};
      break;
    }
    case PlotFormat::Svg: {
      QSvgGenerator svg;
      svg.setOutputDevice(&buffer);
      svg.setSize(s);
      svg.setViewBox(QRect(QPoint(0, 0), s));
      svg.setResolution(96);  // the size is written in mm: at CSS's 96 dpi a browser shows it at pixel size
      svg.setTitle(QStringLiteral("QuantScope plot"));
      QCPPainter painter;
      if (!painter.begin(&svg)) return {};
      painter.setMode(QCPPainter::pmVectorized);
      plot->toPainter(&painter, s.width(), s.height());
      painter.end();
      break;
    }
    case PlotFormat::Pdf: {
      QPdfWriter pdf(&buffer);
      pdf.setCreator(QStringLiteral("QuantScope"));
      pdf.setPageSize(QPageSize(QSizeF(s), QPageSize::Point, QString(), QPageSize::ExactMatch));
      pdf.setPageMargins(QMarginsF(0, 0, 0, 0));
      QCPPainter painter;
      if (!painter.begin(&pdf)) return {};
      painter.setMode(QCPPainter::pmVectorized);
      painter.setWindow(QRect(QPoint(0, 0), s));  // plot pixels onto the whole page
      plot->toPainter(&painter, s.width(), s.height());
      painter.end();
      break;
    }
  }
  buffer.close();
  return bytes;
}

QString csvField(const QString& text) {
  if (!text.contains(QLatin1Char(',')) && !text.contains(QLatin1Char('"')) && !text.contains(QLatin1Char('\n')) &&
      !text.contains(QLatin1Char('\r')))
    return text;
  QString quoted = text;
  quoted.replace(QLatin1String("\""), QLatin1String("\"\""));
  return QLatin1Char('"') + quoted + QLatin1Char('"');
}

QString csvNumber(double v) {
  if (std::isnan(v)) return QStringLiteral("nan");
  if (std::isinf(v)) return v > 0 ? QStringLiteral("inf") : QStringLiteral("-inf");
  return QString::number(v, 'g', 17);
}

QString csvFloat(float v) {
  if (!std::isfinite(v)) return csvNumber(static_cast<double>(v));
  return QString::number(static_cast<double>(v), 'g', 9);
}

void installExportMenu(QCustomPlot* plot, std::function<void(ExportAction)> onAction,
                       std::function<void(QMenu*)> extend) {
  plot->setContextMenuPolicy(Qt::CustomContextMenu);
  QObject::connect(plot, &QWidget::customContextMenuRequested, plot,
                   [plot, onAction = std::move(onAction), extend = std::move(extend)](const QPoint& pos) {
                     auto* menu = new QMenu(plot);
                     menu->setAttribute(Qt::WA_DeleteOnClose);
                     menu->addAction(QObject::tr("Save plot as…"), plot, [onAction] { onAction(ExportAction::SaveImage); });
                     menu->addAction(QObject::tr("Copy image"), plot, [onAction] { onAction(ExportAction::CopyImage); });
                     menu->addSeparator();
                     menu->addAction(QObject::tr("Export data as CSV…"), plot, [onAction] { onAction(ExportAction::SaveCsv); });
                     menu->addAction(QObject::tr("Copy data as CSV"), plot, [onAction] { onAction(ExportAction::CopyCsv); });
                     if (extend) {
                       menu->addSeparator();
                       extend(menu);
                     }
                     menu->popup(plot->mapToGlobal(pos));
                   });
}

}  // namespace qs::ui
