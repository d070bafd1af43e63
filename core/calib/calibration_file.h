#pragma once
// The HDF5 calibration file: a calibration run's statistics (activation
// capture, Hessians) with the identity of the model it was made for and the
// settings, so that the next open of the model reloads them instead of
// running the model again. Schema: docs/calibration-file.md.
#include <cstdint>
#include <string>

#include "calib/calibrate.h"
#include "model/model.h"
#include "util/result.h"

namespace qs {

inline constexpr int kCalibrationFileVersion = 1;

// What identifies a model for its calibration data: a 64-bit FNV-1a hash over
// its tensors' names and shapes (sorted by name), as 16 hex digits. The same
// weights stored in another dtype keep their identity; HF and GGUF files of a
// model have different names and so different identities.
std::string model_identity(const Model& model);

// Where a model's calibration file lives by default: `<file>.qscalib.h5` next
// to a single-file model, `<dir>/quantscope.qscalib.h5` inside a model directory.
std::string default_calibration_path(const Model& model);

struct CalibrationFile {
  std::string path;
  int format_version = kCalibrationFileVersion;
  std::string created;          // UTC, ISO 8601
  std::string model_path, model_format, model_identity;
  CalibrationRun run;           // settings, capture (with its Hessians when they were captured), token counts
};

// Writes atomically (temporary sibling, fsync, rename).
Result<void> write_calibration_file(const std::string& path, const Model& model, const CalibrationRun& run);

// Reads a calibration file back. With `model`, a file made for another model
// (identity differs) is refused with both paths in the message.
Result<CalibrationFile> read_calibration_file(const std::string& path, const Model* model = nullptr);

}  // namespace qs
