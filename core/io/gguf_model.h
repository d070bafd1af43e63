#pragma once
// A GGUF file as a Model: architecture facts from the {arch}.* keys, llama
// tensor names grouped into blocks, metadata (tokenizer included) kept.
#include <string>

#include "io/gguf.h"
#include "model/model.h"

namespace qs {

Result<Model> open_gguf_model(const std::string& path);
// Architecture facts from GGUF metadata; a present key of the wrong type is an error.
Result<ArchInfo> arch_from_gguf(const GgufFile& g, const std::string& label);

}  // namespace qs
