#pragma once
// What the widget suites share: settings kept away from the user's, a demo
// model written once per suite into a temporary folder, and main windows
// opened on it.
#include <QCoreApplication>
#include <QSignalSpy>
#include <QSize>
#include <QStandardPaths>
#include <QTemporaryDir>
#include <memory>
#include <string>

#include "app/document.h"
#include "app/main_window.h"
#include "backend/cpu_backend.h"
#include "demo/demo_model.h"

namespace qs::test {

// Test-mode settings under the suite's own application name, so that suites
// run side by side (ctest -j) keep apart their recent files and plan autosaves.
inline void use_test_settings(const char* suite) {
  QStandardPaths::setTestModeEnabled(true);
  QCoreApplication::setOrganizationName(QStringLiteral("QuantScopeTests"));
  QCoreApplication::setApplicationName(QString::fromLatin1(suite));
}

class DemoModelDir {
 public:
  // Writes the demo model; the reason in `error` when it could not.
  bool write(std::string& error) {
    if (!tmp_.isValid()) {
      error = "no temporary folder: " + tmp_.errorString().toStdString();
      return false;
    }
    path_ = tmp_.filePath(QStringLiteral("demo"));
    const auto written = qs::write_demo_model(path_.toStdString());
    if (!written) error = written.error().message;
    return written.ok();
  }
  const QString& path() const { return path_; }
  // A path beside the model in the same temporary folder.
  QString filePath(const QString& name) const { return tmp_.filePath(name); }

 private:
  QTemporaryDir tmp_;
  QString path_;
};

// A fresh window (empty statistics cache) on `path`, shown at `size` when one
// is given, with `tab` current before the model opens when one is named;
// nullptr when the model did not open within wait_ms.
inline std::unique_ptr<qs::app::MainWindow> open_window(const QString& path, int wait_ms, QSize size = {},
                                                        const QString& tab = {}) {
  auto w = std::make_unique<qs::app::MainWindow>(qs::cpu_backend());
  w->setInteractiveErrors(false);
  if (size.isValid()) w->resize(size);
  w->show();
  if (!tab.isEmpty()) w->showTab(tab);
  QSignalSpy opened(w->document(), &qs::app::Document::modelOpened);
  w->openPath(path);
  if (!opened.wait(wait_ms)) return nullptr;
  return w;
}

}  // namespace qs::test
