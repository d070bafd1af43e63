#include "widgets/tensor_grouping.h"

#include <QHash>
#include <algorithm>
#include <map>

#include "model/model.h"
#include "widgets/display_format.h"

namespace qs::ui {

namespace {

QString roleOf(const Model& model, std::size_t tensor, const std::vector<int>& layerOfTensor, bool& isBias) {
  isBias = false;
  if (const int l = layerOfTensor[tensor]; l >= 0) {
    const Layer& layer = model.layers[static_cast<std::size_t>(l)];
    isBias = layer.bias && *layer.bias == tensor;
    return fromStd(layer_role_name(layer.role)) + (isBias ? QStringLiteral(" bias") : QString());
  }
  if (is_norm_tensor(model.tensors[tensor].name)) return QStringLiteral("norm");
  return {};
}

// Position of a tensor within its group in forward-pass order: files store
// tensors alphabetically, but users read a block as norm, q, k, v, o, norm,
// gate, up, down (and the outside group as embed, final norm, lm_head).
int forwardRank(const TensorRow& row, bool inBlock) {
  const QString role = row.role.section(QLatin1Char(' '), 0, 0);  // "down bias" ranks with "down"
  if (role == QLatin1String("norm")) {
    if (!inBlock) return 10;  // the final norm, just before lm_head
    const bool first = row.shortName.startsWith(QLatin1String("input")) || row.shortName.startsWith(QLatin1String("attn_norm"));
    return first ? 1 : 6;  // input/attention norm, else the one before the MLP
  }
  static const QHash<QString, int> rank{{QStringLiteral("embed"), 0}, {QStringLiteral("q"), 2},
                                        {QStringLiteral("k"), 3},     {QStringLiteral("v"), 4},
                                        {QStringLiteral("o"), 5},     {QStringLiteral("gate"), 7},
                                        {QStringLiteral("up"), 8},    {QStringLiteral("down"), 9},
                                        {QStringLiteral("lm_head"), 11}};
  return rank.value(role, 12);  // anything else keeps file order at the end
}

void sortForward(std::vector<TensorRow>& rows, bool inBlock) {
  std::stable_sort(rows.begin(), rows.end(), [inBlock](const TensorRow& a, const TensorRow& b) {
    return forwardRank(a, inBlock) < forwardRank(b, inBlock);
  });
}

}  // namespace

std::vector<TensorGroup> groupTensors(const Model& model) {
  // Which Layer (if any) each tensor belongs to, as weight or bias.
  std::vector<int> layerOfTensor(model.tensors.size(), -1);
  for (std::size_t l = 0; l < model.layers.size(); ++l) {
    const Layer& layer = model.layers[l];
    if (layer.weight < layerOfTensor.size()) layerOfTensor[layer.weight] = static_cast<int>(l);
    if (layer.bias && *layer.bias < layerOfTensor.size()) layerOfTensor[*layer.bias] = static_cast<int>(l);
  }

  TensorGroup outside{QStringLiteral("Embedding & head"), -1, {}};
  std::map<int, TensorGroup> blocks;  // ordered by block index
  for (std::size_t i = 0; i < model.tensors.size(); ++i) {
    const QString name = QString::fromStdString(model.tensors[i].name);
    bool isBias = false;
    TensorRow row{i, name, roleOf(model, i, layerOfTensor, isBias)};
    int block = layerOfTensor[i] >= 0 ? model.layers[static_cast<std::size_t>(layerOfTensor[i])].block : -1;
    std::string_view rest;
    const int nameBlock = tensor_block(model.tensors[i].name, &rest);
    if (block < 0) block = nameBlock;
    if (block >= 0) {
      if (nameBlock == block) row.shortName = QString::fromUtf8(rest.data(), static_cast<qsizetype>(rest.size()));
      auto [it, inserted] = blocks.try_emplace(block);
      if (inserted) it->second = TensorGroup{QStringLiteral("Block %1").arg(block), block, {}};
      it->second.rows.push_back(std::move(row));
    } else {
      // HF checkpoints prefix everything with "model."; inside a group it only adds width.
      if (row.shortName.startsWith(QLatin1String("model."))) row.shortName = row.shortName.mid(6);
      outside.rows.push_back(std::move(row));
    }
  }

  std::vector<TensorGroup> groups;
  if (blocks.empty()) {
    outside.title.clear();  // no blocks: a flat list, no "Embedding & head" heading
    groups.push_back(std::move(outside));
    return groups;
  }
  if (!outside.rows.empty()) {
    sortForward(outside.rows, false);
    groups.push_back(std::move(outside));
  }
  for (auto& [b, g] : blocks) {
    sortForward(g.rows, true);
    groups.push_back(std::move(g));
  }
  return groups;
}

}  // namespace qs::ui
