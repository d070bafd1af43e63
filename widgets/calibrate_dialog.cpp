#include "widgets/calibrate_dialog.h"

#include <QDialogButtonBox>
#include <QFileInfo>
#include <QFormLayout>
#include <QHBoxLayout>
#include <QLabel>
#include <QLineEdit>
#include <QProgressBar>
#include <QPushButton>
#include <QSpinBox>
#include <QVBoxLayout>
#include <algorithm>
#include <climits>
#include <limits>

namespace qs::ui {

namespace {
// Paths in the line edit are separated by ';' (a character file names rarely hold).
QStringList splitPaths(const QString& text) {
  QStringList out;
  for (const QString& p : text.split(QLatin1Char(';'), Qt::SkipEmptyParts))
    if (!p.trimmed().isEmpty()) out << p.trimmed();
  return out;
}
}  // namespace

CalibrateDialog::CalibrateDialog(QWidget* parent)
    : QDialog(parent),
      header_(new QLabel(this)),
      texts_(new QLineEdit(this)),
      browseTexts_(new QPushButton(tr("Browse…"), this)),
      sequences_(new QSpinBox(this)),
      seqLen_(new QSpinBox(this)),
      seed_(new QSpinBox(this)),
      output_(new QLineEdit(this)),
      browseOutput_(new QPushButton(tr("Browse…"), this)),
      summary_(new QLabel(this)),
      progress_(new QProgressBar(this)),
      result_(new QLabel(this)),
      start_(new QPushButton(tr("Start"), this)),
      cancel_(new QPushButton(tr("Cancel Run"), this)),
      close_(new QPushButton(tr("Close"), this)) {
  setWindowTitle(tr("Calibrate"));
  header_->setWordWrap(true);

  texts_->setPlaceholderText(tr("plain-text file(s), separated by ;"));
  texts_->setToolTip(tr("Calibration text: representative of what the model will see. "
                        "Several files are tokenized one after another."));
  sequences_->setRange(1, kMaxSequences);
  sequences_->setValue(32);
  sequences_->setToolTip(tr("Windows drawn from the text (uniform starts; they may overlap when the text is short)"));
  seqLen_->setRange(2, kMaxSeqLen);
  seqLen_->setValue(256);
  seqLen_->setSuffix(tr(" tokens"));
  seqLen_->setToolTip(tr("Tokens per sequence; each runs from position 0 with BOS first"));
  seed_->setRange(0, std::numeric_limits<int>::max());
  seed_->setToolTip(tr("Seed of the draw: the same seed and text give the same sequences"));
  output_->setToolTip(tr("The HDF5 calibration file; by default next to the model, where it is loaded on the next open"));

  auto* textRow = new QHBoxLayout;
  textRow->addWidget(texts_, 1);
  textRow->addWidget(browseTexts_);
  auto* outRow = new QHBoxLayout;
  outRow->addWidget(output_, 1);
  outRow->addWidget(browseOutput_);

  auto* form = new QFormLayout;
  form->addRow(tr("Calibration text:"), textRow);
  form->addRow(tr("Sequences:"), sequences_);
  form->addRow(tr("Sequence length:"), seqLen_);
  form->addRow(tr("Seed:"), seed_);
  form->addRow(tr("Calibration file:"), outRow);

  summary_->setWordWrap(true);
  progress_->setRange(0, 1000);
  progress_->setVisible(false);
  result_->setWordWrap(true);
  result_->setTextInteractionFlags(Qt::TextSelectableByMouse);
  result_->setObjectName(QStringLiteral("calibrateResult"));

  start_->setDefault(true);
  cancel_->setVisible(false);
  auto* buttons = new QHBoxLayout;
  buttons->addStretch(1);
  buttons->addWidget(cancel_);
  buttons->addWidget(start_);
  buttons->addWidget(close_);

  auto* layout = new QVBoxLayout(this);
  layout->addWidget(header_);
  layout->addLayout(form);
  layout->addWidget(summary_);
  layout->addWidget(progress_);
  layout->addWidget(result_);
  layout->addStretch(1);
  layout->addLayout(buttons);

  connect(browseTexts_, &QPushButton::clicked, this, &CalibrateDialog::browseTextRequested);
  connect(browseOutput_, &QPushButton::clicked, this, &CalibrateDialog::browseOutputRequested);
  connect(start_, &QPushButton::clicked, this, [this] {
    const CalibrateSettings s = settings();
    if (s.textFiles.isEmpty()) {
      showError(tr("Choose a calibration text file first."));
      return;
    }
    if (s.outputPath.isEmpty()) {
      showError(tr("Choose where the calibration file goes."));
      return;
    }
    emit startRequested(s);
  });
  connect(cancel_, &QPushButton::clicked, this, &CalibrateDialog::cancelRequested);
  connect(close_, &QPushButton::clicked, this, &QDialog::reject);
  connect(sequences_, &QSpinBox::valueChanged, this, &CalibrateDialog::updateSummary);
  connect(seqLen_, &QSpinBox::valueChanged, this, &CalibrateDialog::updateSummary);
  connect(texts_, &QLineEdit::textChanged, this, &CalibrateDialog::updateSummary);
  updateSummary();
  resize(620, 340);
}

void CalibrateDialog::setModel(const QString& name, int maxSeqLen) {
  header_->setText(tr("Run <b>%1</b> over calibration text and keep, for every linear layer's input, the "
                      "activation statistics (per-channel abs-max, histogram, channel × token map) and the "
                      "Hessian XᵀX/n for the output-error column.")
                       .arg(name.toHtmlEscaped()));
  seqLen_->setMaximum(maxSeqLen > 1 ? std::min(maxSeqLen, kMaxSeqLen) : kMaxSeqLen);
}

void CalibrateDialog::setTextFiles(const QStringList& files) { texts_->setText(files.join(QStringLiteral("; "))); }
void CalibrateDialog::setOutputPath(const QString& path) { output_->setText(path); }
void CalibrateDialog::setSequences(int n) { sequences_->setValue(n); }
void CalibrateDialog::setSeqLen(int n) { seqLen_->setValue(n); }
void CalibrateDialog::setSeed(quint64 seed) { seed_->setValue(static_cast<int>(std::min<quint64>(seed, INT_MAX))); }
void CalibrateDialog::setForwardPass(const QString& where) {
  forwardPass_ = where;
  updateSummary();
}
QString CalibrateDialog::summaryText() const { return summary_->text(); }

CalibrateSettings CalibrateDialog::settings() const {
  CalibrateSettings s;
  s.textFiles = splitPaths(texts_->text());
  s.sequences = sequences_->value();
  s.seqLen = seqLen_->value();
  s.seed = static_cast<quint64>(seed_->value());
  s.outputPath = output_->text().trimmed();
  return s;
}

void CalibrateDialog::setRunning(bool on) {
  running_ = on;
  for (QWidget* w : {static_cast<QWidget*>(texts_), static_cast<QWidget*>(browseTexts_),
                     static_cast<QWidget*>(sequences_), static_cast<QWidget*>(seqLen_), static_cast<QWidget*>(seed_),
                     static_cast<QWidget*>(output_), static_cast<QWidget*>(browseOutput_)})
    w->setEnabled(!on);
  start_->setVisible(!on);
  cancel_->setVisible(on);
  progress_->setVisible(on);
  if (on) {
    progress_->setValue(0);
    result_->setText(forwardPass_.isEmpty() ? tr("Calibrating…") : tr("Calibrating, forward pass on %1…").arg(forwardPass_));
    result_->setStyleSheet({});
    error_ = false;
  }
}

void CalibrateDialog::setProgress(double fraction) {
  progress_->setValue(static_cast<int>(std::clamp(fraction, 0.0, 1.0) * 1000.0));
}

void CalibrateDialog::showResult(const QString& text) {
  error_ = false;
  result_->setStyleSheet({});
  result_->setText(text);
}

void CalibrateDialog::showError(const QString& message) {
  error_ = true;
  result_->setStyleSheet(QStringLiteral("color: #c62828"));
  result_->setText(message);
}

QString CalibrateDialog::resultText() const { return result_->text(); }

void CalibrateDialog::updateSummary() {
  const qint64 tokens = static_cast<qint64>(sequences_->value()) * seqLen_->value();
  QString text = tr("%1 sequences × %2 tokens = %3 tokens run through the model")
                     .arg(sequences_->value())
                     .arg(seqLen_->value())
                     .arg(tokens);
  if (!forwardPass_.isEmpty()) text += tr(", forward pass on %1").arg(forwardPass_);
  summary_->setText(text + QLatin1Char('.'));
}

}  // namespace qs::ui
