#include "compare_command.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "calib/kl_divergence.h"
#include "eval_inputs.h"
#include "forward_backend.h"
#include "io/open_model.h"

namespace qs::cli {
namespace {

struct Row {
  std::string file;
  std::uint64_t bytes = 0, tensor_bytes = 0, elements = 0;
  ModelComparison r;
  double bits_per_weight() const { return elements ? 8.0 * static_cast<double>(tensor_bytes) / static_cast<double>(elements) : 0; }
};

// The file's size on disk: a file, or the files of a directory (one level, as an HF checkpoint).
std::uint64_t size_on_disk(const std::string& path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (fs::is_regular_file(path, ec)) return fs::file_size(path, ec);
  std::uint64_t n = 0;
  for (const auto& e : fs::directory_iterator(path, ec))
    if (e.is_regular_file(ec)) n += e.file_size(ec);
  return n;
}

}  // namespace

int run_compare(const CompareOptions& opt) {
  if (opt.files.empty()) return cli_fail("compare: give the quantized files after the reference", 2);
  int exit_code = 0;
  auto in = load_eval_inputs(opt.reference, opt.text, opt.ctx, opt.chunks, exit_code);
  if (!in) return exit_code;
  auto run_ref = pick_forward_runner(*in->lm, in->ids, opt.ctx, opt.backend);
  if (!run_ref) return cli_fail(run_ref.error().message, 2);
  std::vector<Row> rows;
  for (const std::string& file : opt.files) {
    auto model = open_model(file);
    if (!model) return cli_fail(model.error().message, 2);
    auto lm = LlamaModel::load(*model);
    if (!lm) return cli_fail(file + ": " + lm.error().message, 2);
    if (lm->config().vocab != in->lm->config().vocab)
      return cli_fail(file + ": a vocabulary of " + std::to_string(lm->config().vocab) + " tokens, the reference's has " +
                          std::to_string(in->lm->config().vocab) + ": not a quantization of the same model",
                      2);
    auto run_q = pick_forward_runner(*lm, in->ids, opt.ctx, opt.backend);
    if (!run_q) return cli_fail(run_q.error().message, 2);
    auto r = compare_models(**run_ref, **run_q, in->lm->config(), in->ids, in->chunking);
    if (!r) return cli_fail(file + ": " + r.error().message, 2);
    Row row{file, size_on_disk(file), 0, 0, *r};
    for (const TensorInfo& t : model->tensors) {
      row.tensor_bytes += t.nbytes;
      row.elements += static_cast<std::uint64_t>(t.numel());
    }
    rows.push_back(std::move(row));
  }
  std::stable_sort(rows.begin(), rows.end(), [](const Row& a, const Row& b) { return a.bytes < b.bytes; });
  const double ref_ppl = rows.front().r.reference.ppl;
  if (opt.json) {
    nlohmann::ordered_json list = nlohmann::ordered_json::array();
    for (const Row& w : rows)
      list.push_back({{"file", w.file},
                      {"bytes", w.bytes},
                      {"bits_per_weight", w.bits_per_weight()},
                      {"perplexity", w.r.quantized.ppl},
                      {"perplexity_error", w.r.quantized.ppl_error},
                      {"mean_kld", w.r.mean_kld},
                      {"kld_error", w.r.kld_error},
                      {"median_kld", w.r.median_kld},
                      {"max_kld", w.r.max_kld},
                      {"same_top_token", w.r.top1_agreement}});
    nlohmann::ordered_json j = {{"reference", opt.reference},
                                {"text", opt.text},
                                {"ctx", opt.ctx},
                                {"chunks", rows.front().r.reference.chunks},
                                {"tokens_scored", rows.front().r.reference.tokens_scored},
                                {"reference_perplexity", ref_ppl},
                                {"files", list}};
    std::printf("%s\n", j.dump(2).c_str());
    return 0;
  }
  std::printf("reference: %s, perplexity %.4f on %s (%d chunks of %d, %lld tokens scored)\n\n", opt.reference.c_str(),
              ref_ppl, opt.text.c_str(), rows.front().r.reference.chunks, opt.ctx,
              static_cast<long long>(rows.front().r.reference.tokens_scored));
  std::printf("%12s %8s %10s %22s %9s  %s\n", "bytes", "bits/w", "perplexity", "KLD (mean +/- err)", "same top", "file");
  for (const Row& w : rows)
    std::printf("%12llu %8.3f %10.4f %12.6f +/- %.6f %8.2f%%  %s\n", static_cast<unsigned long long>(w.bytes),
                w.bits_per_weight(), w.r.quantized.ppl, w.r.mean_kld, w.r.kld_error, 100.0 * w.r.top1_agreement,
                w.file.c_str());
  return 0;
}

}  // namespace qs::cli
