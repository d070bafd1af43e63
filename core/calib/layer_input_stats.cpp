#include "calib/layer_input_stats.h"

#include "calib/activation_capture.h"

namespace qs {

LayerInputStats layer_input_stats(const Layer& layer, std::int64_t cols, const ActivationCapture* capture) {
  LayerInputStats st;
  const InputStats* s = capture ? capture->find_for(layer.role, layer.block) : nullptr;
  if (!s || s->cols != cols) return st;
  if (s->hessian.size() == static_cast<std::size_t>(cols * cols)) st.h = s->hessian.data();
  if (s->mean_abs.size() == static_cast<std::size_t>(cols)) st.x_mean_abs = s->mean_abs.data();
  return st;
}

}  // namespace qs
