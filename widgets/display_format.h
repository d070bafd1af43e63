#pragma once
// How numbers reach the user: one place, so the tree, the stats panel and the
// status bar write counts, sizes and statistics the same way.
#include <QString>
#include <cstdint>
#include <string_view>
#include <vector>

namespace qs::ui {

// Parameter / element counts: "812", "65.5 K", "1.23 M", "7.24 B".
QString humanCount(std::uint64_t n);
// Byte sizes in MiB with the unit: "12.4 MiB" (KiB below one MiB).
QString humanBytes(std::uint64_t bytes);
// A statistic: %.4g, with "nan"/"inf" spelled out rather than printf's platform text.
QString number(double v);
// "[688, 256]"
QString shapeText(const std::vector<std::int64_t>& shape);
QString fromStd(std::string_view s);
// "3 (12, 87, 200, …)": a count and the first few indices of a channel list.
QString indexList(const std::vector<std::size_t>& indices, std::size_t shown = 6);

}  // namespace qs::ui
