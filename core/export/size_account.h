#pragma once
// The size account of an allocation's target file: what the file holds
// besides the layers the allocation chooses formats for (norms, copied
// tensors, the layers no candidate fits), so that a bits/weight budget is over
// every weight the file writes. One function for the CLI's `plan --budget`
// and the GUI's "Allocate to budget", so both meet the same budget.
#include <string>
#include <vector>

#include "model/model.h"
#include "quant/allocate.h"

namespace qs {

struct AccountedFixedPart {
  FixedPart fixed;
  bool gguf = false;  // from the GGUF export's own layout; else the model's tensors as stored
  std::string why;    // why not GGUF
};

// `costs` from measure_candidates (Model::layers order). For a model that
// converts to GGUF, with candidates GGUF holds: the GGUF file with every
// candidate layer taken out (the rest at the types the export writes, the
// layers without candidates as F16, as the allocation's plan keeps them).
// Otherwise (and `why` says why) the model's own tensors as stored, the
// layers without candidates at 16 bits.
AccountedFixedPart allocation_fixed_part(const Model& model, const std::vector<std::vector<CandidateCost>>& costs);

}  // namespace qs
