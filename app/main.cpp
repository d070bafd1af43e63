// quantscope: the desktop application. Parses the command line, picks the
// compute backend, opens the first model and, with --screenshot, saves an
// image of the window once the first histogram is on screen (docs, Xvfb checks).
#include <QApplication>
#include <QCommandLineParser>
#include <QIcon>
#include <QTabWidget>
#include <QTimer>
#include <cstdio>
#include <memory>

#include "app/document.h"
#include "app/main_window.h"
#include "app/register_backends.h"
#include "backend/registry.h"
#include "widgets/heatmap_plot.h"
#include "widgets/plan_table.h"

namespace {

// Grabs the window and quits once the first statistics and the model overview
// are both shown (and the heatmap, when that view is the one on screen); fails
// the run (exit 1) when the model or any of them does not come.
void arrangeScreenshot(qs::app::MainWindow& window, const QString& file, bool heatmap, bool plan) {
  auto fail = [](const QString& message) {
    std::fprintf(stderr, "quantscope: %s\n", qPrintable(message));
    QCoreApplication::exit(1);
  };
  QObject::connect(window.document(), &qs::app::Document::openFailed, &window,
                   [fail](const QString&, const QString& message) { fail(message); });
  QObject::connect(window.document(), &qs::app::Document::statsFailed, &window,
                   [fail](int, const QString& message) { fail(message); });
  QObject::connect(window.document(), &qs::app::Document::overviewFailed, &window,
                   [fail](const QString& message) { fail(message); });
  QObject::connect(window.document(), &qs::app::Document::heatmapFailed, &window,
                   [fail](int, const QString& message) { fail(message); });
  // The first statistics, the overview[, the heatmap][, every plan row measured].
  auto pending = std::make_shared<int>(2 + (heatmap ? 1 : 0) + (plan ? 1 : 0));
  auto oneDone = [&window, file, pending] {
    if (--*pending != 0) return;
    // Let layouts settle and the plots repaint before grabbing.
    QTimer::singleShot(400, &window, [&window, file] {
      const bool saved = window.grab().save(file, "PNG");
      if (!saved) std::fprintf(stderr, "quantscope: could not write %s\n", qPrintable(file));
      else std::printf("quantscope: saved %s\n", qPrintable(file));
      QCoreApplication::exit(saved ? 0 : 1);
    });
  };
  QObject::connect(&window, &qs::app::MainWindow::statsShown, &window, oneDone, Qt::SingleShotConnection);
  QObject::connect(window.document(), &qs::app::Document::overviewReady, &window, oneDone,
                   Qt::SingleShotConnection);
  if (heatmap) QObject::connect(&window, &qs::app::MainWindow::heatmapShown, &window, oneDone, Qt::SingleShotConnection);
  if (plan) QObject::connect(&window, &qs::app::MainWindow::planMeasured, &window, oneDone, Qt::SingleShotConnection);
}

}  // namespace

int main(int argc, char** argv) {
  QApplication app(argc, argv);
  QApplication::setOrganizationName(QStringLiteral("QuantScope"));
  QApplication::setApplicationName(QStringLiteral("QuantScope"));
  QApplication::setApplicationVersion(QStringLiteral(QS_VERSION));
  QApplication::setWindowIcon(QIcon(QStringLiteral(":/icons/quantscope.svg")));

  QCommandLineParser cli;
  cli.setApplicationDescription(QStringLiteral("Inspect and quantize neural-network checkpoints."));
  cli.addHelpOption();
  cli.addVersionOption();
  cli.addPositionalArgument(QStringLiteral("path"),
                            QStringLiteral("Model to open: a .safetensors file, an index.json, a .gguf, a Keras .h5, "
                                           "or a Hugging Face directory. Default: the built-in demo model."),
                            QStringLiteral("[path]"));
  const QCommandLineOption demo(QStringLiteral("demo"), QStringLiteral("Open the built-in demo model."));
  const QCommandLineOption noDemo(QStringLiteral("no-demo"), QStringLiteral("Start with no model open."));
  const QCommandLineOption backend(QStringLiteral("backend"), QStringLiteral("Compute backend: auto, cpu or cuda."),
                                   QStringLiteral("name"), QStringLiteral("auto"));
  const QCommandLineOption select(QStringLiteral("select"), QStringLiteral("Select this tensor (full name) at start."),
                                  QStringLiteral("name"));
  const QCommandLineOption screenshot(QStringLiteral("screenshot"),
                                      QStringLiteral("Save the window as a PNG once the first histogram is shown, "
                                                     "then quit."),
                                      QStringLiteral("file.png"));
  const QCommandLineOption view(QStringLiteral("view"),
                                QStringLiteral("View to show at start: histogram, channels, overview, heatmap or plan."),
                                QStringLiteral("name"), QStringLiteral("histogram"));
  cli.addOptions({demo, noDemo, backend, select, view, screenshot});
  cli.process(app);

  qs::register_optional_backends();
  auto chosen = qs::make_backend(cli.value(backend).toStdString());
  if (!chosen) {
    std::fprintf(stderr, "quantscope: %s\n", chosen.error().message.c_str());
    return 2;
  }

  qs::app::MainWindow window(*chosen);
  const bool screenshotMode = cli.isSet(screenshot);
  // A screenshot run is unattended: errors go to stderr, not to a modal dialog.
  window.setInteractiveErrors(!screenshotMode);
  if (cli.isSet(select)) window.setPendingSelection(cli.value(select));
  if (!window.showTab(cli.value(view))) {
    std::fprintf(stderr, "quantscope: no view called '%s' (histogram, channels, overview, heatmap, plan)\n",
                 qPrintable(cli.value(view)));
    return 2;
  }
  if (screenshotMode)
    arrangeScreenshot(window, cli.value(screenshot), window.viewTabs()->currentWidget() == window.heatmapPlot(),
                      window.viewTabs()->currentWidget() == window.planEditor());

  const QStringList paths = cli.positionalArguments();
  if (paths.size() > 1) {
    std::fprintf(stderr, "quantscope: give at most one model path\n");
    return 2;
  }
  if (!paths.isEmpty()) window.openPath(paths.front());
  else if (cli.isSet(demo) || !cli.isSet(noDemo)) window.openDemo();

  window.show();
  return QApplication::exec();
}
