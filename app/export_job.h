#pragma once
// The export job (File ▸ Export…): the dialog's settings and the plan become a
// call of one of core's exporters, off the UI thread, with the job's progress
// and cancel flag; the exporter's report becomes the dialog's result table.
// Exporters write a temporary file or directory renamed into place only on
// success, so a failure or a cancel leaves nothing at the destination.
#include <QString>
#include <memory>

#include "app/jobs.h"
#include "backend/backend.h"
#include "calib/calibration_file.h"
#include "quant/plan.h"
#include "widgets/export_dialog.h"

namespace qs::app {

struct ExportJobRequest {
  ui::ExportSettings settings;
  Plan plan;          // the Plan tab's, for the plan-driven formats
  QString planLabel;  // how the headline names it
  // The document's calibration (kept alive by this pointer), read in place:
  // GPTQ with settings.gptqCalibrated, the fake-quant export's gptq/awq
  // layers, and the ranking of outlier keeping (fake-quant and HDF5).
  std::shared_ptr<const CalibrationFile> calibration;
  // The document's compute backend: a device sums the calibration Hessians and
  // runs GPTQ (handing to the CPU what it cannot take); the CPU's: core here.
  std::shared_ptr<Backend> backend;
};

struct ExportOutcome {
  quint64 generation = 0;
  std::shared_ptr<const ui::ExportResultView> result;  // null on failure or cancel
  QString error;
  bool cancelled = false;
};

// Runs the exporter the settings name (with calibration first for a GGUF plan using gptq).
ExportOutcome runExportJob(std::shared_ptr<const Model> model, ExportJobRequest request, quint64 generation,
                           std::shared_ptr<JobControl> control);

// Why `destination` may not be written: it is the source model or one of its
// files (an export there would replace what it reads). Empty when it may.
QString destinationConflict(const Model& model, const QString& destination);

}  // namespace qs::app
