#include "app/document.h"

#include <QFutureWatcher>
#include <QtConcurrent/QtConcurrentRun>

#include "stats/outliers.h"

namespace qs::app {

Document::Document(std::shared_ptr<Backend> backend, QObject* parent)
    : QObject(parent), backend_(std::move(backend)), outlierFactor_(kDefaultOutlierFactor) {
  progressTimer_.setInterval(100);
  connect(&progressTimer_, &QTimer::timeout, this, [this] {
    if (statsControl_) emit statsProgress(statsTensor_, statsControl_->progress());
    if (overviewControl_) emit overviewProgress(overviewControl_->progress());
    if (!statsControl_ && !overviewControl_) progressTimer_.stop();
  });
}

Document::~Document() {
  // Jobs own what they use (shared pointers), so they may outlive us; cancel
  // them so that the thread pool drains quickly at exit.
  cancelStats();
  cancelOverview();
}

QString Document::path() const { return model_ ? QString::fromStdString(model_->path) : QString(); }

QString Document::outlierRule() const {
  return tr("channel abs-max > %1 × median (LLM.int8 magnitude rule)").arg(outlierFactor_);
}

void Document::open(const QString& path) { startOpen(path, false); }
void Document::openDemo() { startOpen(tr("demo model"), true); }

void Document::startOpen(const QString& path, bool demo) {
  const quint64 generation = ++openGeneration_;
  openPending_ = true;
  emit openStarted(path);
  auto* watcher = new QFutureWatcher<OpenOutcome>(this);
  connect(watcher, &QFutureWatcher<OpenOutcome>::finished, this, [this, watcher, generation, path] {
    watcher->deleteLater();
    onOpenFinished(generation, path, watcher->result());
  });
  watcher->setFuture(QtConcurrent::run(runOpen, path, demo));
}

void Document::onOpenFinished(quint64 generation, const QString& path, const OpenOutcome& outcome) {
  if (generation != openGeneration_) return;  // a later open superseded this one
  openPending_ = false;
  if (!outcome.model) {
    emit openFailed(path, outcome.error);
    return;
  }
  cancelStats();
  cancelOverview();
  cache_.clear();
  overview_.reset();
  model_ = outcome.model;
  emit modelOpened();
  requestOverview();
}

void Document::cancelStats() {
  ++statsGeneration_;  // whatever is in flight is now stale
  if (statsControl_) statsControl_->cancel();
  statsControl_.reset();
  statsTensor_ = -1;
}

void Document::requestStats(int tensor) {
  cancelStats();
  if (!model_ || tensor < 0 || static_cast<std::size_t>(tensor) >= model_->tensors.size()) {
    emit statsFailed(tensor, tr("No tensor %1 in the open model").arg(tensor));
    return;
  }
  if (cache_.contains(tensor)) {
    emit statsReady(tensor);
    return;
  }
  const quint64 generation = statsGeneration_;
  statsTensor_ = tensor;
  statsControl_ = std::make_shared<JobControl>();
  emit statsStarted(tensor);
  progressTimer_.start();

  auto* watcher = new QFutureWatcher<StatsOutcome>(this);
  connect(watcher, &QFutureWatcher<StatsOutcome>::finished, this, [this, watcher] {
    watcher->deleteLater();
    onStatsFinished(watcher->result());
  });
  watcher->setFuture(
      QtConcurrent::run(runStats, model_, backend_, tensor, generation, statsControl_, outlierFactor_));
}

void Document::onStatsFinished(const StatsOutcome& outcome) {
  // Stale (superseded, or from a model since replaced): drop it. Checked first,
  // so the cache only ever holds results for the current model.
  if (outcome.generation != statsGeneration_) return;
  statsControl_.reset();
  statsTensor_ = -1;
  if (!outcome.summary) {
    if (!outcome.cancelled) emit statsFailed(outcome.tensor, outcome.error);
    return;
  }
  cache_.insert(outcome.tensor, outcome.summary);
  emit statsReady(outcome.tensor);
}

void Document::cancelOverview() {
  ++overviewGeneration_;
  if (overviewControl_) overviewControl_->cancel();
  overviewControl_.reset();
}

void Document::requestOverview() {
  cancelOverview();
  if (!model_) return;
  const quint64 generation = overviewGeneration_;
  overviewControl_ = std::make_shared<JobControl>();
  emit overviewStarted();
  progressTimer_.start();
  auto* watcher = new QFutureWatcher<OverviewOutcome>(this);
  connect(watcher, &QFutureWatcher<OverviewOutcome>::finished, this, [this, watcher] {
    watcher->deleteLater();
    onOverviewFinished(watcher->result());
  });
  watcher->setFuture(QtConcurrent::run(runOverview, model_, backend_, generation, overviewControl_, outlierFactor_));
}

void Document::onOverviewFinished(const OverviewOutcome& outcome) {
  if (outcome.generation != overviewGeneration_) return;  // superseded, or for a model since replaced
  overviewControl_.reset();
  if (!outcome.figures) {
    if (!outcome.cancelled) emit overviewFailed(outcome.error);
    return;
  }
  overview_ = outcome.figures;
  emit overviewReady();
}

}  // namespace qs::app
