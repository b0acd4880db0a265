#pragma once
// Typed reads of one config entry. Each throws config_error naming the entry's file,
// line and key, with the value and what was expected instead.
#include <array>
#include <chrono>
#include <cstdint>
#include <limits>
#include <string>
#include <string_view>
#include <utility>

#include <fmt/format.h>

#include "conf/config_file.hpp"
#include "conf/units.hpp"

namespace conf {

[[noreturn]] void bad_value(const entry& e, std::string_view expected);

// true|false|on|off
bool to_bool(const entry& e);
std::string to_nonempty(const entry& e);
// A finite number > 0.
double to_positive_double(const entry& e);
std::chrono::milliseconds to_duration(const entry& e,
                                      std::chrono::milliseconds max = std::chrono::milliseconds::max());
std::uint64_t to_size(const entry& e, std::uint64_t min, std::uint64_t max);

template <class T>
T to_uint(const entry& e, T min, T max = std::numeric_limits<T>::max()) {
    const auto n = parse_uint(e.value);
    if (!n || *n < min || *n > max) bad_value(e, fmt::format("an integer in {}..{}", min, max));
    return static_cast<T>(*n);
}

template <class E, std::size_t N>
E to_enum(const entry& e, const std::array<std::pair<std::string_view, E>, N>& names) {
    for (const auto& [name, value] : names)
        if (e.value == name) return value;
    std::string expected = "one of";
    for (const auto& [name, value] : names) expected += fmt::format(" {}", name);
    bad_value(e, expected);
}

}  // namespace conf
