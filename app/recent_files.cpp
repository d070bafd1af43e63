#include "app/recent_files.h"

#include <QDir>
#include <QFileInfo>
#include <QMenu>
#include <QSettings>

namespace qs::app {

namespace {
const QString kKey = QStringLiteral("recentFiles");
}

RecentFiles::RecentFiles(QMenu* menu, QObject* parent) : QObject(parent), menu_(menu) { rebuildMenu(); }

QStringList RecentFiles::files() const { return QSettings().value(kKey).toStringList(); }

void RecentFiles::add(const QString& path) {
  // One spelling per file, so reopening moves it to the top instead of duplicating it.
  const QString clean = QDir::cleanPath(QFileInfo(path).absoluteFilePath());
  QStringList list = files();
  list.removeAll(clean);
  list.prepend(clean);
  while (list.size() > kMaxEntries) list.removeLast();
  store(list);
}

void RecentFiles::clear() { store({}); }

void RecentFiles::store(const QStringList& list) {
  QSettings().setValue(kKey, list);
  rebuildMenu();
}

void RecentFiles::rebuildMenu() {
  menu_->clear();
  const QStringList list = files();
  for (int i = 0; i < list.size(); ++i) {
    const QString path = list[i];
    // "&1 name" gives keyboard access; the full path is in the status tip.
    QAction* a = menu_->addAction(QStringLiteral("&%1  %2").arg((i + 1) % 10).arg(QFileInfo(path).fileName()));
    a->setStatusTip(path);
    a->setToolTip(path);
    connect(a, &QAction::triggered, this, [this, path] { emit openRequested(path); });
  }
  if (!list.isEmpty()) menu_->addSeparator();
  QAction* clearAction = menu_->addAction(tr("Clear Recent Files"));
  clearAction->setEnabled(!list.isEmpty());
  connect(clearAction, &QAction::triggered, this, &RecentFiles::clear);
}

}  // namespace qs::app
