#pragma once
// An importance matrix (io/imatrix_file.h) from a calibration run: each
// weight matrix's input columns get the mean of x^2 the capture measured at
// that input, under the matrix's GGUF name, as llama-imatrix collects it (q, k
// and v share the attention input; gate and up the MLP input). The head and
// the embeddings get none (llama-imatrix skips them by default).
#include <string>

#include "calib/activation_capture.h"
#include "io/imatrix_file.h"

namespace qs {

ImportanceMatrix importance_matrix_of(const ActivationCapture& capture, const std::string& dataset);

}  // namespace qs
