#pragma once
// File ▸ Export…: the format of the quantized checkpoint (GGUF, GPTQ
// safetensors, the HDF5 checkpoint, fake-quant safetensors), the options that
// format takes, the destination, then progress and the exporter's report.
// Only combinations the exporters accept are offered: the app says which
// formats the open model and plan can go to (and why not), and the options
// shown are those of the chosen format. The dialog never touches files: it
// asks for a path (browseRequested), the app answers with setDestination; it
// asks for an export (exportRequested) and shows what the app hands back.
#include <QDialog>
#include <QMap>
#include <QString>
#include <QStringList>
#include <QVector>

class QButtonGroup;
class QCheckBox;
class QComboBox;
class QLabel;
class QLineEdit;
class QProgressBar;
class QPushButton;
class QRadioButton;
class QTableWidget;
class QWidget;

namespace qs::ui {

enum class ExportFormat { Gguf, Gptq, Hdf5, FakeQuant };
inline constexpr int kExportFormatCount = 4;

struct ExportSettings {
  ExportFormat format = ExportFormat::Gguf;
  bool ggufUsePlan = true;          // else the llama.cpp file type below
  QString ggufFileType = QStringLiteral("Q8_0");
  // GGUF with a llama.cpp file type: weight the ggml quantizers by the loaded
  // calibration's importance (mean x^2 per input channel), as llama-quantize
  // --imatrix does (a plan's layers are written as the plan editor measures them).
  bool ggufImportance = true;
  int gptqBits = 4;                 // 2, 3, 4, 8
  int gptqGroup = 128;              // > 0, or -1: one group per output channel
  bool gptqSymmetric = true;
  bool gptqCalibrated = false;      // GPTQ with the Hessians of the calibration the app has loaded (else RTN)
  bool gptqActOrder = false;        // with gptqCalibrated: columns by descending H diagonal (desc_act)
  bool gptqStaticGroups = false;    // with gptqActOrder: groups fixed on the original column order
  QString fakeQuantDtype = QStringLiteral("F16");  // F16, BF16, F32
  QString destination;
};

// One row of the report: a tensor or layer and what it was written as.
struct ExportResultRow {
  QString name, writtenAs, note;
  double sqnrDb = 0;  // not finite: exact (a copy) or not measured
};

struct ExportResultView {
  QString path, headline;  // headline: format, counts, what the exporter said
  quint64 bytes = 0;
  double seconds = 0;
  // The exporter read the file back before moving it into place and found
  // what it wrote (tensors, bytes, each layer's error); exporters fail otherwise.
  bool verified = false;
  QVector<ExportResultRow> rows;
};

class ExportDialog : public QDialog {
  Q_OBJECT
 public:
  explicit ExportDialog(QWidget* parent = nullptr);

  // What the open model and plan allow. Unavailable formats stay listed, disabled, with the reason.
  void setFormatAvailable(ExportFormat format, bool available, const QString& reason = {});
  bool isFormatAvailable(ExportFormat format) const;
  // llama.cpp's file types ("Q8_0", "Q4_K_M", ...), `preferred` selected.
  void setFileTypes(const QStringList& names, const QString& preferred);
  // The plan the plan-driven formats use, in words ("q4_k_m preset · rtn on 44 layers"),
  // and whether its methods need the Hessians of a calibration (GGUF: GPTQ onto
  // ggml grids; they come from the loaded calibration, the plan editor's).
  void setPlanDescription(const QString& text, bool needsCalibration);
  // The path Browse… starts from and the one proposed when the format changes
  // (kept once the user has typed their own).
  void setSuggestedDestination(ExportFormat format, const QString& path);
  void setDestination(const QString& path);
  // The calibration GPTQ can use (the document's, with Hessians), in words
  // ("16384 tokens · quantscope.qscalib.h5"); empty when there is none: the
  // GPTQ option is then disabled, its tooltip saying to calibrate first, and
  // a GGUF plan with gptq layers cannot be exported.
  void setGptqCalibration(const QString& description);
  // The calibration whose importance can weight the GGUF quantizers (any
  // loaded calibration), in words; empty: none, the option is disabled.
  void setImportanceSource(const QString& description);
  // The one-line estimate the app computes for the current settings (settingsChanged).
  void setSummary(const QString& text);

  ExportSettings settings() const;
  void setSettings(const ExportSettings& s);
  bool needsCalibration() const;  // with the current settings

  // Running: the options lock, the progress bar and its Cancel show.
  void showRunning();
  void setProgress(double fraction);
  bool isRunning() const { return running_; }
  void showResult(const ExportResultView& result);
  void showError(const QString& message);  // verbatim: core messages name the file and the problem
  void showCancelled();

  QComboBox* formatCombo() const { return format_; }
  QPushButton* exportButton() const { return export_; }
  QPushButton* cancelExportButton() const { return cancelRun_; }
  QLabel* messageLabel() const { return message_; }
  QLabel* summaryLabel() const { return summary_; }
  QCheckBox* gptqCalibrateBox() const { return gptqCalibrate_; }
  QCheckBox* gptqActOrderBox() const { return gptqActOrder_; }
  QCheckBox* gptqStaticGroupsBox() const { return gptqStaticGroups_; }
  QTableWidget* resultTable() const { return results_; }

 signals:
  void exportRequested(const qs::ui::ExportSettings& settings);
  void cancelRequested();
  void browseRequested();             // for the destination
  void settingsChanged();             // the app answers with setSummary

 private:
  ExportFormat currentFormat() const;
  void onFormatChanged();
  void updateVisibility();
  void updateExportEnabled();
  void setOptionsEnabled(bool on);

  QComboBox* format_;
  QLabel* formatNote_;
  QWidget* ggufOptions_;
  QRadioButton* ggufPlan_;
  QRadioButton* ggufFileTypeRadio_;
  QComboBox* ggufFileType_;
  QLabel* planText_;
  QLabel* ggufCalibrationNote_;  // a plan with gptq layers: which calibration's Hessians they take
  QWidget* gptqOptions_;
  QComboBox* gptqBits_;
  QComboBox* gptqGroup_;
  QComboBox* gptqZero_;
  QCheckBox* gptqCalibrate_;
  QCheckBox* gptqActOrder_;
  QCheckBox* gptqStaticGroups_;
  QLabel* gptqCalibrationNote_;
  QCheckBox* ggufImportance_ = nullptr;
  QWidget* hdf5Options_;
  QWidget* fakeQuantOptions_;
  QComboBox* fakeQuantDtype_;
  QLabel* fakeQuantPlan_;
  QLabel* hdf5Plan_;
  QLineEdit* destination_;
  QPushButton* browse_;
  QLabel* summary_;
  QProgressBar* progress_;
  QPushButton* cancelRun_;
  QLabel* message_;
  QTableWidget* results_;
  QPushButton* export_;
  QPushButton* close_;

  QString availabilityReason_[kExportFormatCount];
  bool available_[kExportFormatCount] = {true, true, true, true};
  QMap<int, QString> suggested_;
  QString planDescription_;
  bool planNeedsCalibration_ = false;
  QString gptqCalibration_;  // empty: no calibration with Hessians loaded
  QString importanceSource_;  // empty: no calibration loaded
  bool running_ = false;
};

// "GGUF (llama.cpp)", ...: the names the format list shows.
QString exportFormatName(ExportFormat format);

}  // namespace qs::ui
