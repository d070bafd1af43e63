#include "calib/calibration_file.h"

#include <cmath>
#include <algorithm>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <mutex>
#include <nlohmann/json.hpp>

#include "calib/linear_input.h"
#include "io/h5_id.h"
#include "io/h5_writer.h"
#include "model/model_files.h"
#include "io/hdf5_errors.h"
#include "io/hdf5_guard.h"
#include "util/atomic_file.h"
#include "util/disk_space.h"
#include "util/file_kind.h"
#include "util/json_depth.h"

namespace qs {
namespace {

namespace fs = std::filesystem;
using h5::Id;
using h5::Writer;
using Input = LlamaRunner::LinearInput;
constexpr Input kInputs[] = {Input::Attention, Input::AttentionOutput, Input::Mlp, Input::MlpDown};
constexpr const char* kFormat = "quantscope-calibration";

std::string utc_now() {
  const std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::string settings_json(const CalibrationSettings& s) {
  nlohmann::ordered_json j = {{"text_files", s.text_files},
                              {"sequences", s.sequences},
                              {"seq_len", s.seq_len},
                              {"seed", s.seed},
                              {"sampling", s.consecutive ? "consecutive windows from the start, first token -> BOS"
                                                         : "uniform window starts, splitmix64(seed), first token -> BOS"},
                              {"hessians", s.capture.hessians},
                              {"heatmap_tokens", s.capture.heatmap_tokens}};
  return j.dump();
}

// The layer names of `model` that read `input` of `block`, comma-separated.
std::string layers_reading(const Model& model, int block, Input input) {
  std::string out;
  for (const Layer& l : model.layers) {
    if (l.block != block) continue;
    if (linear_input_of(l.role) == input) out.append(out.empty() ? "" : ",").append(l.name);
  }
  return out;
}

class Reader {
 public:
  Reader(const std::string& path, std::uint64_t file_bytes) : path_(path), file_bytes_(file_bytes) {}
  Error fail(const std::string& what) const {
    const std::string stack = h5::take_error_stack();
    return Error::format(path_ + ": " + what + (stack.empty() ? "" : " (" + stack + ")") +
                         "; the calibration file is damaged or truncated: calibrate again");
  }

  Result<std::string> string_attr(hid_t loc, const char* name) const {
    Id attr(H5Aopen(loc, name, H5P_DEFAULT), H5Aclose);
    if (!attr.ok()) return fail(std::string("missing attribute ") + name);
    Id type(H5Aget_type(attr.get()), H5Tclose);
    if (H5Tget_class(type.get()) != H5T_STRING || H5Tis_variable_str(type.get()) > 0)
      return fail(std::string("attribute ") + name + " is not a fixed-length string");
    const std::size_t n = H5Tget_size(type.get());
    if (n > (std::size_t{16} << 20)) return fail(std::string("attribute ") + name + " is too long");
    std::string s(n, '\0');
    if (H5Aread(attr.get(), type.get(), s.data()) < 0) return fail(std::string("attribute ") + name);
    s.resize(std::min(s.size(), s.find('\0')));
    return s;
  }
  template <typename T>
  Result<T> number_attr(hid_t loc, const char* name) const {
    constexpr bool dbl = std::is_floating_point_v<T>;
    Id attr(H5Aopen(loc, name, H5P_DEFAULT), H5Aclose);
    if (!attr.ok()) return fail(std::string("missing attribute ") + name);
    std::conditional_t<dbl, double, std::int64_t> v{};
    if (H5Aread(attr.get(), dbl ? H5T_NATIVE_DOUBLE : H5T_NATIVE_INT64, &v) < 0) return fail(std::string("attribute ") + name);
    return static_cast<T>(v);
  }
  // A whole dataset that must have exactly `dims`. Its size is checked against
  // the file's before anything is allocated (the datasets are stored unfiltered).
  template <typename T>
  Result<void> dataset(hid_t loc, const std::string& where, const char* name, hid_t mem, std::vector<hsize_t> dims,
                       std::vector<T>& out) const {
    Id ds(H5Dopen2(loc, name, H5P_DEFAULT), H5Dclose);
    if (!ds.ok()) return fail("missing dataset " + where + "/" + name);
    Id space(H5Dget_space(ds.get()), H5Sclose);
    const int rank = H5Sget_simple_extent_ndims(space.get());
    std::vector<hsize_t> got(static_cast<std::size_t>(std::max(rank, 0)));
    if (rank < 0 || rank > 4 || H5Sget_simple_extent_dims(space.get(), got.data(), nullptr) < 0 || got != dims)
      return fail("dataset " + where + "/" + name + " does not have the shape its attributes give");
    std::uint64_t n = 1;
    for (hsize_t d : dims) n *= d;
    if (n * sizeof(T) > file_bytes_) return fail("dataset " + where + "/" + name + " is larger than the file");
    // A dataset whose data was never written reads back as fill values at any size, so the
    // check above alone lets a small crafted file ask for huge allocations across many
    // datasets: each must hold its bytes in the file (the writer stores them contiguously).
    Id file_type(H5Dget_type(ds.get()), H5Tclose);
    const std::size_t elem = file_type.ok() ? H5Tget_size(file_type.get()) : 0;
    if (n > 0 && (elem == 0 || H5Dget_storage_size(ds.get()) < n * elem))
      return fail("dataset " + where + "/" + name + " does not hold its data in the file");
    out.resize(static_cast<std::size_t>(n));
    if (n > 0 && H5Dread(ds.get(), mem, H5S_ALL, H5S_ALL, H5P_DEFAULT, out.data()) < 0)
      return fail("cannot read dataset " + where + "/" + name);
    return {};
  }
  bool has_dataset(hid_t loc, const char* name) const { return H5Lexists(loc, name, H5P_DEFAULT) > 0; }

 private:
  const std::string& path_;
  std::uint64_t file_bytes_;
};

Result<void> write_input(const Writer& w, hid_t blocks, const Model& model, const InputStats& s) {
  const std::string bname = std::to_string(s.block);
  Id b(H5Lexists(blocks, bname.c_str(), H5P_DEFAULT) > 0 ? H5Gopen2(blocks, bname.c_str(), H5P_DEFAULT)
                                                         : H5Gcreate2(blocks, bname.c_str(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT),
       H5Gclose);
  if (!b.ok()) return w.fail("group blocks/" + bname);
  const char* name = linear_input_name(s.input);
  Id g(H5Gcreate2(b.get(), name, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), H5Gclose);
  if (!g.ok()) return w.fail("group blocks/" + bname + "/" + name);
  const auto cols = static_cast<hsize_t>(s.cols);
  for (auto r : {w.string_attr(g.get(), "input", name), w.string_attr(g.get(), "roles", linear_input_roles(s.input)),
                 w.string_attr(g.get(), "layers", layers_reading(model, s.block, s.input)),
                 w.number_attr(g.get(), "block", s.block), w.number_attr(g.get(), "cols", s.cols),
                 w.number_attr(g.get(), "tokens", s.tokens), w.number_attr(g.get(), "underflow", s.underflow),
                 w.number_attr(g.get(), "overflow", s.overflow), w.number_attr(g.get(), "nonfinite", s.nonfinite),
                 w.number_attr(g.get(), "heatmap_tokens", s.heatmap_tokens),
                 w.dataset(g.get(), "abs_max", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, {cols}, s.abs_max.data()),
                 w.dataset(g.get(), "mean_abs", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, {cols}, s.mean_abs.data()),
                 w.dataset(g.get(), "mean_sq", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, {cols}, s.mean_sq.data()),
                 w.dataset(g.get(), "histogram", H5T_STD_I64LE, H5T_NATIVE_INT64, {kActHistBins}, s.histogram.data()),
                 w.dataset(g.get(), "heatmap", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT,
                           {static_cast<hsize_t>(s.heatmap_tokens), cols}, s.heatmap.data())})
    if (!r) return r.error();
  if (!s.hessian.empty())
    if (auto r = w.dataset(g.get(), "hessian", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, {cols, cols}, s.hessian.data()); !r) return r;
  return {};
}

// What no capture of real activations gives: a damaged file's numbers would
// otherwise reach GPTQ and AWQ and fail there (or quietly mislead) far from the
// file. H = XᵀX/n is symmetric up to the float summation order, its diagonal is
// each input's mean x², and |H_ij| ≤ sqrt(H_ii·H_jj) (Cauchy–Schwarz); the
// tolerances are those of float sums over many tokens, far below what a
// flipped exponent or sign bit does.
std::string implausible_stats(const InputStats& s) {
  const std::size_t n = static_cast<std::size_t>(s.cols);
  for (std::size_t i = 0; i < n; ++i) {
    const float a = s.abs_max[i], m = s.mean_abs[i], q = s.mean_sq[i];
    if (!std::isfinite(a) || !std::isfinite(m) || !std::isfinite(q) || a < 0 || m < 0 || q < 0 || m > a * 1.01f + 1e-30f ||
        q > a * a * 1.01f + 1e-30f)
      return "input " + std::to_string(i) + ": abs_max, mean_abs and mean_sq are not those of one input";
  }
  if (s.hessian.empty()) return {};
  for (std::size_t i = 0; i < n; ++i) {
    const float d = s.hessian[i * n + i];
    if (!std::isfinite(d) || d < 0 || std::fabs(d - s.mean_sq[i]) > 1e-2f * std::max(d, s.mean_sq[i]) + 1e-30f)
      return "hessian diagonal " + std::to_string(i) + " is not the input's mean x² (" + std::to_string(d) + " vs " +
             std::to_string(s.mean_sq[i]) + ")";
  }
  // In 64 x 64 tiles, so that the transposed reads stay in cache (n is up to ~20k).
  constexpr std::size_t kTile = 64;
  for (std::size_t ib = 0; ib < n; ib += kTile)
    for (std::size_t jb = 0; jb <= ib; jb += kTile)
      for (std::size_t i = ib; i < std::min(ib + kTile, n); ++i)
        for (std::size_t j = jb; j < std::min({jb + kTile, i, n}); ++j) {
          const float hij = s.hessian[i * n + j], hji = s.hessian[j * n + i];
          const float bound = std::sqrt(s.hessian[i * n + i] * s.hessian[j * n + j]);
          if (!std::isfinite(hij) || !std::isfinite(hji) || std::fabs(hij - hji) > 1e-2f * bound + 1e-30f ||
              std::fabs(hij) > 1.01f * bound + 1e-30f)
            return "hessian entry (" + std::to_string(i) + ", " + std::to_string(j) + ") is not that of XᵀX/n";
        }
  return {};
}

}  // namespace

std::string model_identity(const Model& model) {
  std::vector<const TensorInfo*> sorted;
  for (const TensorInfo& t : model.tensors) sorted.push_back(&t);
  std::sort(sorted.begin(), sorted.end(), [](const TensorInfo* a, const TensorInfo* b) { return a->name < b->name; });
  std::uint64_t h = 0xcbf29ce484222325ull;
  auto mix = [&](const void* p, std::size_t n) {
    for (std::size_t i = 0; i < n; ++i) h = (h ^ static_cast<const unsigned char*>(p)[i]) * 0x100000001b3ull;
  };
  for (const TensorInfo* t : sorted) {
    mix(t->name.data(), t->name.size());
    const char zero = 0;
    mix(&zero, 1);
    for (std::int64_t d : t->shape) mix(&d, sizeof d);
  }
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h));
  return buf;
}

std::string default_calibration_path(const Model& model) {
  std::error_code ec;
  if (fs::is_directory(model.path, ec)) return (fs::path(model.path) / "quantscope.qscalib.h5").string();
  return model.path + ".qscalib.h5";
}

Result<void> write_calibration_file(const std::string& path, const Model& model, const CalibrationRun& run) {
  if (auto r = refuse_model_file(model, path); !r) return r.error();  // the rename would replace it
  const ActivationCapture& cap = run.capture;
  std::uint64_t bytes = 1 << 20;
  for (const InputStats& s : cap.inputs)
    bytes += 4 * (s.hessian.size() + s.heatmap.size() + 3 * s.abs_max.size()) + 8 * s.histogram.size() + 4096;
  if (auto r = ensure_free_space(path, bytes); !r) return r.error();
  auto file = AtomicFile::create(path);
  if (!file) return file.error();
  h5::silence_errors();
  {
    std::lock_guard lock(h5::library_mutex());
    Writer w(path);
    Id f(H5Fcreate(file->temp_path().c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT), H5Fclose);
    if (!f.ok()) return w.fail("cannot create");
    int blocks_n = 0;
    for (const InputStats& s : cap.inputs) blocks_n = std::max(blocks_n, s.block + 1);
    for (auto r : {w.string_attr(f.get(), "format", kFormat), w.number_attr(f.get(), "format_version", kCalibrationFileVersion),
                   w.string_attr(f.get(), "created", utc_now()), w.string_attr(f.get(), "created_by", "quantscope 0.1.0"),
                   w.string_attr(f.get(), "model_path", model.path),
                   w.string_attr(f.get(), "model_format", std::string(model_format_name(model.format))),
                   w.string_attr(f.get(), "model_identity", model_identity(model)),
                   w.number_attr(f.get(), "model_tensor_count", static_cast<std::int64_t>(model.tensors.size())),
                   w.string_attr(f.get(), "settings", settings_json(run.settings)),
                   w.number_attr(f.get(), "tokens", cap.tokens), w.number_attr(f.get(), "sequences", cap.sequences),
                   w.number_attr(f.get(), "seq_len", cap.seq_len), w.number_attr(f.get(), "text_tokens", run.text_tokens),
                   w.number_attr(f.get(), "seconds", cap.seconds), w.number_attr(f.get(), "blocks", blocks_n),
                   w.number_attr(f.get(), "histogram_log2_min", kActHistLog2Min),
                   w.number_attr(f.get(), "histogram_log2_max", kActHistLog2Max),
                   w.number_attr(f.get(), "histogram_bins_per_octave", kActHistBinsPerOctave)})
      if (!r) return r.error();
    Id blocks(H5Gcreate2(f.get(), "blocks", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), H5Gclose);
    if (!blocks.ok()) return w.fail("group blocks");
    for (const InputStats& s : cap.inputs)
      if (auto r = write_input(w, blocks.get(), model, s); !r) return r.error();
    if (H5Fflush(f.get(), H5F_SCOPE_GLOBAL) < 0) return w.fail("flush");
  }  // closed before the rename
  return file->commit();
}

namespace {

Result<CalibrationFile> read_calibration_file_here(const std::string& path, const Model* model) {
  std::error_code ec;
  if (const std::string kind = non_regular_kind(path); !kind.empty())
    return Error::io(path + ": not a regular file (" + kind + ")");
  const auto file_bytes = fs::file_size(path, ec);
  if (ec) return Error::io(path + ": cannot read the calibration file: " + ec.message());
  h5::silence_errors();
  std::lock_guard lock(h5::library_mutex());
  Reader rd(path, file_bytes);
  if (H5Fis_hdf5(path.c_str()) <= 0) {
    h5::take_error_stack();
    return Error::format(path + ": not an HDF5 file (damaged or truncated?); calibrate again");
  }
  Id f(H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT), H5Fclose);
  if (!f.ok()) return rd.fail("cannot open");
  CalibrationFile out;
  out.path = path;
  auto format = rd.string_attr(f.get(), "format");
  if (!format || *format != kFormat) return Error::format(path + ": not a QuantScope calibration file");
  auto version = rd.number_attr<int>(f.get(), "format_version");
  if (!version) return version.error();
  if (*version != kCalibrationFileVersion)
    return Error::format(path + ": calibration file version " + std::to_string(*version) + " is not supported (this build reads " +
                         std::to_string(kCalibrationFileVersion) + ")");
  out.format_version = *version;
  for (auto [key, dst] : {std::pair{"created", &out.created}, std::pair{"model_path", &out.model_path},
                          std::pair{"model_format", &out.model_format}, std::pair{"model_identity", &out.model_identity}}) {
    auto s = rd.string_attr(f.get(), key);
    if (!s) return s.error();
    *dst = *s;
  }
  if (model) {
    const std::string id = model_identity(*model);
    if (id != out.model_identity)
      return Error::invalid(path + ": this calibration file was made for another model (" + out.model_path + ", identity " +
                            out.model_identity + "), not for " + model->path + " (identity " + id +
                            "); calibrate this model instead");
  }
  CalibrationRun& run = out.run;
  ActivationCapture& cap = run.capture;
  {
    auto s = rd.string_attr(f.get(), "settings");
    if (!s) return s.error();
    if (!check_json_depth(*s, path)) return rd.fail("attribute settings is nested too deep");
    auto j = nlohmann::json::parse(*s, nullptr, false);
    if (j.is_discarded() || !j.is_object()) return rd.fail("attribute settings is not JSON");
    try {
      run.settings.text_files = j.at("text_files").get<std::vector<std::string>>();
      run.settings.sequences = j.at("sequences").get<int>();
      run.settings.seq_len = j.at("seq_len").get<int>();
      run.settings.seed = j.at("seed").get<std::uint64_t>();
      // Files from before consecutive windows were recorded are the drawn kind.
      run.settings.consecutive = j.value("sampling", std::string()).starts_with("consecutive");
      run.settings.capture.hessians = j.at("hessians").get<bool>();
      run.settings.capture.heatmap_tokens = j.at("heatmap_tokens").get<int>();
    } catch (const nlohmann::json::exception& e) {
      return rd.fail(std::string("attribute settings: ") + e.what());
    }
  }
  auto tokens = rd.number_attr<std::int64_t>(f.get(), "tokens");
  auto seqs = rd.number_attr<int>(f.get(), "sequences");
  auto seq_len = rd.number_attr<int>(f.get(), "seq_len");
  auto text_tokens = rd.number_attr<std::int64_t>(f.get(), "text_tokens");
  auto seconds = rd.number_attr<double>(f.get(), "seconds");
  auto blocks_n = rd.number_attr<std::int64_t>(f.get(), "blocks");
  for (const Error* e : {tokens ? nullptr : &tokens.error(), seqs ? nullptr : &seqs.error(), seq_len ? nullptr : &seq_len.error(),
                         text_tokens ? nullptr : &text_tokens.error(), seconds ? nullptr : &seconds.error(),
                         blocks_n ? nullptr : &blocks_n.error()})
    if (e) return *e;
  if (*blocks_n < 0 || *blocks_n > 100000 || *tokens < 0) return rd.fail("block or token count out of range");
  cap.tokens = *tokens;
  cap.sequences = *seqs;
  cap.seq_len = *seq_len;
  cap.seconds = *seconds;
  run.text_tokens = *text_tokens;
  for (std::int64_t b = 0; b < *blocks_n; ++b)
    for (Input in : kInputs) {
      const std::string where = "blocks/" + std::to_string(b) + "/" + linear_input_name(in);
      Id g(H5Gopen2(f.get(), where.c_str(), H5P_DEFAULT), H5Gclose);
      if (!g.ok()) return rd.fail("missing group " + where);
      InputStats s;
      s.block = static_cast<int>(b);
      s.input = in;
      auto cols = rd.number_attr<std::int64_t>(g.get(), "cols");
      auto toks = rd.number_attr<std::int64_t>(g.get(), "tokens");
      auto under = rd.number_attr<std::int64_t>(g.get(), "underflow");
      auto over = rd.number_attr<std::int64_t>(g.get(), "overflow");
      auto nonfinite = rd.number_attr<std::int64_t>(g.get(), "nonfinite");
      auto hm = rd.number_attr<std::int64_t>(g.get(), "heatmap_tokens");
      for (const Error* e : {cols ? nullptr : &cols.error(), toks ? nullptr : &toks.error(), under ? nullptr : &under.error(),
                             over ? nullptr : &over.error(), nonfinite ? nullptr : &nonfinite.error(), hm ? nullptr : &hm.error()})
        if (e) return *e;
      if (*cols <= 0 || *cols > (1 << 20) || *hm < 0 || *hm > (1 << 24)) return rd.fail(where + ": cols or heatmap_tokens out of range");
      s.cols = *cols;
      s.tokens = *toks;
      s.underflow = *under;
      s.overflow = *over;
      s.nonfinite = *nonfinite;
      s.heatmap_tokens = *hm;
      const auto c = static_cast<hsize_t>(s.cols);
      for (auto r : {rd.dataset(g.get(), where, "abs_max", H5T_NATIVE_FLOAT, {c}, s.abs_max),
                     rd.dataset(g.get(), where, "mean_abs", H5T_NATIVE_FLOAT, {c}, s.mean_abs),
                     rd.dataset(g.get(), where, "mean_sq", H5T_NATIVE_FLOAT, {c}, s.mean_sq),
                     rd.dataset(g.get(), where, "heatmap", H5T_NATIVE_FLOAT, {static_cast<hsize_t>(s.heatmap_tokens), c}, s.heatmap)})
        if (!r) return r.error();
      if (auto r = rd.dataset(g.get(), where, "histogram", H5T_NATIVE_INT64, {kActHistBins}, s.histogram); !r) return r.error();
      if (rd.has_dataset(g.get(), "hessian"))
        if (auto r = rd.dataset(g.get(), where, "hessian", H5T_NATIVE_FLOAT, {c, c}, s.hessian); !r) return r.error();
      if (auto why = implausible_stats(s); !why.empty()) return rd.fail(where + ": " + why);
      cap.inputs.push_back(std::move(s));
    }
  return out;
}

}  // namespace

Result<CalibrationFile> read_calibration_file(const std::string& path, const Model* model) {
  // The whole read first in a child: libhdf5 is not safe on damaged files.
  auto vetted = h5::vet_in_child(path, h5::VetKind::CalibrationFile);
  if (!vetted) return vetted.error();
  return read_calibration_file_here(path, model);
}

}  // namespace qs
