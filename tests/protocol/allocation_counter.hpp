#pragma once
// The test binary replaces the global operator new to count allocations.
#include <cstddef>

namespace test {

std::size_t allocation_count() noexcept;

}  // namespace test
