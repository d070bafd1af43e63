#include "app/plan_document.h"

#include <QUndoCommand>
#include <algorithm>
#include <numeric>

#include "app/document.h"
#include "quant/layer_method.h"

namespace qs::app {
namespace {

// What a measurement is of: the config's format, method and params.
QString keyOf(const LayerConfig& c) { return QString::fromStdString(layer_config_key(c)); }

// `fields` of `value` over `c`.
LayerConfig withFields(LayerConfig c, unsigned fields, const LayerConfig& value) {
  if (fields & ui::kFormatField) c.format = value.format;
  if (fields & ui::kMethodField) c.method = value.method;
  if (fields & ui::kParamsField) c.params = value.params;
  return c;
}

// One undoable edit: `fields` of `value` for some layers (a mask of all fields
// with per-layer values for replacements). Undo restores each layer's own
// config and the preset; a repeat over the same layers and fields merges.
class SetLayerConfig final : public QUndoCommand {
 public:
  SetLayerConfig(PlanDocument* plan, QVector<int> layers, unsigned fields, QVector<LayerConfig> after, QString presetAfter,
                 const QString& text, bool mergeable)
      : QUndoCommand(text), plan_(plan), layers_(std::move(layers)), fields_(fields), after_(std::move(after)),
        presetAfter_(std::move(presetAfter)), presetBefore_(plan->preset()), mergeable_(mergeable) {
    for (int l : layers_) before_ << plan->configs()[static_cast<std::size_t>(l)];
  }
  void undo() override { plan_->assign(layers_, before_, presetBefore_); }
  void redo() override { plan_->assign(layers_, after_, presetAfter_); }
  int id() const override { return mergeable_ ? 0x51 : -1; }
  bool mergeWith(const QUndoCommand* other) override {
    const auto* o = dynamic_cast<const SetLayerConfig*>(other);
    if (!o || !o->mergeable_ || o->fields_ != fields_ || o->layers_ != layers_) return false;
    after_ = o->after_;
    presetAfter_ = o->presetAfter_;
    setText(o->text());
    return true;
  }

 private:
  PlanDocument* plan_;
  QVector<int> layers_;
  unsigned fields_;
  QVector<LayerConfig> before_, after_;
  QString presetAfter_, presetBefore_;
  bool mergeable_;
};

}  // namespace

PlanDocument::PlanDocument(Document* document) : ui::PlanSource(document), document_(document), undo_(new QUndoStack(this)) {
  connect(document_, &Document::layerMeasured, this, &PlanDocument::onMeasured);
  connect(document_, &Document::layerMeasureFailed, this, &PlanDocument::onMeasureFailed);
}

const ui::LayerFiguresState& PlanDocument::figures(int layer) const {
  static const ui::LayerFiguresState none;
  return layer >= 0 && static_cast<std::size_t>(layer) < figures_.size() ? figures_[static_cast<std::size_t>(layer)] : none;
}

Plan PlanDocument::plan() const { return model_ ? plan_from_configs(*model_, configs_, preset_.toStdString()) : Plan{}; }

void PlanDocument::reset(std::shared_ptr<const Model> model, const std::vector<LayerConfig>& configs, const QString& preset) {
  model_ = std::move(model);
  configs_ = configs;
  configs_.resize(model_ ? model_->layers.size() : 0);
  figures_.assign(configs_.size(), {});
  preset_ = preset;
  undo_->clear();
  emit layersReset();
  QVector<int> all(static_cast<qsizetype>(configs_.size()));
  std::iota(all.begin(), all.end(), 0);
  requestFigures(all);
}

void PlanDocument::setLayerConfig(const QVector<int>& layers, unsigned fields, const LayerConfig& value, const QString& text,
                                  bool mergeable) {
  QVector<int> changed;
  QVector<LayerConfig> after;
  for (int l : layers) {
    if (l < 0 || static_cast<std::size_t>(l) >= configs_.size()) continue;
    const LayerConfig c = withFields(configs_[static_cast<std::size_t>(l)], fields, value);
    if (c == configs_[static_cast<std::size_t>(l)]) continue;
    changed << l;
    after << c;
  }
  if (changed.isEmpty()) return;
  undo_->push(new SetLayerConfig(this, changed, fields, after, preset_, text, mergeable));
}

void PlanDocument::replaceConfigs(const std::vector<LayerConfig>& configs, const QString& preset, const QString& text) {
  QVector<int> layers;
  QVector<LayerConfig> after;
  for (std::size_t i = 0; i < configs_.size() && i < configs.size(); ++i) {
    layers << static_cast<int>(i);
    after << configs[i];
  }
  undo_->push(new SetLayerConfig(this, layers, ui::kAllFields, after, preset, text, false));
}

void PlanDocument::assign(const QVector<int>& layers, const QVector<LayerConfig>& values, const QString& preset) {
  const bool presetChanged = preset_ != preset;
  preset_ = preset;
  QVector<int> changed;
  for (qsizetype i = 0; i < layers.size() && i < values.size(); ++i) {
    const int l = layers[i];
    if (l < 0 || static_cast<std::size_t>(l) >= configs_.size()) continue;
    LayerConfig& c = configs_[static_cast<std::size_t>(l)];
    const bool measuredAgain = keyOf(c) != keyOf(values[i]);
    c = values[i];
    if (!measuredAgain) continue;
    figures_[static_cast<std::size_t>(l)] = {};
    changed << l;
  }
  // A preset applied over the same configs changes only the preset's name: said too (its combo follows).
  if (changed.isEmpty() && !presetChanged) return;
  emit configsChanged(changed);
  requestFigures(changed);
}

void PlanDocument::remeasureAll() {
  if (configs_.empty()) return;
  QVector<int> all(static_cast<qsizetype>(configs_.size()));
  std::iota(all.begin(), all.end(), 0);
  for (auto& f : figures_) f = {};
  emit configsChanged(all);
  requestFigures(all);
}

bool PlanDocument::allSettled() const {
  return std::none_of(figures_.begin(), figures_.end(),
                      [](const ui::LayerFiguresState& f) { return f.state == ui::LayerFiguresState::State::Pending; });
}

void PlanDocument::requestFigures(const QVector<int>& layers) {
  if (layers.isEmpty() || !model_) return;
  QVector<QPair<int, QString>> keyed;
  for (int l : layers) keyed.push_back({l, keyOf(configs_[static_cast<std::size_t>(l)])});
  // One edited cell: debounced, superseding; many (preset, allocation, apply): at once, with progress.
  document_->requestMeasurements(keyed, layers.size() == 1);
}

void PlanDocument::onMeasured(int layer, const QString& key, const LayerQuantError& m) {
  // An answer for a config the layer no longer has is dropped: a late answer never shows under a newer edit.
  if (layer < 0 || static_cast<std::size_t>(layer) >= configs_.size() || keyOf(configs_[static_cast<std::size_t>(layer)]) != key)
    return;
  figures_[static_cast<std::size_t>(layer)] = {ui::LayerFiguresState::State::Ready, m, {}};
  emit figuresChanged(layer);
  if (allSettled()) emit settled();
}

void PlanDocument::onMeasureFailed(int layer, const QString& key, const QString& message) {
  if (layer < 0 || static_cast<std::size_t>(layer) >= configs_.size() || keyOf(configs_[static_cast<std::size_t>(layer)]) != key)
    return;
  figures_[static_cast<std::size_t>(layer)] = {ui::LayerFiguresState::State::Failed, {}, message};
  emit figuresChanged(layer);
  if (allSettled()) emit settled();
}

}  // namespace qs::app
