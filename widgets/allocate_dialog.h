#pragma once
// "Allocate to a budget": the target average bits/weight and the candidate
// formats; once the app has measured the candidates and allocated, the Pareto
// front (summed squared weight error against average bits/weight) with the
// chosen point marked, and Apply. The dialog computes nothing itself: it asks
// (runRequested) and shows what the app hands back.
#include <QDialog>
#include <QStringList>
#include <QVector>

class QCustomPlot;
class QDoubleSpinBox;
class QLabel;
class QListWidget;
class QPushButton;

namespace qs::ui {

class AllocateDialog : public QDialog {
  Q_OBJECT
 public:
  explicit AllocateDialog(QWidget* parent = nullptr);

  void setCandidates(const QStringList& all, const QStringList& checked);
  QStringList candidates() const;  // the checked formats
  double target() const;
  void setTarget(double bits);

  void showBusy(const QString& message);
  void showError(const QString& message);
  // The front (bits/weight, squared error), from most bits to fewest, and the chosen point.
  void setResult(const QVector<double>& bits, const QVector<double>& error, double chosenBits, double chosenError,
                 const QString& summary);
  bool hasResult() const { return hasResult_; }
  // The error axis' name: what the allocation minimised (squared weight error, or relative output error).
  void setErrorLabel(const QString& label);
  QString errorLabel() const;
  QCustomPlot* plot() const { return plot_; }

 signals:
  void runRequested(double target, const QStringList& formats);
  void applyRequested();

 private:
  QDoubleSpinBox* target_;
  QListWidget* formats_;
  QPushButton* run_;
  QPushButton* apply_;
  QLabel* status_;
  QCustomPlot* plot_;
  bool hasResult_ = false;
};

}  // namespace qs::ui
