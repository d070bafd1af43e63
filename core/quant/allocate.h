#pragma once
// Mixed precision by measured sensitivity: given candidate formats and a
// target average bits per weight, choose one format per layer so that the
// summed squared weight error is smallest (the output error with H = I;
// with calibration the same search takes output errors). Lagrangian
// relaxation: for a price lambda per bit every layer independently picks
// argmin error + lambda * bits; lambda is bisected until the average meets
// the budget. Each lambda's choice is a point of the error/size Pareto front.
#include <string>
#include <vector>

#include "model/model.h"
#include "quant/plan.h"
#include "util/op_context.h"
#include "util/result.h"

namespace qs {

struct CandidateCost {
  std::string format;  // the candidate as a layer config key: "q4_0", "q4_k+clip", "int4-g128+gptq(act_order=1)"
  double bits_per_weight = 0;
  // The error the allocation sums: without calibration the squared weight error
  // (sum over the layer's weights); with it, relative (see measure_candidates).
  double squared_error = 0;
};

// Every candidate that fits each layer, measured; Model::layers order. A
// candidate is a format ("q4_k") or a format with a method and its params as
// a layer config key (quant/layer_method.h: "q4_0+clip",
// "int4-g128+gptq(act_order=1,static_groups=1)"); methods that need a Hessian
// or mean |x| need `hessians` / `x_mean_abs` (one per layer; a layer without
// them gets no such candidate, the embedding and head get RTN).
// Layers no candidate fits get an empty list. `hessians` (optional, one per
// layer, nullptr where the layer's input has none): with it every cost is a
// relative error, tr(dW H dW^T) / tr(W H W^T) where H is known and
// ||dW||^2 / ||W||^2 elsewhere, so that the allocation minimises the summed
// relative output error (what the plan editor's totals show when calibrated).
Result<std::vector<std::vector<CandidateCost>>> measure_candidates(const Model& model,
                                                                   const std::vector<std::string>& candidates,
                                                                   OpContext& ctx,
                                                                   const std::vector<const float*>* hessians = nullptr,
                                                                   const std::vector<const float*>* x_mean_abs = nullptr);

struct ParetoPoint {
  double bits_per_weight = 0;  // average over the layers that have candidates
  double squared_error = 0;
};

struct Allocation {
  Plan plan;                      // base: the most chosen format; one override per layer that differs
  double bits_per_weight = 0;     // achieved average (over the fixed part too, when given)
  double squared_error = 0;
  std::vector<ParetoPoint> pareto;  // lambda sweep, from most bits to fewest
  std::vector<std::string> fixed;   // layers no candidate fits: "f16" in the plan (in the average through FixedPart)
  std::vector<std::string> chosen;  // per layer, the candidate key chosen ("" for the fixed ones); the plan resolves to it
};

// What the target file holds besides the layers that have candidates: norms,
// copied tensors, layers no candidate fits (kept in F16). With it the budget
// is over every weight the file writes (the size account), not just the
// allocated layers.
struct FixedPart {
  double bits = 0;     // their storage, in bits
  double weights = 0;  // their element count
};

// `costs` from measure_candidates. Fails when even the cheapest choice exceeds
// the budget, naming the smallest budget that can be met.
Result<Allocation> allocate_to_budget(const Model& model, const std::vector<std::vector<CandidateCost>>& costs,
                                      double target_bits_per_weight, const FixedPart& fixed = {});

}  // namespace qs
