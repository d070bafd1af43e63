// quantscope: the desktop application. Parses the command line, picks the
// compute backend, opens the first model and, with --screenshot, saves an
// image of the window once the first histogram is on screen (docs, Xvfb checks).
#include <QApplication>
#include <QCheckBox>
#include <QCommandLineParser>
#include <QIcon>
#include <QComboBox>
#include <QPushButton>
#include <QTabWidget>
#include <QTemporaryDir>
#include <QTimer>
#include <algorithm>
#include <cstdio>
#include <memory>

#include "app/document.h"
#include "app/main_window.h"
#include "app/register_backends.h"
#include "util/temp_registry.h"
#include "calib/device.h"
#include "widgets/export_dialog.h"
#include "widgets/heatmap_plot.h"
#include "widgets/plan_table.h"

namespace {

bool saveGrab(QWidget& w, const QString& file) {
  const bool saved = w.grab().save(file, "PNG");
  if (!saved) std::fprintf(stderr, "quantscope: could not write %s\n", qPrintable(file));
  else std::printf("quantscope: saved %s\n", qPrintable(file));
  return saved;
}

// --dialog: the export dialog as it opens ("export"), with GPTQ selected
// ("export-gptq": once the model's calibration file, if any, has loaded, GPTQ
// with act-order ticked when it offers them), or after an HDF5 export of the
// plan into a temporary directory has finished ("export-result").
void screenshotExportDialog(qs::app::MainWindow& window, const QString& file, const QString& mode) {
  const bool result = mode == QLatin1String("export-result");
  if (mode == QLatin1String("export-gptq") && window.document()->isLoadingCalibration()) {
    QTimer::singleShot(100, &window, [&window, file, mode] { screenshotExportDialog(window, file, mode); });
    return;
  }
  window.openExportDialog();
  qs::ui::ExportDialog* dialog = window.exportDialog();
  if (mode == QLatin1String("export-gptq")) {
    dialog->formatCombo()->setCurrentIndex(static_cast<int>(qs::ui::ExportFormat::Gptq));
    if (dialog->gptqCalibrateBox()->isEnabled()) {
      dialog->gptqCalibrateBox()->setChecked(true);
      dialog->gptqActOrderBox()->setChecked(true);
    }
  }
  if (!result) {
    QTimer::singleShot(400, dialog, [dialog, file] { QCoreApplication::exit(saveGrab(*dialog, file) ? 0 : 1); });
    return;
  }
  auto dir = std::make_shared<QTemporaryDir>();
  dialog->formatCombo()->setCurrentIndex(static_cast<int>(qs::ui::ExportFormat::Hdf5));
  dialog->setDestination(dir->filePath(QStringLiteral("demo-quantized.h5")));
  dialog->resize(std::max(dialog->width(), 800), 680);
  QObject::connect(window.document(), &qs::app::Document::exportFinished, dialog,
                   [dialog, file, dir](const qs::app::ExportOutcome& outcome) {
                     if (!outcome.result) {
                       std::fprintf(stderr, "quantscope: export failed: %s\n", qPrintable(outcome.error));
                       QCoreApplication::exit(1);
                       return;
                     }
                     QTimer::singleShot(400, dialog, [dialog, file, dir] {
                       QCoreApplication::exit(saveGrab(*dialog, file) ? 0 : 1);
                     });
                   });
  dialog->exportButton()->click();
}

// Grabs the window and quits once the first statistics and the model overview
// are both shown (and the heatmap, when that view is the one on screen); fails
// the run (exit 1) when the model or any of them does not come. With `dialog`,
// the plan is awaited too and that dialog is grabbed instead.
void arrangeScreenshot(qs::app::MainWindow& window, const QString& file, bool heatmap, bool plan, const QString& dialog) {
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
  plan = plan || !dialog.isEmpty();  // the dialog's estimate comes from the measured plan
  auto pending = std::make_shared<int>(2 + (heatmap ? 1 : 0) + (plan ? 1 : 0));
  auto oneDone = [&window, file, pending, dialog] {
    if (--*pending != 0) return;
    if (!dialog.isEmpty()) {
      screenshotExportDialog(window, file, dialog);
      return;
    }
    // Let layouts settle and the plots repaint before grabbing.
    QTimer::singleShot(400, &window, [&window, file] { QCoreApplication::exit(saveGrab(window, file) ? 0 : 1); });
  };
  QObject::connect(&window, &qs::app::MainWindow::statsShown, &window, oneDone, Qt::SingleShotConnection);
  QObject::connect(window.document(), &qs::app::Document::overviewReady, &window, oneDone,
                   Qt::SingleShotConnection);
  if (heatmap) QObject::connect(&window, &qs::app::MainWindow::heatmapShown, &window, oneDone, Qt::SingleShotConnection);
  if (plan && dialog.isEmpty()) {
    // The plan tab: once measured, select the row of the layer on show (--select) so that
    // its before/after view is in the picture, and wait for that too.
    QObject::connect(&window, &qs::app::MainWindow::planMeasured, &window, [&window, oneDone] {
      const auto model = window.document()->model();
      int row = -1;
      for (std::size_t i = 0; model && i < model->layers.size(); ++i)
        if (static_cast<int>(model->layers[i].weight) == window.currentTensor()) row = static_cast<int>(i);
      if (row < 0) return oneDone();
      QObject::connect(window.document(), &qs::app::Document::errorHistogramsReady, &window, oneDone,
                       Qt::SingleShotConnection);
      QObject::connect(window.document(), &qs::app::Document::errorHistogramsFailed, &window, oneDone,
                       Qt::SingleShotConnection);
      window.planEditor()->selectRows({row});
    }, Qt::SingleShotConnection);
  } else if (plan) {
    QObject::connect(&window, &qs::app::MainWindow::planMeasured, &window, oneDone, Qt::SingleShotConnection);
  }
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
  const QCommandLineOption dialog(QStringLiteral("dialog"),
                                  QStringLiteral("With --screenshot: grab this dialog instead of the window: export "
                                                 "(File > Export...), export-gptq (with GPTQ selected) or export-result "
                                                 "(after an HDF5 export of the plan into a temporary directory)."),
                                  QStringLiteral("name"));
  cli.addOptions({demo, noDemo, backend, select, view, screenshot, dialog});
  cli.process(app);

  qs::register_optional_backends();
  qs::install_temp_cleanup();  // a SIGTERM/SIGINT/SIGHUP mid-write leaves no temporary behind
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
  const QString dialogName = cli.value(dialog);
  if (!dialogName.isEmpty() && dialogName != QLatin1String("export") && dialogName != QLatin1String("export-gptq") &&
      dialogName != QLatin1String("export-result")) {
    std::fprintf(stderr, "quantscope: no dialog called '%s' (export, export-gptq, export-result)\n", qPrintable(dialogName));
    return 2;
  }
  if (screenshotMode)
    arrangeScreenshot(window, cli.value(screenshot), window.viewTabs()->currentWidget() == window.heatmapPlot(),
                      window.viewTabs()->currentWidget() == window.planEditor(), dialogName);

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
