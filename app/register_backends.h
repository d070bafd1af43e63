#pragma once
namespace qs {
// Call once at start-up, before make_backend().
void register_optional_backends();
}  // namespace qs
