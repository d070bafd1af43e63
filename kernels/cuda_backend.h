#pragma once
namespace qs {
// Registers the "cuda" backend factory (see core/backend/registry.h).
void register_cuda_backend();
}  // namespace qs
