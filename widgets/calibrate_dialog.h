#pragma once
// Tools ▸ Calibrate…: the calibration text file(s), how many sequences of how
// many tokens to draw from them (and the seed of the draw), where the
// calibration file goes; then progress with cancel and a result line. The
// dialog never touches files: it asks for paths (browse signals; the app
// answers with setTextFiles / setOutputPath) and for a run (startRequested),
// and shows what the app hands back.
#include <QDialog>
#include <QString>
#include <QStringList>

class QLabel;
class QLineEdit;
class QProgressBar;
class QPushButton;
class QSpinBox;

namespace qs::ui {

struct CalibrateSettings {
  QStringList textFiles;
  int sequences = 32;
  int seqLen = 256;
  quint64 seed = 0;
  QString outputPath;
};

class CalibrateDialog : public QDialog {
  Q_OBJECT
 public:
  // Limits of the spin boxes: enough for real calibration sets, bounded so
  // that a typo cannot ask for days of work or a huge allocation.
  static constexpr int kMaxSequences = 4096;
  static constexpr int kMaxSeqLen = 8192;

  explicit CalibrateDialog(QWidget* parent = nullptr);

  // The model the run is for (its name in the header) and the longest sequence it takes (0: unknown).
  void setModel(const QString& name, int maxSeqLen);
  void setTextFiles(const QStringList& files);
  void setOutputPath(const QString& path);
  void setSequences(int n);
  void setSeqLen(int n);
  void setSeed(quint64 seed);
  // Where the forward pass will run, as the backend describes itself
  // ("CPU (8 threads)", "CUDA (NVIDIA H100 …)"), for the summary line.
  void setForwardPass(const QString& where);
  QString summaryText() const;
  CalibrateSettings settings() const;

  // A run in progress: inputs locked, Start → Cancel, progress shown.
  void setRunning(bool on);
  bool isRunning() const { return running_; }
  void setProgress(double fraction);
  void showResult(const QString& text);  // after a run: tokens, time, file
  void showError(const QString& message);
  QString resultText() const;
  bool resultIsError() const { return error_; }

  QPushButton* startButton() const { return start_; }
  QPushButton* cancelButton() const { return cancel_; }
  QLineEdit* textFilesEdit() const { return texts_; }
  QLineEdit* outputEdit() const { return output_; }
  QSpinBox* sequencesBox() const { return sequences_; }
  QSpinBox* seqLenBox() const { return seqLen_; }
  QSpinBox* seedBox() const { return seed_; }
  QProgressBar* progressBar() const { return progress_; }

 signals:
  void browseTextRequested();
  void browseOutputRequested();
  void startRequested(const qs::ui::CalibrateSettings& settings);
  void cancelRequested();

 private:
  void updateSummary();

  QLabel* header_;
  QLineEdit* texts_;
  QPushButton* browseTexts_;
  QSpinBox* sequences_;
  QSpinBox* seqLen_;
  QSpinBox* seed_;
  QLineEdit* output_;
  QPushButton* browseOutput_;
  QLabel* summary_;
  QProgressBar* progress_;
  QLabel* result_;
  QPushButton* start_;
  QPushButton* cancel_;
  QPushButton* close_;
  QString forwardPass_;
  bool running_ = false;
  bool error_ = false;
};

}  // namespace qs::ui
