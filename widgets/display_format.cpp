#include "widgets/display_format.h"

#include <QStringList>
#include <cmath>

namespace qs::ui {

QString humanCount(std::uint64_t n) {
  const double d = static_cast<double>(n);
  if (n >= 1'000'000'000ULL) return QString::asprintf("%.2f B", d / 1e9);
  if (n >= 1'000'000ULL) return QString::asprintf("%.2f M", d / 1e6);
  if (n >= 1'000ULL) return QString::asprintf("%.1f K", d / 1e3);
  return QString::number(n);
}

QString humanBytes(std::uint64_t bytes) {
  const double d = static_cast<double>(bytes);
  if (bytes >= 1024ULL * 1024ULL * 1024ULL) return QString::asprintf("%.2f GiB", d / (1024.0 * 1024.0 * 1024.0));
  if (bytes >= 1024ULL * 1024ULL) return QString::asprintf("%.1f MiB", d / (1024.0 * 1024.0));
  if (bytes >= 1024ULL) return QString::asprintf("%.1f KiB", d / 1024.0);
  return QString::asprintf("%llu B", static_cast<unsigned long long>(bytes));
}

QString number(double v) {
  if (std::isnan(v)) return QStringLiteral("nan");
  if (std::isinf(v)) return v > 0 ? QStringLiteral("inf") : QStringLiteral("-inf");
  return QString::asprintf("%.4g", v);
}

QString shapeText(const std::vector<std::int64_t>& shape) {
  QStringList dims;
  for (auto d : shape) dims << QString::number(d);
  return QLatin1Char('[') + dims.join(QStringLiteral(", ")) + QLatin1Char(']');
}

QString fromStd(std::string_view s) { return QString::fromUtf8(s.data(), static_cast<qsizetype>(s.size())); }

QString indexList(const std::vector<std::size_t>& indices, std::size_t shown) {
  if (indices.empty()) return QStringLiteral("none");
  QStringList first;
  for (std::size_t i = 0; i < indices.size() && i < shown; ++i) first << QString::number(indices[i]);
  if (indices.size() > shown) first << QStringLiteral("…");
  return QStringLiteral("%1  (%2)").arg(indices.size()).arg(first.join(QStringLiteral(", ")));
}

}  // namespace qs::ui
