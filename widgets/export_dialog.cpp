#include "widgets/export_dialog.h"

#include <QButtonGroup>
#include <QCheckBox>
#include <QComboBox>
#include <QDialogButtonBox>
#include <QFormLayout>
#include <QGroupBox>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QLabel>
#include <QLineEdit>
#include <QProgressBar>
#include <QPushButton>
#include <QRadioButton>
#include <QStandardItemModel>
#include <QTableWidget>
#include <QVBoxLayout>
#include <algorithm>
#include <cmath>

#include "widgets/display_format.h"

namespace qs::ui {

namespace {

QLabel* noteLabel(QWidget* parent) {
  auto* l = new QLabel(parent);
  l->setWordWrap(true);  // default text colour: a greyed note read as a disabled control
  return l;
}

// What each format is for, under the format list.
QString formatDescription(ExportFormat f) {
  switch (f) {
    case ExportFormat::Gguf:
      return ExportDialog::tr("One .gguf file with per-tensor llama.cpp types, for llama.cpp and its front ends.");
    case ExportFormat::Gptq:
      return ExportDialog::tr("A directory with qweight/qzeros/scales/g_idx safetensors and quantization_config, "
                              "for transformers and vLLM. Weights are rounded (RTN) onto the GPTQ grid with F16 "
                              "scales, or quantized by GPTQ with the loaded calibration's Hessians.");
    case ExportFormat::Hdf5:
      return ExportDialog::tr("One .h5 file with every layer's codes, grid, plan and measured error "
                              "(QuantScope's documented checkpoint).");
    case ExportFormat::FakeQuant:
      return ExportDialog::tr("A directory with the dequantized weights under the original names, "
                              "so any framework can evaluate the plan.");
  }
  return {};
}

}  // namespace

QString exportFormatName(ExportFormat format) {
  switch (format) {
    case ExportFormat::Gguf: return ExportDialog::tr("GGUF (llama.cpp)");
    case ExportFormat::Gptq: return ExportDialog::tr("GPTQ safetensors");
    case ExportFormat::Hdf5: return ExportDialog::tr("HDF5 checkpoint");
    case ExportFormat::FakeQuant: return ExportDialog::tr("Fake-quant safetensors");
  }
  return {};
}

ExportDialog::ExportDialog(QWidget* parent)
    : QDialog(parent),
      format_(new QComboBox(this)),
      formatNote_(noteLabel(this)),
      ggufOptions_(new QWidget(this)),
      ggufPlan_(new QRadioButton(tr("Use the current plan"), this)),
      ggufFileTypeRadio_(new QRadioButton(tr("llama.cpp file type:"), this)),
      ggufFileType_(new QComboBox(this)),
      planText_(noteLabel(this)),
      ggufCalibrationNote_(noteLabel(this)),
      gptqOptions_(new QWidget(this)),
      gptqBits_(new QComboBox(this)),
      gptqGroup_(new QComboBox(this)),
      gptqZero_(new QComboBox(this)),
      gptqCalibrate_(new QCheckBox(tr("Calibrate with GPTQ (the loaded calibration's Hessians)"), this)),
      gptqActOrder_(new QCheckBox(tr("Act-order: columns by descending Hessian diagonal"), this)),
      gptqStaticGroups_(new QCheckBox(tr("Static groups: fixed on the original column order"), this)),
      gptqCalibrationNote_(new QLabel(this)),
      hdf5Options_(new QWidget(this)),
      fakeQuantOptions_(new QWidget(this)),
      fakeQuantDtype_(new QComboBox(this)),
      fakeQuantPlan_(noteLabel(this)),
      hdf5Plan_(noteLabel(this)),
      destination_(new QLineEdit(this)),
      browse_(new QPushButton(tr("Browse…"), this)),
      summary_(new QLabel(this)),
      progress_(new QProgressBar(this)),
      cancelRun_(new QPushButton(tr("Cancel Export"), this)),
      message_(new QLabel(this)),
      results_(new QTableWidget(this)),
      export_(new QPushButton(tr("Export"), this)),
      close_(new QPushButton(tr("Close"), this)) {
  setWindowTitle(tr("Export Quantized Checkpoint"));
  for (int i = 0; i < kExportFormatCount; ++i) format_->addItem(exportFormatName(static_cast<ExportFormat>(i)), i);
  format_->setObjectName(QStringLiteral("exportFormat"));

  // GGUF: the plan's per-layer types, or one of llama-quantize's file types.
  ggufOptions_->setObjectName(QStringLiteral("ggufOptions"));
  auto* ggufMode = new QButtonGroup(this);
  ggufMode->addButton(ggufPlan_);
  ggufMode->addButton(ggufFileTypeRadio_);
  ggufPlan_->setChecked(true);
  ggufFileType_->setObjectName(QStringLiteral("ggufFileType"));
  ggufCalibrationNote_->setObjectName(QStringLiteral("ggufCalibrationNote"));
  auto* ggufLayout = new QVBoxLayout(ggufOptions_);
  ggufLayout->setContentsMargins(0, 0, 0, 0);
  ggufLayout->addWidget(ggufPlan_);
  auto* planIndent = new QHBoxLayout;
  planIndent->addSpacing(22);
  planIndent->addWidget(planText_, 1);
  ggufLayout->addLayout(planIndent);
  auto* calibrationIndent = new QHBoxLayout;  // under the plan it belongs to
  calibrationIndent->addSpacing(22);
  calibrationIndent->addWidget(ggufCalibrationNote_, 1);
  ggufLayout->addLayout(calibrationIndent);
  auto* ftypeRow = new QHBoxLayout;
  ftypeRow->addWidget(ggufFileTypeRadio_);
  ftypeRow->addWidget(ggufFileType_);
  ftypeRow->addStretch(1);
  ggufLayout->addLayout(ftypeRow);
  ggufImportance_ = new QCheckBox(tr("Weight the file type's quantizers by the calibration's importance matrix"), ggufOptions_);
  ggufImportance_->setObjectName(QStringLiteral("ggufImportance"));
  ggufImportance_->setChecked(true);
  ggufLayout->addWidget(ggufImportance_);
  connect(ggufImportance_, &QCheckBox::toggled, this, &ExportDialog::settingsChanged);

  // GPTQ: the grid, and the method: RTN, or GPTQ with the Hessians of the
  // calibration the app has loaded (act-order and static groups need it).
  gptqOptions_->setObjectName(QStringLiteral("gptqOptions"));
  for (int b : {2, 3, 4, 8}) gptqBits_->addItem(tr("%1 bits").arg(b), b);
  gptqBits_->setCurrentIndex(2);
  gptqBits_->setObjectName(QStringLiteral("gptqBits"));
  for (int g : {32, 64, 128}) gptqGroup_->addItem(QString::number(g), g);
  gptqGroup_->addItem(tr("per output channel"), -1);
  gptqGroup_->setCurrentIndex(2);
  gptqGroup_->setObjectName(QStringLiteral("gptqGroup"));
  gptqZero_->addItem(tr("symmetric (gptq)"), true);
  gptqZero_->addItem(tr("asymmetric (gptq_v2 zero points)"), false);
  gptqZero_->setObjectName(QStringLiteral("gptqZeroPoint"));
  auto* gptqForm = new QFormLayout(gptqOptions_);
  gptqForm->setContentsMargins(0, 0, 0, 0);
  gptqForm->addRow(tr("Bits:"), gptqBits_);
  gptqForm->addRow(tr("Group size:"), gptqGroup_);
  gptqForm->addRow(tr("Grid:"), gptqZero_);
  gptqCalibrate_->setObjectName(QStringLiteral("gptqCalibrate"));
  gptqActOrder_->setObjectName(QStringLiteral("gptqActOrder"));
  gptqStaticGroups_->setObjectName(QStringLiteral("gptqStaticGroups"));
  gptqActOrder_->setToolTip(tr("GPTQ walks the inputs with the largest Hessian diagonal first (desc_act); "
                               "g_idx then maps each input to its group"));
  gptqStaticGroups_->setToolTip(tr("With act-order: each group's scale is fixed on the original column order "
                                   "before the walk, so g_idx stays in order (static_groups)"));
  gptqCalibrationNote_->setObjectName(QStringLiteral("gptqCalibrationNote"));
  gptqForm->addRow(tr("Method:"), gptqCalibrate_);
  // Under the GPTQ box, indented: where its Hessians come from, and its options.
  auto* gptqMethod = new QWidget(gptqOptions_);
  auto* gptqIndent = new QVBoxLayout(gptqMethod);
  gptqIndent->setContentsMargins(22, 0, 0, 0);
  gptqIndent->addWidget(gptqCalibrationNote_);
  gptqIndent->addWidget(gptqActOrder_);
  gptqIndent->addWidget(gptqStaticGroups_);
  gptqForm->addRow(gptqMethod);

  // HDF5: the plan as it is.
  hdf5Options_->setObjectName(QStringLiteral("hdf5Options"));
  auto* hdf5Layout = new QVBoxLayout(hdf5Options_);
  hdf5Layout->setContentsMargins(0, 0, 0, 0);
  hdf5Layout->addWidget(hdf5Plan_);

  // Fake-quant: the plan, written back in one float type.
  fakeQuantOptions_->setObjectName(QStringLiteral("fakeQuantOptions"));
  for (const char* d : {"F16", "BF16", "F32"}) fakeQuantDtype_->addItem(QString::fromLatin1(d), QString::fromLatin1(d));
  fakeQuantDtype_->setObjectName(QStringLiteral("fakeQuantDtype"));
  auto* fakeForm = new QFormLayout(fakeQuantOptions_);
  fakeForm->setContentsMargins(0, 0, 0, 0);
  fakeForm->addRow(tr("Weights as:"), fakeQuantDtype_);
  fakeForm->addRow(fakeQuantPlan_);

  auto* options = new QGroupBox(tr("Options"), this);
  auto* optionsLayout = new QVBoxLayout(options);
  for (QWidget* w : {ggufOptions_, gptqOptions_, hdf5Options_, fakeQuantOptions_}) optionsLayout->addWidget(w);

  destination_->setObjectName(QStringLiteral("exportDestination"));
  auto* destRow = new QHBoxLayout;
  destRow->addWidget(destination_, 1);
  destRow->addWidget(browse_);

  summary_->setObjectName(QStringLiteral("exportSummary"));
  summary_->setWordWrap(true);
  progress_->setRange(0, 1000);
  progress_->setTextVisible(true);
  progress_->setFormat(QStringLiteral("%p %"));
  auto* runRow = new QWidget(this);
  runRow->setObjectName(QStringLiteral("exportRunRow"));
  auto* runLayout = new QHBoxLayout(runRow);
  runLayout->setContentsMargins(0, 0, 0, 0);
  runLayout->addWidget(progress_, 1);
  runLayout->addWidget(cancelRun_);
  runRow->hide();

  message_->setObjectName(QStringLiteral("exportMessage"));
  message_->setWordWrap(true);
  message_->setTextInteractionFlags(Qt::TextSelectableByMouse);
  results_->setObjectName(QStringLiteral("exportResults"));
  results_->setColumnCount(4);
  results_->setHorizontalHeaderLabels({tr("Tensor"), tr("Written as"), tr("SQNR (dB)"), tr("Note")});
  for (int c = 0; c < 3; ++c) results_->horizontalHeader()->setSectionResizeMode(c, QHeaderView::ResizeToContents);
  results_->setWordWrap(false);  // one line per tensor: the table is for scanning
  results_->horizontalHeader()->setStretchLastSection(true);
  results_->verticalHeader()->hide();
  results_->verticalHeader()->setDefaultSectionSize(results_->fontMetrics().height() + 8);
  results_->setEditTriggers(QAbstractItemView::NoEditTriggers);
  results_->setSelectionBehavior(QAbstractItemView::SelectRows);
  results_->setAlternatingRowColors(true);
  results_->setMinimumHeight(220);
  results_->hide();

  auto* form = new QFormLayout;
  form->addRow(tr("Format:"), format_);
  form->addRow(QString(), formatNote_);
  auto* buttons = new QDialogButtonBox(this);
  export_->setDefault(true);
  buttons->addButton(export_, QDialogButtonBox::ActionRole);
  buttons->addButton(close_, QDialogButtonBox::RejectRole);

  auto* layout = new QVBoxLayout(this);
  layout->addLayout(form);
  layout->addWidget(options);
  auto* destForm = new QFormLayout;
  destForm->addRow(tr("Destination:"), destRow);
  destForm->addRow(tr("Estimate:"), summary_);
  layout->addLayout(destForm);
  layout->addWidget(runRow);
  layout->addWidget(message_);
  layout->addWidget(results_, 1);
  layout->addStretch(0);
  layout->addWidget(buttons);
  setMinimumWidth(620);

  connect(format_, &QComboBox::currentIndexChanged, this, &ExportDialog::onFormatChanged);
  for (QRadioButton* r : {ggufPlan_, ggufFileTypeRadio_})
    connect(r, &QRadioButton::toggled, this, [this] {
      updateVisibility();
      emit settingsChanged();
    });
  for (QComboBox* c : {ggufFileType_, gptqBits_, gptqGroup_, gptqZero_, fakeQuantDtype_})
    connect(c, &QComboBox::currentIndexChanged, this, [this] { emit settingsChanged(); });
  connect(ggufFileType_, &QComboBox::activated, this, [this] { ggufFileTypeRadio_->setChecked(true); });
  for (QCheckBox* c : {gptqCalibrate_, gptqActOrder_, gptqStaticGroups_})
    connect(c, &QCheckBox::toggled, this, [this] {
      updateVisibility();
      emit settingsChanged();
    });
  connect(destination_, &QLineEdit::textChanged, this, &ExportDialog::updateExportEnabled);
  connect(browse_, &QPushButton::clicked, this, &ExportDialog::browseRequested);
  connect(export_, &QPushButton::clicked, this, [this] {
    if (export_->isEnabled()) emit exportRequested(settings());
  });
  connect(cancelRun_, &QPushButton::clicked, this, &ExportDialog::cancelRequested);
  connect(close_, &QPushButton::clicked, this, [this] {
    if (running_) emit cancelRequested();  // closing while it runs cancels: nothing is left behind
    reject();
  });
  setGptqCalibration({});
  setImportanceSource({});
  onFormatChanged();
}

ExportFormat ExportDialog::currentFormat() const {
  return static_cast<ExportFormat>(format_->currentData().toInt());
}

void ExportDialog::setFormatAvailable(ExportFormat format, bool available, const QString& reason) {
  const int i = static_cast<int>(format);
  available_[i] = available;
  availabilityReason_[i] = reason;
  // Disabled in the list (not removed), with the reason as its tooltip.
  if (auto* model = qobject_cast<QStandardItemModel*>(format_->model())) {
    if (QStandardItem* item = model->item(i)) {
      item->setEnabled(available);
      item->setToolTip(available ? QString() : reason);
    }
  }
  if (!available && currentFormat() == format) {
    for (int j = 0; j < kExportFormatCount; ++j)
      if (available_[j]) {
        format_->setCurrentIndex(j);
        break;
      }
  }
  onFormatChanged();
}

bool ExportDialog::isFormatAvailable(ExportFormat format) const { return available_[static_cast<int>(format)]; }

void ExportDialog::setFileTypes(const QStringList& names, const QString& preferred) {
  ggufFileType_->clear();
  ggufFileType_->addItems(names);
  const int i = static_cast<int>(names.indexOf(preferred));
  if (i >= 0) ggufFileType_->setCurrentIndex(i);
}

void ExportDialog::setPlanDescription(const QString& text, bool needsCalibration) {
  planDescription_ = text;
  planNeedsCalibration_ = needsCalibration;
  planText_->setText(text);
  hdf5Plan_->setText(tr("Plan: %1").arg(text));
  fakeQuantPlan_->setText(tr("Plan: %1").arg(text));
  updateVisibility();
}

void ExportDialog::setSuggestedDestination(ExportFormat format, const QString& path) {
  const int i = static_cast<int>(format);
  // Untouched: empty or any format's proposal (the first visit of a format
  // gets its proposal only now, after the switch kept the previous one).
  bool untouched = destination_->text().isEmpty();
  for (const QString& p : suggested_) untouched = untouched || destination_->text() == p;
  suggested_[i] = path;
  if (untouched && currentFormat() == format) destination_->setText(path);
}

void ExportDialog::setGptqCalibration(const QString& description) {
  gptqCalibration_ = description;
  const bool have = !description.isEmpty();
  gptqCalibrate_->setEnabled(have);
  if (!have) gptqCalibrate_->setChecked(false);
  gptqCalibrate_->setToolTip(have ? tr("GPTQ with the Hessians of the calibration loaded for this model (%1); "
                                       "the file then holds exactly GPTQ's result")
                                        .arg(description)
                                  : tr("Calibrate first (Tools ▸ Calibrate…, or open a calibration file with "
                                       "Hessians): GPTQ needs the Hessians of the layers' inputs"));
  gptqCalibrationNote_->setText(have ? tr("Calibration: %1").arg(description)
                                     : tr("No calibration with Hessians is loaded: calibrate first to use GPTQ."));
  updateVisibility();
}

void ExportDialog::setImportanceSource(const QString& description) {
  importanceSource_ = description;
  const bool have = !description.isEmpty();
  ggufImportance_->setToolTip(have ? tr("Each ggml quantizer's scale search weights the input channels by their mean "
                                        "x² in the loaded calibration (%1), as llama-quantize --imatrix does; "
                                        "needed for IQ2_XXS, IQ2_XS, IQ1_S and IQ1_M")
                                         .arg(description)
                                   : tr("Calibrate first (Tools ▸ Calibrate…, or open a calibration file): the "
                                        "importance of each input channel comes from its activations"));
  updateVisibility();
}

void ExportDialog::setDestination(const QString& path) { destination_->setText(path); }
void ExportDialog::setSummary(const QString& text) { summary_->setText(text); }

bool ExportDialog::needsCalibration() const {
  return currentFormat() == ExportFormat::Gguf && ggufPlan_->isChecked() && planNeedsCalibration_;
}

ExportSettings ExportDialog::settings() const {
  ExportSettings s;
  s.format = currentFormat();
  s.ggufUsePlan = ggufPlan_->isChecked();
  s.ggufFileType = ggufFileType_->currentText();
  s.ggufImportance = !importanceSource_.isEmpty() && !s.ggufUsePlan && ggufImportance_->isChecked();
  s.gptqBits = gptqBits_->currentData().toInt();
  s.gptqGroup = gptqGroup_->currentData().toInt();
  s.gptqSymmetric = gptqZero_->currentData().toBool();
  s.gptqCalibrated = !gptqCalibration_.isEmpty() && gptqCalibrate_->isChecked();
  s.gptqActOrder = s.gptqCalibrated && gptqActOrder_->isChecked();
  s.gptqStaticGroups = s.gptqActOrder && gptqStaticGroups_->isChecked();
  s.fakeQuantDtype = fakeQuantDtype_->currentData().toString();
  s.destination = destination_->text().trimmed();
  return s;
}

void ExportDialog::setSettings(const ExportSettings& s) {
  format_->setCurrentIndex(static_cast<int>(s.format));
  (s.ggufUsePlan ? ggufPlan_ : ggufFileTypeRadio_)->setChecked(true);
  if (const int i = ggufFileType_->findText(s.ggufFileType); i >= 0) ggufFileType_->setCurrentIndex(i);
  ggufImportance_->setChecked(s.ggufImportance || importanceSource_.isEmpty());
  if (const int i = gptqBits_->findData(s.gptqBits); i >= 0) gptqBits_->setCurrentIndex(i);
  if (const int i = gptqGroup_->findData(s.gptqGroup); i >= 0) gptqGroup_->setCurrentIndex(i);
  gptqZero_->setCurrentIndex(s.gptqSymmetric ? 0 : 1);
  gptqCalibrate_->setChecked(s.gptqCalibrated && !gptqCalibration_.isEmpty());
  gptqActOrder_->setChecked(s.gptqActOrder);
  gptqStaticGroups_->setChecked(s.gptqStaticGroups);
  if (const int i = fakeQuantDtype_->findData(s.fakeQuantDtype); i >= 0) fakeQuantDtype_->setCurrentIndex(i);
  destination_->setText(s.destination);
  updateVisibility();
}

void ExportDialog::onFormatChanged() {
  const ExportFormat f = currentFormat();
  const int i = static_cast<int>(f);
  const QString proposed = suggested_.value(i);
  bool untouched = destination_->text().isEmpty();
  for (const QString& s : suggested_) untouched = untouched || destination_->text() == s;
  if (untouched && !proposed.isEmpty()) destination_->setText(proposed);
  updateVisibility();
  emit settingsChanged();
}

void ExportDialog::updateVisibility() {
  const ExportFormat f = currentFormat();
  const int i = static_cast<int>(f);
  ggufOptions_->setVisible(f == ExportFormat::Gguf);
  gptqOptions_->setVisible(f == ExportFormat::Gptq);
  hdf5Options_->setVisible(f == ExportFormat::Hdf5);
  fakeQuantOptions_->setVisible(f == ExportFormat::FakeQuant);
  // The plan editor measured the gptq layers with the loaded calibration's
  // Hessians; the file takes the same ones (there is no other source here).
  ggufCalibrationNote_->setVisible(needsCalibration());
  ggufCalibrationNote_->setText(
      !gptqCalibration_.isEmpty()
          ? tr("GPTQ layers: the Hessians of the loaded calibration (%1), as the plan editor measured them")
                .arg(gptqCalibration_)
          : QStringLiteral("<span style='color:#c62828'>%1</span>")
                .arg(tr("The plan's gptq layers need the Hessians of a calibration: calibrate first (Tools ▸ "
                        "Calibrate…) or open a calibration file with Hessians.")
                         .toHtmlEscaped()));
  planText_->setEnabled(ggufPlan_->isChecked());
  // Act-order needs GPTQ; static groups go with act-order (without it groups are static anyway).
  const bool gptq = !gptqCalibration_.isEmpty() && gptqCalibrate_->isChecked();
  gptqActOrder_->setEnabled(gptq);
  gptqStaticGroups_->setEnabled(gptq && gptqActOrder_->isChecked());
  ggufFileType_->setEnabled(ggufFileTypeRadio_->isChecked() && !running_);
  // llama-quantize's --imatrix: for a file type. A plan's layers are written as the plan editor
  // measures them, and plans do not take an importance matrix yet.
  ggufImportance_->setEnabled(!importanceSource_.isEmpty() && ggufFileTypeRadio_->isChecked() && !running_);
  const QString note = formatDescription(f);
  formatNote_->setText(available_[i] ? note
                                     : QStringLiteral("<span style='color:#c62828'>%1</span>")
                                           .arg(tr("Not available for this model: %1").arg(availabilityReason_[i]).toHtmlEscaped()));
  updateExportEnabled();
  // The word-wrapped notes take the lines they need at the current width,
  // which the window's minimum height (computed without wrapping) leaves out:
  // a format with a longer note or more options would squeeze its rows.
  if (isVisible() && layout()) {
    layout()->activate();
    if (const int h = heightForWidth(width()); h > height()) resize(width(), h);
  }
}

void ExportDialog::updateExportEnabled() {
  const bool ok = !running_ && available_[static_cast<int>(currentFormat())] && !destination_->text().trimmed().isEmpty() &&
                  (!needsCalibration() || !gptqCalibration_.isEmpty());
  export_->setEnabled(ok);
}

void ExportDialog::setOptionsEnabled(bool on) {
  for (QWidget* w : {static_cast<QWidget*>(format_), ggufOptions_, gptqOptions_, hdf5Options_, fakeQuantOptions_,
                     static_cast<QWidget*>(destination_), static_cast<QWidget*>(browse_)})
    w->setEnabled(on);
}

void ExportDialog::showRunning() {
  running_ = true;
  setOptionsEnabled(false);
  message_->clear();
  results_->hide();
  results_->setRowCount(0);
  progress_->setValue(0);
  progress_->parentWidget()->show();
  cancelRun_->setEnabled(true);
  updateExportEnabled();
}

void ExportDialog::setProgress(double fraction) {
  progress_->setValue(static_cast<int>(std::lround(std::clamp(fraction, 0.0, 1.0) * 1000.0)));
}

void ExportDialog::showResult(const ExportResultView& r) {
  running_ = false;
  setOptionsEnabled(true);
  progress_->parentWidget()->hide();
  const QString verified =
      r.verified ? tr("<br><span style='color:#2e7d32'>✓ Verified: read back before it was moved into place, every tensor "
                      "as written</span>")
                 : QString();
  message_->setText(tr("<b>Wrote %1</b><br>%2 in %3 s · %4%5")
                        .arg(r.path.toHtmlEscaped(), humanBytes(r.bytes))
                        .arg(r.seconds, 0, 'f', 2)
                        .arg(r.headline.toHtmlEscaped(), verified));
  results_->setRowCount(static_cast<int>(r.rows.size()));
  for (int i = 0; i < r.rows.size(); ++i) {
    const ExportResultRow& row = r.rows[i];
    auto* sqnr = new QTableWidgetItem(std::isfinite(row.sqnrDb) ? QString::number(row.sqnrDb, 'f', 2) : tr("exact"));
    sqnr->setTextAlignment(Qt::AlignRight | Qt::AlignVCenter);
    results_->setItem(i, 0, new QTableWidgetItem(row.name));
    results_->setItem(i, 1, new QTableWidgetItem(row.writtenAs));
    results_->setItem(i, 2, sqnr);
    auto* note = new QTableWidgetItem(row.note);
    note->setToolTip(row.note);  // the column is narrow; notes can be long
    results_->setItem(i, 3, note);
  }
  results_->show();
  updateVisibility();
}

void ExportDialog::showError(const QString& message) {
  running_ = false;
  setOptionsEnabled(true);
  progress_->parentWidget()->hide();
  results_->hide();
  message_->setText(QStringLiteral("<span style='color:#c62828'>%1</span>").arg(message.toHtmlEscaped()));
  updateVisibility();
}

void ExportDialog::showCancelled() {
  running_ = false;
  setOptionsEnabled(true);
  progress_->parentWidget()->hide();
  results_->hide();
  message_->setText(tr("Export cancelled: nothing was written."));
  updateVisibility();
}

}  // namespace qs::ui
