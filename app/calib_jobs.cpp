#include "app/calib_jobs.h"

#include <chrono>
#include <filesystem>

namespace qs::app {

CalibrateOutcome runCalibrate(std::shared_ptr<const Model> model, CalibrateJobRequest request, quint64 generation,
                              std::shared_ptr<JobControl> control) {
  CalibrateOutcome out;
  out.generation = generation;
  const auto start = std::chrono::steady_clock::now();
  CalibrationSettings settings;
  for (const QString& f : request.textFiles) settings.text_files.push_back(f.toStdString());
  settings.sequences = request.sequences;
  settings.seq_len = request.seqLen;
  settings.seed = request.seed;
  settings.backend = request.backend.toStdString();
  const std::string path = request.outputPath.toStdString();
  return runJob(
      std::move(out), *control,
      [&](OpContext& ctx) -> Result<CalibrationFile> {
        auto run = calibrate(*model, settings, ctx);
        if (!run) return run.error();
        // Past this point a cancel would leave a finished run unsaved: the write is short and atomic.
        if (ctx.cancelled()) return Error::cancelled();
        if (auto w = write_calibration_file(path, *model, *run); !w) return w.error();
        CalibrationFile file;
        file.path = path;
        file.model_path = model->path;
        file.model_identity = model_identity(*model);
        file.run = std::move(*run);
        return file;
      },
      [&](CalibrateOutcome& o, CalibrationFile file) {
        o.file = std::make_shared<const CalibrationFile>(std::move(file));
        o.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      });
}

CalibrationLoadOutcome runLoadCalibration(std::shared_ptr<const Model> model, QString path, bool automatic,
                                          quint64 generation, std::shared_ptr<JobControl> control) {
  CalibrationLoadOutcome out;
  out.generation = generation;
  out.path = path;
  out.automatic = automatic;
  return runJob(
      std::move(out), *control,
      [&](OpContext&) { return read_calibration_file(path.toStdString(), model.get()); },
      [](CalibrationLoadOutcome& o, CalibrationFile file) {
        o.file = std::make_shared<const CalibrationFile>(std::move(file));
      });
}

QString calibrationFolderProblem(const QString& path) {
  namespace fs = std::filesystem;
  const fs::path dir = fs::path(path.toStdString()).parent_path();
  std::error_code ec;
  const fs::file_status st = fs::status(dir.empty() ? fs::path(".") : dir, ec);
  if (ec || !fs::is_directory(st)) return QStringLiteral("%1 is not a folder").arg(QString::fromStdString(dir.string()));
  // A folder marked read-only (shared model stores) is left alone even where the user could write it anyway (root).
  const fs::perms p = st.permissions();
  if ((p & (fs::perms::owner_write | fs::perms::group_write | fs::perms::others_write)) == fs::perms::none)
    return QStringLiteral("%1 is read-only").arg(QString::fromStdString(dir.string()));
  return {};
}

}  // namespace qs::app
