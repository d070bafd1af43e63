#pragma once
// Hugging Face config.json -> ArchInfo.
#include <string>
#include <string_view>

#include "model/arch_info.h"
#include "util/result.h"

namespace qs {

// Parses config.json text; `label` (the path) starts every error message.
// Accepts both the transformers 4 layout (rope_theta / rope_scaling) and the
// transformers 5 one (rope_parameters).
Result<ArchInfo> parse_hf_config(std::string_view json_text, const std::string& label);
Result<ArchInfo> read_hf_config(const std::string& path);

}  // namespace qs
