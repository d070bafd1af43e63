#pragma once
// Export of a plot: its image (PNG, SVG, PDF) and its underlying table (CSV),
// as bytes and text. Widgets never write files: the app takes these bytes and
// writes them (atomically) or puts them on the clipboard.
//
// Every plot view implements ExportablePlot and offers the same context menu
// (installExportMenu); the menu only asks, through a callback, for an
// ExportAction, which the app carries out.
#include <QByteArray>
#include <QSize>
#include <QString>
#include <functional>
#include <optional>

class QCustomPlot;
class QImage;
class QMenu;

namespace qs::ui {

enum class PlotFormat { Png, Svg, Pdf };
enum class ExportAction { SaveImage, CopyImage, SaveCsv, CopyCsv };

// "png" / "svg" / "pdf" (any case, with or without the dot); nullopt otherwise.
std::optional<PlotFormat> plotFormatForSuffix(const QString& suffix);
QString plotFormatSuffix(PlotFormat format);

// The plot drawn at `size` (the widget's size when empty) in `format`: PNG
// bytes, an SVG document or a one-page PDF. Empty on failure.
QByteArray renderPlot(QCustomPlot* plot, PlotFormat format, QSize size = {});
QImage renderImage(QCustomPlot* plot, QSize size = {});

// CSV helpers (RFC 4180): a field quoted when it needs to be, numbers with
// enough digits to read back the same double (float values: 9 digits).
QString csvField(const QString& text);
QString csvNumber(double v);
QString csvFloat(float v);

class ExportablePlot {
 public:
  virtual ~ExportablePlot() = default;
  virtual bool hasPlot() const = 0;
  virtual QString plotTitle() const = 0;  // what is shown, also the suggested file name
  virtual QString toCsv() const = 0;      // the plotted table, header first; empty without a plot
  virtual QCustomPlot* customPlot() const = 0;
};

// Adds "Save plot as… / Copy image / Export data as CSV… / Copy data as CSV"
// as the right-click menu of `plot`; `onAction` runs when one is chosen.
// `extend`, when given, adds the view's own entries below them.
void installExportMenu(QCustomPlot* plot, std::function<void(ExportAction)> onAction,
                       std::function<void(QMenu*)> extend = {});

}  // namespace qs::ui
