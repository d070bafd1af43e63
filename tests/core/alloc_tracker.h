#pragma once
// Records the largest single heap allocation made through operator new while
// armed, so tests can check that a lying header never makes us allocate more
// than the file is worth.
#include <cstddef>

namespace qs::test {
void alloc_tracker_reset();
std::size_t alloc_tracker_largest();
}  // namespace qs::test
