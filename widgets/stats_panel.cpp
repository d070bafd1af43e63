#include "widgets/stats_panel.h"

#include <QFormLayout>
#include <QGroupBox>
#include <QLabel>
#include <QVBoxLayout>

#include "model/tensor_info.h"
#include "stats/layer_summary.h"
#include "widgets/display_format.h"

namespace qs::ui {

namespace {

QLabel* valueLabel(QWidget* parent) {
  auto* l = new QLabel(parent);
  l->setTextInteractionFlags(Qt::TextSelectableByMouse);  // users copy numbers into notes
  l->setWordWrap(true);
  return l;
}

}  // namespace

StatsPanel::StatsPanel(QWidget* parent) : QWidget(parent), rule_(new QLabel(this)) {
  struct Row {
    Field field;
    const char* label;
    const char* tip;
  };
  const Row tensorRows[] = {{Shape, "Shape", "[out_features, in_features]"},
                            {DType, "DType", nullptr}, {Elements, "Elements", nullptr}};
  const Row statRows[] = {
      {Finite, "Finite values", "Values the moments are computed over"},
      {NanInf, "NaN / Inf", nullptr},
      {Min, "Min", nullptr},
      {Max, "Max", nullptr},
      {Mean, "Mean", nullptr},
      {Std, "Std", "Population standard deviation"},
      {Kurtosis, "Excess kurtosis", "0 for a Gaussian; heavy tails score high"},
      {AbsMax, "Abs-max", "max |x|: sets the scale of symmetric quantization"},
      {P50, "Median", "Percentiles are exact (nearest rank)"},
      {P01, "1 % \u2026 99 %", "Percentiles: 98 % of the values lie in this range"},
      {P999, "0.1 % \u2026 99.9 %", "Where clipping that keeps 99.8 % of the values would cut"},
      {P9999, "99.99 %", nullptr},
      {Beyond3, "Beyond 3\u03c3", "Values with |x - mean| > 3 std (0.27 % for a Gaussian)"},
      {Beyond6, "Beyond 6\u03c3", "Values with |x - mean| > 6 std (2e-7 % for a Gaussian)"},
      {OutlierIn, "Outlier input ch.", "Input channels (columns): count (first indices)"},
      {OutlierOut, "Outlier output ch.", "Output channels (rows): count (first indices)"},
  };

  auto makeGroup = [this](const QString& title, const auto& rows, QLabel* heading) {
    auto* box = new QGroupBox(title, this);
    auto* form = new QFormLayout(box);
    if (heading) form->addRow(heading);
    form->setLabelAlignment(Qt::AlignLeft);
    form->setFieldGrowthPolicy(QFormLayout::AllNonFixedFieldsGrow);
    for (const Row& r : rows) {
      values_[r.field] = valueLabel(box);
      auto* label = new QLabel(tr(r.label), box);
      if (r.tip) label->setToolTip(tr(r.tip));
      form->addRow(label, values_[r.field]);
    }
    return box;
  };

  auto* layout = new QVBoxLayout(this);
  // The tensor name spans the panel: it is long and has no spaces to wrap at.
  values_[Name] = valueLabel(this);
  QFont bold = values_[Name]->font();
  bold.setBold(true);
  values_[Name]->setFont(bold);
  layout->addWidget(makeGroup(tr("Tensor"), tensorRows, values_[Name]));
  layout->addWidget(makeGroup(tr("Distribution"), statRows, nullptr));
  rule_->setWordWrap(true);
  rule_->setStyleSheet(QStringLiteral("color: #707070;"));
  layout->addWidget(rule_);
  layout->addStretch(1);
  clear();
}

void StatsPanel::clear() {
  for (QLabel* l : values_) l->setText(QStringLiteral("–"));
  rule_->clear();
}

void StatsPanel::setTensor(const TensorInfo& t) {
  const QString name = QString::fromStdString(t.name);
  values_[Name]->setText(name);
  values_[Name]->setToolTip(name);
  values_[Shape]->setText(shapeText(t.shape));
  values_[DType]->setText(fromStd(dtype_name(t.dtype)));
  values_[Elements]->setText(QStringLiteral("%1  (%2)").arg(humanCount(t.numel())).arg(humanBytes(t.nbytes)));
  setStatsText(QStringLiteral("…"));
}

void StatsPanel::setStatsText(const QString& text) {
  for (int f = Finite; f < FieldCount; ++f) values_[static_cast<std::size_t>(f)]->setText(text);
}

void StatsPanel::setStatsMessage(const QString& message) {
  setStatsText(QStringLiteral("…"));
  rule_->setText(message);
}

void StatsPanel::setSummary(const LayerSummary& s, const QString& outlierRule) {
  const TensorStats& st = s.stats;
  values_[Finite]->setText(QString::number(st.count));
  values_[NanInf]->setText(QStringLiteral("%1 / %2").arg(st.nan).arg(st.inf));
  values_[Min]->setText(number(st.min));
  values_[Max]->setText(number(st.max));
  values_[Mean]->setText(number(st.mean));
  values_[Std]->setText(number(st.std));
  values_[Kurtosis]->setText(number(st.kurtosis));
  values_[AbsMax]->setText(number(st.abs_max));
  // kStatPercentiles: 0.1, 1, 50, 99, 99.9, 99.99
  const QString range = QStringLiteral("%1 \u2026 %2");
  values_[P50]->setText(number(st.percentiles[2]));
  values_[P01]->setText(range.arg(number(st.percentiles[1]), number(st.percentiles[3])));
  values_[P999]->setText(range.arg(number(st.percentiles[0]), number(st.percentiles[4])));
  values_[P9999]->setText(number(st.percentiles[5]));
  auto share = [&](std::uint64_t n) {
    const double pct = st.count ? 100.0 * static_cast<double>(n) / static_cast<double>(st.count) : 0.0;
    return QStringLiteral("%1  (%2 %)").arg(n).arg(pct, 0, 'g', 3);
  };
  values_[Beyond3]->setText(share(st.beyond_3sigma));
  values_[Beyond6]->setText(share(st.beyond_6sigma));
  values_[OutlierIn]->setText(indexList(s.outlier_in));
  values_[OutlierOut]->setText(indexList(s.outlier_out));
  rule_->setText(outlierRule.isEmpty() ? QString() : tr("Outlier rule: %1").arg(outlierRule));
}

QString StatsPanel::text(Field f) const { return values_[static_cast<std::size_t>(f)]->text(); }

}  // namespace qs::ui
