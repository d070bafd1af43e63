#pragma once
// StatsPanel: the numbers behind the histogram for one tensor: what it is
// (name, shape, dtype), its moments and range, and its outlier channels.
#include <QString>
#include <QWidget>
#include <array>

class QLabel;

namespace qs {
struct TensorInfo;
struct LayerSummary;
}

namespace qs::ui {

class StatsPanel : public QWidget {
  Q_OBJECT
 public:
  enum Field {
    Name, Shape, DType, Elements,
    Finite, NanInf, Min, Max, Mean, Std, Kurtosis, AbsMax, P01, P50, P999, P9999, Beyond3, Beyond6,
    OutlierIn, OutlierOut,
    FieldCount
  };

  explicit StatsPanel(QWidget* parent = nullptr);

  // What the tensor is; clears the statistics (shown as "…" while pending).
  void setTensor(const TensorInfo& tensor);
  // The statistics of the tensor last given to setTensor. `outlierRule` says
  // which detector produced the outlier lists (e.g. "abs-max > 6 × median").
  void setSummary(const LayerSummary& summary, const QString& outlierRule);
  void setStatsMessage(const QString& message);  // "computing…", or an error
  void clear();

  QString text(Field f) const;

 private:
  void setStatsText(const QString& text);

  std::array<QLabel*, FieldCount> values_{};
  QLabel* rule_;
};

}  // namespace qs::ui
