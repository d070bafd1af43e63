#include "export_command.h"

#include <chrono>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "export/gguf_export.h"
#include "io/open_model.h"

namespace qs::cli {

int run_export(const ExportOptions& opt) {
  const auto ftype = parse_llama_ftype(opt.ftype);
  if (!ftype) {
    std::fprintf(stderr, "quantscope-cli: unknown file type '%s' (one of %s)\n", opt.ftype.c_str(), llama_ftype_names().c_str());
    return 2;
  }
  auto model = open_model(opt.path);
  if (!model) {
    std::fprintf(stderr, "quantscope-cli: %s\n", model.error().message.c_str());
    return 2;
  }
  const auto start = std::chrono::steady_clock::now();
  auto report = export_gguf(*model, opt.out, {*ftype}, OpContext::none());
  if (!report) {
    std::fprintf(stderr, "quantscope-cli: %s\n", report.error().message.c_str());
    return 1;
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (opt.json) {
    nlohmann::ordered_json out;
    out["source"] = model->path;
    out["output"] = opt.out;
    out["file_type"] = std::string(llama_ftype_name(*ftype));
    out["bytes"] = report->bytes;
    out["seconds"] = seconds;
    out["tensors"] = nlohmann::ordered_json::array();
    for (const auto& t : report->tensors)
      out["tensors"].push_back({{"name", t.name}, {"from", std::string(dtype_name(t.from))},
                                {"to", std::string(dtype_name(t.to))}, {"note", t.note}});
    std::printf("%s\n", out.dump(2).c_str());
    return 0;
  }
  for (const auto& t : report->tensors)
    std::printf("%-36s %-7s -> %-7s %s\n", t.name.c_str(), std::string(dtype_name(t.from)).c_str(),
                std::string(dtype_name(t.to)).c_str(), t.note.c_str());
  std::printf("wrote %s: %s, %llu bytes, %zu tensors in %.2f s\n", opt.out.c_str(),
              std::string(llama_ftype_name(*ftype)).c_str(), static_cast<unsigned long long>(report->bytes),
              report->tensors.size(), seconds);
  return 0;
}

}  // namespace qs::cli
