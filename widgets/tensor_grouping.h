#pragma once
// How the layer tree groups a model's tensors for display: "Embedding & head"
// (everything outside blocks), then "Block 0".."Block N-1" with every tensor of
// that block (linear layers and norms). Models without blocks are one flat list.
// Display-only: the core's Layer list stays the source of roles and blocks.
#include <QString>
#include <cstddef>
#include <vector>

namespace qs {
struct Model;
}

namespace qs::ui {

struct TensorRow {
  std::size_t tensor = 0;  // index into Model::tensors
  QString shortName;       // name within its block ("mlp.down_proj.weight"), "model." dropped outside
  QString role;            // "q", "down", "norm", "down bias", or empty
};

struct TensorGroup {
  QString title;  // empty for the flat list of a model without blocks
  int block = -1;
  std::vector<TensorRow> rows;
};

std::vector<TensorGroup> groupTensors(const Model& model);

}  // namespace qs::ui
