#include "util/memory_budget.h"

#include <unistd.h>

#include <cctype>
#include <cstdlib>

namespace qs {
namespace {

// "8G", "512m", "1T", "123456": bytes, or 0 when it does not parse.
std::uint64_t parse_size(const char* text) {
  if (!text || !std::isdigit(static_cast<unsigned char>(*text))) return 0;
  char* end = nullptr;
  const double v = std::strtod(text, &end);
  double scale = 1;
  switch (std::toupper(static_cast<unsigned char>(*end))) {
    case 'K': scale = 1024.0; ++end; break;
    case 'M': scale = 1024.0 * 1024; ++end; break;
    case 'G': scale = 1024.0 * 1024 * 1024; ++end; break;
    case 'T': scale = 1024.0 * 1024 * 1024 * 1024; ++end; break;
    default: break;
  }
  if (*end == 'B' || *end == 'b') ++end;
  if (*end != '\0' || !(v > 0) || v * scale > 1e18) return 0;
  return static_cast<std::uint64_t>(v * scale);
}

}  // namespace

std::uint64_t memory_budget() {
  if (const std::uint64_t set = parse_size(std::getenv("QS_MEMORY_BUDGET")); set > 0) return set;
  const long pages = ::sysconf(_SC_PHYS_PAGES), page = ::sysconf(_SC_PAGE_SIZE);
  if (pages <= 0 || page <= 0) return std::uint64_t{1} << 40;  // unknown: no smaller guess is better
  return static_cast<std::uint64_t>(0.9 * static_cast<double>(pages) * static_cast<double>(page));
}

Result<void> check_memory(double bytes, const std::string& what) {
  const std::uint64_t budget = memory_budget();
  if (bytes <= static_cast<double>(budget)) return {};
  const bool set = parse_size(std::getenv("QS_MEMORY_BUDGET")) > 0;
  return Error::unsupported(what + " needs " + std::to_string(static_cast<long long>(bytes / (1 << 20))) +
                            " MiB, more than the memory budget of " + std::to_string(budget >> 20) + " MiB (" +
                            (set ? "QS_MEMORY_BUDGET" : "90 % of this machine's memory; QS_MEMORY_BUDGET sets it") + ")");
}

}  // namespace qs
