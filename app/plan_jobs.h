#pragma once
// The plan editor's jobs: measuring layers under their planned formats (live
// feedback) and allocating formats to a bits/weight budget. Plain functions
// that own what they use, as the other jobs (app/jobs.h).
#include <QPromise>
#include <QString>
#include <QStringList>
#include <QVector>
#include <cstddef>
#include <memory>
#include <mutex>
#include <optional>
#include <vector>

#include "app/jobs.h"
#include "calib/calibration_file.h"
#include "quant/allocate.h"
#include "quant/int_grid.h"
#include "quant/measure.h"
#include "quant/quant_error_histogram.h"

namespace qs::app {

// The weight of the layer measured last, as F32, and the code buffers: live
// edits re-measure one layer again and again, and the conversion and fresh
// 100+ MiB allocations would cost more than the arithmetic.
struct MeasureScratch {
  // A device backend (set once, before any job) measures integer grids on F32/F16/BF16
  // weights itself, straight from the tensor's bytes; null or the CPU: the cached path below.
  std::shared_ptr<Backend> device;
  std::mutex mutex;
  std::shared_ptr<const Model> model;  // keeps the address unique while cached
  std::size_t tensor = static_cast<std::size_t>(-1);
  std::vector<float> weights;
  IntQuantized codes;
};

// Fills `scratch` with layer `layer`'s F32 copy ahead of an edit (the plan editor
// calls it when a row is selected), so that the first edit of a large layer
// does not wait for the conversion. Skips when the scratch is busy, already
// holds the layer, or a device backend measures from the bytes.
void warmMeasureScratch(std::shared_ptr<const Model> model, int layer, std::shared_ptr<MeasureScratch> scratch);

struct LayerMeasureRequest {
  int layer = -1;
  QString format;
  quint64 generation = 0;
};

struct LayerMeasureOutcome {
  int layer = -1;
  QString format;
  quint64 generation = 0;
  bool ok = false;
  LayerQuantError figures;
  QString error;           // when !ok
  bool cancelled = false;
};

// One layer (index into Model::layers) under `format`, the row's config key
// (quant/layer_method.h): a method other than plain RTN (clip, gptq, awq, or
// params) runs quantize_with_method with the input's statistics from `calib`
// (gptq/awq fail without them, saying so). Plain RTN: f32 (kept) costs its
// bits and no error; integer grids go through the fused rtn_int_measure_into
// on the global thread pool, or the scratch's device backend (same codes and
// figures as measure_quantization);
// every other format (ggml blocks, NF4, FP8, MXFP4, NVFP4, F16, BF16) through
// measure_quantization. With `calib` holding a Hessian for the layer's input,
// every format goes through quantize_dequantize instead (the output error
// needs the dequantized weight) and figures.rel_output_error gets
// tr(dW H dW^T) / tr(W H W^T); without one, the fast paths above as they are.
LayerMeasureOutcome measureLayer(std::shared_ptr<const Model> model, int layer, const QString& format,
                                 OpContext& ctx, MeasureScratch* scratch,
                                 const CalibrationFile* calib = nullptr);

// The requests in order, one result each as it is ready (none after a cancel).
void runMeasureLayers(QPromise<LayerMeasureOutcome>& promise, std::shared_ptr<const Model> model,
                      QVector<LayerMeasureRequest> requests, std::shared_ptr<JobControl> control,
                      std::shared_ptr<MeasureScratch> scratch, std::shared_ptr<const CalibrationFile> calib);

struct ErrorHistogramsOutcome {
  int layer = -1;
  QString format;
  quint64 generation = 0;
  std::shared_ptr<const QuantErrorHistograms> histograms;  // null on failure or cancel
  QString error;
  bool cancelled = false;
};

// The selected plan row's before/after/error histograms. `format` is the row's
// config key (quant/layer_method.h): plain RTN through quant_error_histograms,
// other methods run on the layer (with `calib`'s statistics when there are any).
// f32 (kept) has no round trip: an error that says so.
ErrorHistogramsOutcome runErrorHistograms(std::shared_ptr<const Model> model, int layer, QString format, int bins,
                                          quint64 generation, std::shared_ptr<JobControl> control,
                                          std::shared_ptr<const CalibrationFile> calib);

using CandidateCosts = std::vector<std::vector<CandidateCost>>;

struct AllocateOutcome {
  quint64 generation = 0;
  QStringList formats;
  double target = 0;
  std::shared_ptr<const CandidateCosts> costs;  // measured (or the cached ones passed in)
  std::shared_ptr<const Allocation> allocation; // null on failure or cancel
  QString error;
  bool cancelled = false;
};

// measure_candidates (unless `costs` already holds them for these formats) and allocate_to_budget.
// With `calib`, the candidates' costs are relative output errors (measure_candidates' hessians).
AllocateOutcome runAllocate(std::shared_ptr<const Model> model, QStringList formats, double target,
                            std::shared_ptr<const CandidateCosts> costs, quint64 generation,
                            std::shared_ptr<JobControl> control, std::shared_ptr<const CalibrationFile> calib);

}  // namespace qs::app
