#include "measure_command.h"

#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "eval_inputs.h"
#include "io/open_model.h"
#include "model/convert.h"
#include "quant/measure.h"

namespace qs::cli {

int run_measure(const MeasureOptions& opt) {
  std::vector<QuantChoice> choices;
  for (const auto& f : opt.formats) {
    auto c = parse_quant_choice(f);
    if (!c) {
      std::fprintf(stderr, "quantscope-cli: %s\n", c.error().message.c_str());
      return 2;
    }
    c->name = f;  // reported under the spelling asked for ("int4", not "int4-g128": scripts key on it)
    choices.push_back(std::move(*c));
  }
  auto model = open_model(opt.path);
  if (!model) {
    std::fprintf(stderr, "quantscope-cli: %s\n", model.error().message.c_str());
    return 2;
  }

  struct Totals {
    double err = 0, ref = 0, bits = 0;
    std::uint64_t params = 0;
    int measured = 0, skipped = 0;
  };
  std::vector<Totals> totals(choices.size());
  nlohmann::ordered_json out;
  out["path"] = model->path;
  out["layers"] = nlohmann::ordered_json::array();
  if (!opt.json) {
    std::printf("%-44s %-14s", "layer", "shape");
    for (const auto& c : choices) std::printf(" | %-26s", (c.name + ": bits  SQNR dB  max err").c_str());
    std::printf("\n");
  }
  // A tensor this machine cannot hold as F32 is refused before any format tries it
  // (a measurement skipped per format would read as a shape the format does not take).
  for (const Layer& layer : model->layers)
    if (auto fits = check_f32_memory(model->tensors[layer.weight], 2); !fits) {
      std::fprintf(stderr, "quantscope-cli: %s\n", fits.error().message.c_str());
      return 2;
    }
  for (const Layer& layer : model->layers) {
    const TensorInfo& t = model->tensors[layer.weight];
    nlohmann::ordered_json jl = {{"name", layer.name}, {"shape", t.shape}};
    if (!opt.json) {
      std::string name = layer.name.size() > 44 ? "…" + layer.name.substr(layer.name.size() - 42) : layer.name;
      std::printf("%-44s %-14s", name.c_str(), t.shape_string().c_str());
    }
    for (std::size_t i = 0; i < choices.size(); ++i) {
      auto m = measure_quantization(t, choices[i], OpContext::none());
      if (!m) {
        if (m.error().code != ErrorCode::Unsupported) {
          std::fprintf(stderr, "quantscope-cli: %s\n", m.error().message.c_str());
          return exit_code_of(m.error());
        }
        ++totals[i].skipped;
        jl[choices[i].name] = {{"skipped", m.error().message}};
        if (!opt.json) std::printf(" | %-26s", "n/a (shape)");
        continue;
      }
      const double ref_energy = static_cast<double>(t.numel()) * m->error.mse * std::pow(10.0, m->error.sqnr_db / 10.0);
      Totals& tot = totals[i];
      ++tot.measured;
      tot.err += static_cast<double>(t.numel()) * m->error.mse;
      tot.ref += ref_energy;
      tot.bits += m->bits_per_weight * static_cast<double>(t.numel());
      tot.params += t.numel();
      jl[choices[i].name] = {{"bits_per_weight", m->bits_per_weight}, {"sqnr_db", m->error.sqnr_db},
                             {"mse", m->error.mse}, {"max_abs_error", m->error.max_abs}, {"ms", m->milliseconds}};
      if (!opt.json) std::printf(" | %5.3f  %7.2f  %9.3g   ", m->bits_per_weight, m->error.sqnr_db, m->error.max_abs);
    }
    if (!opt.json) std::printf("\n");
    out["layers"].push_back(std::move(jl));
  }
  out["totals"] = nlohmann::ordered_json::object();
  for (std::size_t i = 0; i < choices.size(); ++i) {
    const Totals& t = totals[i];
    const double sqnr = t.err > 0 ? 10.0 * std::log10(t.ref / t.err) : INFINITY;
    const double bpw = t.params ? t.bits / static_cast<double>(t.params) : 0.0;
    out["totals"][choices[i].name] = {{"layers_measured", t.measured}, {"layers_skipped", t.skipped},
                                      {"bits_per_weight", bpw}, {"sqnr_db", sqnr},
                                      {"mib", t.bits / 8.0 / (1024.0 * 1024.0)}};
    if (opt.json) continue;
    const std::string skipped = t.skipped ? ", " + std::to_string(t.skipped) + " skipped (shape)" : "";
    if (t.measured == 0)
      std::printf("\n%s: no layer has a shape this format takes%s", choices[i].name.c_str(), skipped.c_str());
    else
      std::printf("\n%s: %d layers, %.3f bits/weight (%.2f MiB), SQNR %.2f dB over them%s", choices[i].name.c_str(),
                  t.measured, bpw, t.bits / 8.0 / (1024.0 * 1024.0), sqnr, skipped.c_str());
  }
  if (opt.json) std::printf("%s\n", out.dump(2).c_str());
  else std::printf("\n");
  return 0;
}

}  // namespace qs::cli
