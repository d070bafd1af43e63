// Links the optional backends into an executable. kernels/ implements the CUDA
// one; without it this file registers nothing and "auto" means the CPU.
#include "app/register_backends.h"

#ifdef QS_HAVE_CUDA
#include "cuda_compute_device.h"
#endif

namespace qs {

void register_optional_backends() {
#ifdef QS_HAVE_CUDA
  register_cuda_device();
#endif
}

}  // namespace qs
