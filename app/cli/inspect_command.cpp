#include "inspect_command.h"

#include <cinttypes>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "calib/device.h"
#include "eval_inputs.h"
#include "io/open_model.h"
#include "stats/layer_summary.h"

namespace qs::cli {
namespace {

std::string human_count(std::uint64_t n) {
  char buf[32];
  if (n >= 1'000'000'000) std::snprintf(buf, sizeof buf, "%.2f B", static_cast<double>(n) / 1e9);
  else if (n >= 1'000'000) std::snprintf(buf, sizeof buf, "%.2f M", static_cast<double>(n) / 1e6);
  else if (n >= 1'000) std::snprintf(buf, sizeof buf, "%.1f K", static_cast<double>(n) / 1e3);
  else std::snprintf(buf, sizeof buf, "%" PRIu64, n);
  return buf;
}

void print_arch(const Model& m) {
  const ArchInfo& a = m.arch;
  std::printf("%s  (%s)\n", m.path.c_str(), std::string(model_format_name(m.format)).c_str());
  if (a.known()) {
    std::printf("architecture  %s%s%s\n", a.model_type.empty() ? "?" : a.model_type.c_str(),
                a.architectures.empty() ? "" : " / ", a.architectures.empty() ? "" : a.architectures[0].c_str());
  }
  if (a.hidden_size > 0) {
    std::printf("hidden %" PRId64 ", intermediate %" PRId64 ", layers %" PRId64 ", heads %" PRId64 " (kv %" PRId64
                "), head_dim %" PRId64 ", vocab %" PRId64 "\n",
                a.hidden_size, a.intermediate_size, a.num_layers, a.num_heads, a.num_kv_heads, a.head_dim, a.vocab_size);
    std::printf("rms_norm_eps %g, rope_theta %g%s%s, tied embeddings %s, dtype %s\n", a.rms_norm_eps, a.rope.theta,
                a.rope.scaling_type.empty() ? "" : ", rope scaling ", a.rope.scaling_type.c_str(),
                a.tie_word_embeddings ? "yes" : "no", a.torch_dtype.empty() ? "?" : a.torch_dtype.c_str());
  } else if (!a.known()) {
    std::printf("architecture  unknown (no config.json): tensors listed flat\n");
  }
  std::printf("%zu tensors, %s parameters, %.2f MiB in %zu file(s); %zu linear layers in %d blocks\n\n",
              m.tensors.size(), human_count(m.parameter_count()).c_str(),
              static_cast<double>(m.weight_bytes()) / (1024.0 * 1024.0), m.weight_files.size(), m.layers.size(),
              m.block_count());
}

}  // namespace

int run_inspect(const InspectOptions& opt) {
  auto model = open_model(opt.path);
  if (!model) {
    std::fprintf(stderr, "quantscope-cli: %s\n", model.error().message.c_str());
    return 2;
  }
  std::shared_ptr<Backend> backend;
  if (opt.stats) {
    auto b = make_backend(opt.backend);
    if (!b) {
      std::fprintf(stderr, "quantscope-cli: %s\n", b.error().message.c_str());
      return 2;
    }
    backend = *b;
  }

  nlohmann::ordered_json out;
  if (opt.json) {
    const ArchInfo& a = model->arch;
    out["path"] = model->path;
    out["format"] = std::string(model_format_name(model->format));
    out["backend"] = backend ? backend->description() : "none";
    out["architecture"] = {{"model_type", a.model_type}, {"hidden_size", a.hidden_size},
                           {"intermediate_size", a.intermediate_size}, {"num_layers", a.num_layers},
                           {"num_heads", a.num_heads}, {"num_kv_heads", a.num_kv_heads}, {"head_dim", a.head_dim},
                           {"vocab_size", a.vocab_size}, {"rms_norm_eps", a.rms_norm_eps},
                           {"rope_theta", a.rope.theta}, {"rope_scaling", a.rope.scaling_type},
                           {"tie_word_embeddings", a.tie_word_embeddings}};
    out["tensor_count"] = model->tensors.size();
    out["parameters"] = model->parameter_count();
    out["weight_bytes"] = model->weight_bytes();
    out["outlier_rule"] = "channel abs-max > " + std::to_string(opt.outlier_k) + " x median";
    out["layers"] = nlohmann::ordered_json::array();
  } else {
    print_arch(*model);
    if (backend) std::printf("statistics on %s; outliers: input channels with abs-max > %g x median\n\n",
                             backend->description().c_str(), opt.outlier_k);
    std::printf("%-44s %-6s %5s %-14s %-6s %9s", "layer", "role", "block", "shape", "dtype", "params");
    if (opt.stats) std::printf(" %11s %11s %10s %9s %8s", "min", "max", "std", "kurtosis", "outliers");
    std::printf("\n");
  }

  for (const Layer& layer : model->layers) {
    const TensorInfo& w = model->tensors[layer.weight];
    std::optional<LayerSummary> sum;
    if (backend) {
      auto s = summarize_tensor(*backend, w, OpContext::none(), opt.outlier_k);
      if (!s) {
        std::fprintf(stderr, "quantscope-cli: %s: %s\n", w.where().c_str(), s.error().message.c_str());
        return exit_code_of(s.error());
      }
      sum = std::move(*s);
    }
    if (opt.json) {
      nlohmann::ordered_json l = {{"name", layer.name}, {"role", std::string(layer_role_name(layer.role))},
                                  {"block", layer.block}, {"shape", w.shape},
                                  {"dtype", std::string(dtype_name(w.dtype))}, {"params", w.numel()},
                                  {"has_bias", layer.bias.has_value()}};
      if (sum) {
        const TensorStats& st = sum->stats;
        l["min"] = st.min; l["max"] = st.max; l["mean"] = st.mean; l["std"] = st.std;
        l["kurtosis"] = st.kurtosis; l["nan"] = st.nan; l["inf"] = st.inf;
        l["outlier_in_channels"] = sum->outlier_in;
        l["outlier_out_channels"] = sum->outlier_out;
      }
      out["layers"].push_back(std::move(l));
    } else {
      std::string name = layer.name;
      if (name.size() > 44) name = "…" + name.substr(name.size() - 42);
      std::printf("%-44s %-6s %5s %-14s %-6s %9s", name.c_str(), std::string(layer_role_name(layer.role)).c_str(),
                  layer.block >= 0 ? std::to_string(layer.block).c_str() : "-", w.shape_string().c_str(),
                  std::string(dtype_name(w.dtype)).c_str(), human_count(w.numel()).c_str());
      if (sum) std::printf(" %11.4g %11.4g %10.4g %9.2f %8zu", sum->stats.min, sum->stats.max, sum->stats.std,
                           sum->stats.kurtosis, sum->outlier_in.size());
      std::printf("\n");
    }
  }
  if (opt.json) std::printf("%s\n", out.dump(2).c_str());
  return 0;
}

}  // namespace qs::cli
