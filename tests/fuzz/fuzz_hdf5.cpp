// libFuzzer target: the three HDF5 readers (Keras model, calibration file,
// QuantScope checkpoint; the first byte picks one) as they run in use: through
// the guard that reads the file in a child process first (io/hdf5_guard.h).
// libhdf5 1.10 itself crashes and loops on damaged files, so in-process fuzzing
// would only find the library's bugs; this one finds ours — a crash, hang or
// unnamed error that the guard lets through. Each input costs a process start:
// expect hundreds of executions a minute, not millions (the corpus tests in
// tests/reliability do the structured damage).
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>

#include "calib/calibration_file.h"
#include "io/keras_h5.h"
#include "io/quantized_h5.h"

namespace {

// The scratch folder, removed at exit by its own static (destroyed after the
// path below, which is made after it).
struct ScratchDir {
  std::filesystem::path dir =
      std::filesystem::temp_directory_path() / ("qs-fuzz-hdf5-" + std::to_string(::getpid()));
  ScratchDir() { std::filesystem::create_directories(dir); }
  ~ScratchDir() {
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
  }
};

const std::string& input_path() {
  static const ScratchDir scratch;
  static const std::string p = (scratch.dir / "input.h5").string();
  return p;
}

void require_named(const qs::Error& e) {
  if (e.message.find(input_path()) == std::string::npos) {
    std::fprintf(stderr, "an HDF5 error that does not name the file: %s\n", e.message.c_str());
    __builtin_trap();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  const std::string& path = input_path();
  if (FILE* f = std::fopen(path.c_str(), "wb")) {
    std::fwrite(data + 1, 1, size - 1, f);
    std::fclose(f);
  }
  switch (data[0] % 3) {
    case 0:
      if (auto m = qs::open_keras_h5(path); !m) require_named(m.error());
      break;
    case 1:
      if (auto c = qs::read_calibration_file(path); !c) require_named(c.error());
      break;
    default:
      if (auto q = qs::read_quantized_h5(path); !q) require_named(q.error());
      break;
  }
  return 0;
}
