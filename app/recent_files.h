#pragma once
// RecentFiles: the File → Recent Files menu, kept in QSettings (newest first,
// at most 10, with a Clear entry). Emits openRequested when one is chosen.
#include <QObject>
#include <QStringList>

class QMenu;

namespace qs::app {

class RecentFiles : public QObject {
  Q_OBJECT
 public:
  static constexpr int kMaxEntries = 10;

  RecentFiles(QMenu* menu, QObject* parent = nullptr);
  void add(const QString& path);
  void clear();
  QStringList files() const;

 signals:
  void openRequested(const QString& path);

 private:
  void store(const QStringList& files);
  void rebuildMenu();

  QMenu* menu_;
};

}  // namespace qs::app
