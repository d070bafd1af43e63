#include "app/plan_jobs.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <limits>
#include <new>

#include "backend/thread_pool.h"
#include "model/convert.h"
#include "model/dtype.h"
#include "export/size_account.h"
#include "quant/capability.h"
#include "quant/layer_method.h"
#include "quant/method_table.h"

namespace qs::app {

namespace {

// f32 is stored as it is; f16/bf16 are measured (rounding an F32 checkpoint loses something).
bool keptFormat(const QString& f, double& bits) {
  auto c = parse_quant_choice(f.toStdString());
  if (!c || !c->keeps_precision() || c->gguf_type() != DType::F32) return false;
  bits = c->bits_per_weight(1, 1);
  return true;
}

// Plain RTN without params: the fused measurement paths below take it.
bool plainRtn(const LayerConfig& c) {
  return find_method(c.method) == &method_row(MethodId::Rtn) && c.params.empty();
}

// The calibration Hessian of `l`'s input, when `calib` has one of the right size.
const float* layerHessian(const CalibrationFile* calib, const Layer& l, std::int64_t cols) {
  if (!calib) return nullptr;
  const InputStats* s = calib->run.capture.find_for(l.role, l.block);
  if (!s || s->cols != cols || s->hessian.size() != static_cast<std::size_t>(cols * cols)) return nullptr;
  return s->hessian.data();
}

// The calibration statistics of `l`'s input for the methods (H, mean |x|), when `calib` has them.
LayerInputStats layerStats(const CalibrationFile* calib, const Layer& l, std::int64_t cols) {
  LayerInputStats st;
  st.h = layerHessian(calib, l, cols);
  if (st.h) {
    const InputStats* s = calib->run.capture.find_for(l.role, l.block);
    if (s && s->mean_abs.size() == static_cast<std::size_t>(cols)) st.x_mean_abs = s->mean_abs.data();
  }
  return st;
}

// A row whose method is not plain RTN: the method itself on the layer (clip, GPTQ, AWQ),
// with the input's statistics when calibrated.
Result<LayerMethodResult> runMethod(const Model& model, const Layer& l, const LayerConfig& config,
                                    const CalibrationFile* calib, OpContext& ctx, std::vector<float>& w) {
  const TensorInfo& t = model.tensors[l.weight];
  if (t.channels_last) return Error::unsupported(t.name + ": channels-last (Keras) kernels are not quantized yet");
  auto choice = parse_quant_choice(config.format);
  if (!choice) return choice.error();
  if (auto fits = check_f32_memory(t, 2); !fits) return fits.error();
  try {  // a size no check foresaw is this row's error, not the application's end
    w.resize(static_cast<std::size_t>(t.numel()));
    if (auto r = tensor_to_f32(t, w.data()); !r) return Error::unsupported(t.name + ": " + r.error().message);
    auto r = quantize_with_method(w.data(), t.rows(), t.cols(), *choice, config, layerStats(calib, l, t.cols()), ctx);
    if (!r) return Error{r.error().code, t.name + ": " + r.error().message};
    return r;
  } catch (const std::bad_alloc&) {
    return Error::unsupported(t.where() + ": out of memory measuring this layer (QS_MEMORY_BUDGET)");
  }
}

// What is stored for `config` on `l`: a ggml format is what llama.cpp
// stores, so on rows that are not whole blocks the GGUF export (and `eval`,
// `measure --plan`) write llama-quantize's fallback type; that is what the
// editor measures and shows, with `applied` and `note` saying so.
LayerConfig storedConfig(const Layer& l, std::int64_t cols, LayerConfig config, std::string& applied, std::string& note) {
  config = config_for_layer(l, std::move(config));
  auto f = parse_quant_choice(config.format);
  if (!f) return config;  // the measurement reports it
  auto stored = stored_layer(*f, config, cols);
  if (!stored || stored->note.empty()) return config;
  applied = stored->format.name;
  note = stored->note;
  return stored->config;
}

// The measurement of one config on one layer (the plan editor's live figures).
LayerMeasureOutcome measureConfig(LayerMeasureOutcome out, std::shared_ptr<const Model> model, const Layer& l,
                                  const LayerConfig& cfg, OpContext& ctx, MeasureScratch* scratch,
                                  const CalibrationFile* calib) {
  const TensorInfo& t = model->tensors[l.weight];
  const auto* config = &cfg;
  // Methods other than RTN, and RTN with calibration (the output error needs
  // the dequantized weight, so no fused path): through quantize_with_method.
  if (!plainRtn(*config) || layerHessian(calib, l, t.cols())) {
    std::vector<float> w;
    auto r = runMethod(*model, l, *config, calib, ctx, w);
    if (!r) {
      out.cancelled = r.error().code == ErrorCode::Cancelled;
      out.error = QString::fromStdString(r.error().message);
      return out;
    }
    out.ok = true;
    out.figures = r->figures;
    out.figures.rel_output_error = r->rel_output_error;
    return out;
  }
  auto choice = parse_quant_choice(config->format);
  if (!choice) {
    out.error = QString::fromStdString(choice.error().message);
    return out;
  }
  // Only integer grids take the fused scratch-buffer path below; ggml blocks and the named
  // formats (NF4, FP8, MXFP4, NVFP4, F16/BF16) are measured by measure_quantization.
  if (choice->kind != QuantChoice::Kind::IntGrid || t.channels_last) {
    auto m = measure_quantization(t, *choice, ctx);
    if (!m) {
      out.cancelled = m.error().code == ErrorCode::Cancelled;
      out.error = QString::fromStdString(m.error().message);
      return out;
    }
    out.ok = true;
    out.figures = *m;
    return out;
  }
  const std::int64_t rows = t.rows(), cols = t.cols();
  if (auto r = validate_int_grid(choice->grid, cols); !r) {
    out.error = QString::fromStdString(t.name + ": " + r.error().message);
    return out;
  }
  MeasureScratch local;
  std::unique_lock<std::mutex> lock;
  MeasureScratch* s = &local;
  if (scratch) {
    lock = std::unique_lock<std::mutex>(scratch->mutex, std::try_to_lock);
    if (lock.owns_lock()) s = scratch;  // else another job uses it: work on our own buffers
  }
  // The outcome of an integer-grid RTN measured since `start`, on either path.
  auto measured = [&](const Result<WeightError>& e, std::chrono::steady_clock::time_point start) {
    if (!e) {
      out.cancelled = e.error().code == ErrorCode::Cancelled;
      out.error = QString::fromStdString(t.name + ": " + e.error().message);
      return out;
    }
    out.ok = true;
    out.figures.error = *e;
    out.figures.milliseconds = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
    out.figures.bits_per_weight = choice->bits_per_weight(rows, cols);
    return out;
  };
  if (scratch && scratch->device &&  // set once at start-up: read without the lock
      (t.dtype == DType::F32 || t.dtype == DType::F16 || t.dtype == DType::BF16)) {
    // On the device: the tensor's own bytes go up (half the traffic for F16/BF16), no F32 copy here;
    // the code buffers are reused as on the CPU path.
    const auto start = std::chrono::steady_clock::now();
    return measured(scratch->device->rtn_int(TensorData::of(t), choice->grid, s->codes, nullptr, ctx), start);
  }
  if (s->model != model || s->tensor != l.weight) {
    s->model.reset();
    s->weights.resize(static_cast<std::size_t>(t.numel()));
    if (auto r = tensor_to_f32(t, s->weights.data()); !r) {
      out.error = QString::fromStdString(t.name + ": " + r.error().message);
      return out;
    }
    s->model = model;
    s->tensor = l.weight;
  }
  if (ctx.cancelled()) {
    out.cancelled = true;
    return out;
  }
  const auto start = std::chrono::steady_clock::now();
  return measured(rtn_int_measure_into(s->codes, s->weights.data(), rows, cols, choice->grid, &ThreadPool::global()), start);
}

}  // namespace

void warmMeasureScratch(std::shared_ptr<const Model> model, int layer, std::shared_ptr<MeasureScratch> scratch) {
  if (!model || !scratch || layer < 0 || static_cast<std::size_t>(layer) >= model->layers.size()) return;
  if (scratch->device && !scratch->device->is_host()) return;
  const std::size_t tensor = model->layers[static_cast<std::size_t>(layer)].weight;
  const TensorInfo& t = model->tensors[tensor];
  if (t.channels_last) return;
  std::unique_lock<std::mutex> lock(scratch->mutex, std::try_to_lock);
  if (!lock.owns_lock() || (scratch->model == model && scratch->tensor == tensor)) return;
  scratch->model.reset();
  scratch->weights.resize(static_cast<std::size_t>(t.numel()));
  if (!tensor_to_f32(t, scratch->weights.data())) return;  // the edit's own measurement reports the problem
  // The code buffer too: its first use would otherwise fault in rows * cols fresh pages.
  scratch->codes.codes.resize(scratch->weights.size());
  scratch->model = model;
  scratch->tensor = tensor;
}


void runMeasureLayers(QPromise<LayerMeasureOutcome>& promise, std::shared_ptr<const Model> model,
                      QVector<LayerMeasureRequest> requests, std::shared_ptr<JobControl> control,
                      std::shared_ptr<MeasureScratch> scratch, std::shared_ptr<const CalibrationFile> calib) {
  for (qsizetype i = 0; i < requests.size(); ++i) {
    if (control->cancelled()) return;
    LayerMeasureOutcome out = measureLayer(model, requests[i].layer, requests[i].format, control->context(),
                                           scratch.get(), calib.get());
    out.generation = requests[i].generation;
    if (out.cancelled) return;
    control->context().progress(static_cast<double>(i + 1) / static_cast<double>(requests.size()));
    promise.addResult(std::move(out));
  }
}

LayerMeasureOutcome measureLayer(std::shared_ptr<const Model> model, int layer, const QString& format,
                                 OpContext& ctx, MeasureScratch* scratch, const CalibrationFile* calib) {
  LayerMeasureOutcome out;
  out.layer = layer;
  out.format = format;
  if (layer < 0 || static_cast<std::size_t>(layer) >= model->layers.size()) {
    out.error = QStringLiteral("no layer %1").arg(layer);
    return out;
  }
  const Layer& l = model->layers[static_cast<std::size_t>(layer)];
  const TensorInfo& t = model->tensors[l.weight];
  double keptBits = 0;
  if (keptFormat(format, keptBits)) {
    out.ok = true;
    out.figures.bits_per_weight = keptBits;
    out.figures.error.sqnr_db = std::numeric_limits<double>::infinity();
    return out;
  }
  // `format` is the row's config key: the format alone for plain RTN, else with method and params.
  auto config = parse_layer_config_key(format.toStdString());
  if (!config) {
    out.error = QString::fromStdString(config.error().message);
    return out;
  }
  std::string applied, note;
  *config = storedConfig(l, t.cols(), std::move(*config), applied, note);
  if (!applied.empty() && keptFormat(QString::fromStdString(applied), keptBits)) {
    out.ok = true;
    out.figures.bits_per_weight = keptBits;
    out.figures.error.sqnr_db = std::numeric_limits<double>::infinity();
    out.figures.applied = applied;
    out.figures.note = note;
    return out;
  }
  out = measureConfig(std::move(out), model, l, *config, ctx, scratch, calib);
  out.figures.applied = applied;
  out.figures.note = note;
  return out;
}


ErrorHistogramsOutcome runErrorHistograms(std::shared_ptr<const Model> model, int layer, QString format, int bins,
                                          quint64 generation, std::shared_ptr<JobControl> control,
                                          std::shared_ptr<const CalibrationFile> calib) {
  ErrorHistogramsOutcome out;
  out.layer = layer;
  out.format = format;
  out.generation = generation;
  if (control->cancelled()) {
    out.cancelled = true;
    return out;
  }
  if (layer < 0 || static_cast<std::size_t>(layer) >= model->layers.size()) {
    out.error = QStringLiteral("no layer %1").arg(layer);
    return out;
  }
  double bits = 0;
  if (keptFormat(format, bits)) {
    out.error = QStringLiteral("kept as F32: nothing is rounded");
    return out;
  }
  auto config = parse_layer_config_key(format.toStdString());
  if (!config) {
    out.error = QString::fromStdString(config.error().message);
    return out;
  }
  const Layer& l = model->layers[static_cast<std::size_t>(layer)];
  std::string applied, note;
  *config = storedConfig(l, model->tensors[l.weight].cols(), std::move(*config), applied, note);
  Result<QuantErrorHistograms> h = Error::cancelled();
  if (!plainRtn(*config)) {
    std::vector<float> w;
    auto r = runMethod(*model, l, *config, calib.get(), control->context(), w);
    h = r ? error_histograms_of(w.data(), r->dequantized.data(), w.size(), bins) : Result<QuantErrorHistograms>(r.error());
  } else {
    auto choice = parse_quant_choice(config->format);
    if (!choice) {
      out.error = QString::fromStdString(choice.error().message);
      return out;
    }
    h = quant_error_histograms(model->tensors[l.weight], *choice, bins, control->context());
  }
  if (!h) {
    out.cancelled = h.error().code == ErrorCode::Cancelled;
    out.error = QString::fromStdString(h.error().message);
    return out;
  }
  out.histograms = std::make_shared<const QuantErrorHistograms>(std::move(*h));
  return out;
}

AllocateOutcome runAllocate(std::shared_ptr<const Model> model, QStringList formats, double target,
                            std::shared_ptr<const CandidateCosts> costs, quint64 generation,
                            std::shared_ptr<JobControl> control, std::shared_ptr<const CalibrationFile> calib) {
  AllocateOutcome out;
  out.generation = generation;
  out.formats = formats;
  out.target = target;
  if (control->cancelled()) {
    out.cancelled = true;
    return out;
  }
  if (!costs) {
    std::vector<std::string> names;
    for (const QString& f : formats) names.push_back(f.toStdString());
    // With calibration, the allocation minimises the summed relative output error.
    std::vector<const float*> hessians, means;
    if (calib)
      for (const Layer& l : model->layers) {
        const LayerInputStats s = layerStats(calib.get(), l, model->tensors[l.weight].cols());
        hessians.push_back(s.h);
        means.push_back(s.x_mean_abs);
      }
    auto measured = measure_candidates(*model, names, control->context(), calib ? &hessians : nullptr,
                                       calib ? &means : nullptr);
    if (!measured) {
      out.cancelled = measured.error().code == ErrorCode::Cancelled;
      out.error = QString::fromStdString(measured.error().message);
      return out;
    }
    costs = std::make_shared<const CandidateCosts>(std::move(*measured));
  }
  out.costs = costs;
  // The budget is over every weight of the file the plan exports to (the CLI's account).
  const AccountedFixedPart fixed = allocation_fixed_part(*model, *costs);
  auto allocation = allocate_to_budget(*model, *costs, target, fixed.fixed);
  if (!allocation) {
    out.error = QString::fromStdString(allocation.error().message);
    return out;
  }
  out.allocation = std::make_shared<const Allocation>(std::move(*allocation));
  return out;
}

}  // namespace qs::app
