#pragma once
// The plan being edited, as the plan editor reads and edits it. The app's
// document owns it: each layer's config, the preset it came from, the undo
// stack and the figures measured for each layer's config. The editor's table
// model and views read it and ask it for edits (each one undo step); they
// hold no plan of their own.
#include <QObject>
#include <QString>
#include <QVector>
#include <memory>
#include <vector>

#include "model/model.h"
#include "quant/measure.h"
#include "quant/plan.h"

class QUndoStack;

namespace qs::ui {

// Which fields of a LayerConfig an edit sets (the others stay each layer's own).
enum LayerField : unsigned { kFormatField = 1u, kMethodField = 2u, kParamsField = 4u, kAllFields = 7u };

// The figures of one layer's current config.
struct LayerFiguresState {
  enum class State { Pending, Ready, Failed };
  State state = State::Pending;
  LayerQuantError m;  // when Ready
  QString error;      // when Failed
};

class PlanSource : public QObject {
  Q_OBJECT
 public:
  using QObject::QObject;

  virtual std::shared_ptr<const Model> model() const = 0;  // null: no model open
  virtual const std::vector<LayerConfig>& configs() const = 0;  // Model::layers order
  virtual QString preset() const = 0;
  virtual QUndoStack* undoStack() const = 0;
  virtual const LayerFiguresState& figures(int layer) const = 0;
  // The plan the configs make: the most common config as the default and one
  // override by exact name for every layer that differs.
  virtual Plan plan() const = 0;

  // One undo step: `fields` of `value` given to every layer of `layers`.
  // `mergeable` (a cell edit): an edit of the same fields of the same layers
  // right after a mergeable one joins it (stepping through a cell's choices is one step).
  virtual void setLayerConfig(const QVector<int>& layers, unsigned fields, const LayerConfig& value, const QString& text,
                              bool mergeable = false) = 0;
  // One undo step: every layer's config (a preset, an opened plan, an allocation).
  virtual void replaceConfigs(const std::vector<LayerConfig>& configs, const QString& preset, const QString& text) = 0;

 signals:
  void layersReset();                             // another model, or none: everything changed
  void configsChanged(const QVector<int>& layers);  // their configs changed (and their figures are pending)
  void figuresChanged(int layer);
};

}  // namespace qs::ui
