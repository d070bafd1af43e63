#pragma once
// The plan being edited: each layer's config, the preset it came from, its
// undo stack (one SetLayerConfig command per edit, over any number of layers
// with a field mask, merging on repeat) and the figures of each layer's
// current config. The Document owns it; it asks the Document to measure every
// layer whose config changes and keeps the answers that are still current, so
// the plan editor's views read one place and nothing routes measurements.
#include <QUndoStack>

#include "widgets/plan_source.h"

namespace qs::app {

class Document;

class PlanDocument final : public ui::PlanSource {
  Q_OBJECT
 public:
  explicit PlanDocument(Document* document);

  std::shared_ptr<const Model> model() const override { return model_; }
  const std::vector<LayerConfig>& configs() const override { return configs_; }
  QString preset() const override { return preset_; }
  QUndoStack* undoStack() const override { return undo_; }
  const ui::LayerFiguresState& figures(int layer) const override;
  Plan plan() const override;
  void setLayerConfig(const QVector<int>& layers, unsigned fields, const LayerConfig& value, const QString& text,
                      bool mergeable = false) override;
  void replaceConfigs(const std::vector<LayerConfig>& configs, const QString& preset, const QString& text) override;

  // A new model (or none) with its starting configs: figures pending, history cleared, every layer measured.
  void reset(std::shared_ptr<const Model> model, const std::vector<LayerConfig>& configs, const QString& preset = {});
  // The calibration changed: every layer's figures are measured again.
  void remeasureAll();
  // No layer waits for figures.
  bool allSettled() const;

  // The commands' way in: configs of `layers` become `values`, the preset
  // `preset`; changed layers lose their figures and are measured.
  void assign(const QVector<int>& layers, const QVector<LayerConfig>& values, const QString& preset);

 signals:
  void settled();  // the last pending layer got its figures

 private:
  void onMeasured(int layer, const QString& key, const LayerQuantError& m);
  void onMeasureFailed(int layer, const QString& key, const QString& message);
  void requestFigures(const QVector<int>& layers);

  Document* document_;
  QUndoStack* undo_;
  std::shared_ptr<const Model> model_;
  std::vector<LayerConfig> configs_;
  std::vector<ui::LayerFiguresState> figures_;
  QString preset_;
};

}  // namespace qs::app
