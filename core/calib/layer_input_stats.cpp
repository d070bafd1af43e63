#include "calib/layer_input_stats.h"

#include "calib/activation_capture.h"
#include "calib/hessians.h"

namespace qs {

LayerInputStats layer_input_stats(const Layer& layer, std::int64_t cols, const CalibrationHessians* hessians,
                                  const ActivationCapture* capture) {
  LayerInputStats st;
  const auto fits = [&](const std::vector<float>& h) { return h.size() == static_cast<std::size_t>(cols * cols); };
  if (hessians) {
    if (const std::vector<float>* h = hessians->of(layer.role, layer.block); h && fits(*h)) st.h = h->data();
  } else if (const InputStats* s = capture ? capture->find_for(layer.role, layer.block) : nullptr; s && s->cols == cols) {
    if (fits(s->hessian)) st.h = s->hessian.data();
    if (s->mean_abs.size() == static_cast<std::size_t>(cols)) st.x_mean_abs = s->mean_abs.data();
  }
  return st;
}

}  // namespace qs
