// Document: the export job (File ▸ Export…).
#include <QFutureWatcher>
#include <QtConcurrent/QtConcurrentRun>

#include "app/document.h"

namespace qs::app {

void Document::cancelExport() {
  // The job sees the flag at its next tensor and returns Cancelled once the
  // exporter has removed its temporary file or directory: exportCancelled
  // comes then, so nothing is left behind when it arrives. (An export that
  // was already renaming into place finishes, and says so.)
  if (exportControl_) exportControl_->cancel();
}

void Document::requestExport(const ExportJobRequest& request) {
  if (exportControl_) exportControl_->cancel();  // superseded: its answer is dropped
  exportControl_.reset();
  const quint64 generation = ++exportGeneration_;
  if (!model_) return;
  exportControl_ = std::make_shared<JobControl>();
  progressTimer_.start();
  auto* watcher = new QFutureWatcher<ExportOutcome>(this);
  connect(watcher, &QFutureWatcher<ExportOutcome>::finished, this, [this, watcher] {
    watcher->deleteLater();
    onExportFinished(watcher->result());
  });
  ExportJobRequest job = request;
  job.backend = backend_;
  watcher->setFuture(QtConcurrent::run(runExportJob, model_, job, generation, exportControl_));
}

void Document::onExportFinished(const ExportOutcome& outcome) {
  if (outcome.generation != exportGeneration_) return;  // superseded
  exportControl_.reset();
  if (outcome.cancelled) {
    emit exportCancelled();
    return;
  }
  emit exportFinished(outcome);
}

}  // namespace qs::app
