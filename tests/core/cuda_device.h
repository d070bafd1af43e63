#pragma once
// The CUDA backend for parity tests, or null with the reason there is none
// (no device, no driver, or a build without CUDA): tests then GTEST_SKIP() with it.
#include <memory>
#include <string>

#include "app/register_backends.h"
#include "calib/device.h"

namespace qs::test {

inline std::shared_ptr<Backend> cuda_or_skip_reason(std::string& why) {
  register_optional_backends();
  auto b = make_backend("cuda");
  if (!b) {
    why = b.error().message;
    return nullptr;
  }
  return *b;
}

}  // namespace qs::test
