#pragma once
// The calibration jobs: a calibration run saved to its HDF5 file, and a
// calibration file loaded back. Plain functions that own what they use, as
// the other jobs (app/jobs.h).
#include <QString>
#include <QStringList>
#include <memory>

#include "app/jobs.h"
#include "calib/calibration_file.h"

namespace qs::app {

struct CalibrateJobRequest {
  QStringList textFiles;
  int sequences = 32;
  int seqLen = 256;
  quint64 seed = 0;
  QString outputPath;  // where the calibration file goes
  // Where the forward pass runs (make_forward_runner's choice): the document
  // sets its compute backend's name, "cpu" or "cuda"; a device that cannot
  // start falls back to the CPU, and the run says so (CalibrationRun).
  QString backend = QStringLiteral("cpu");
};

struct CalibrateOutcome {
  quint64 generation = 0;
  std::shared_ptr<const CalibrationFile> file;  // what was written, as loaded; null on failure or cancel
  double seconds = 0;                           // calibration + write
  QString error;
  bool cancelled = false;
};

// calibrate() then write_calibration_file() (atomic: a cancel or a failure
// leaves nothing at the destination).
CalibrateOutcome runCalibrate(std::shared_ptr<const Model> model, CalibrateJobRequest request, quint64 generation,
                              std::shared_ptr<JobControl> control);

struct CalibrationLoadOutcome {
  quint64 generation = 0;
  QString path;
  bool automatic = false;  // the default file found on open (a failure is only a status message)
  std::shared_ptr<const CalibrationFile> file;  // null on failure
  QString error;
  bool cancelled = false;
};

// read_calibration_file(path, model): another model's file is refused.
CalibrationLoadOutcome runLoadCalibration(std::shared_ptr<const Model> model, QString path, bool automatic,
                                          quint64 generation, std::shared_ptr<JobControl> control);

// Why the calibration file cannot go into `path`'s folder (read-only, as
// shared model stores are marked), or empty when it can.
QString calibrationFolderProblem(const QString& path);

}  // namespace qs::app
