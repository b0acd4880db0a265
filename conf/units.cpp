#include "conf/units.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <limits>
#include <utility>

namespace conf {
namespace {

// Splits "<digits><unit>" and scales the number by the unit's factor; nullopt when the
// unit is not in the table or the product overflows.
template <std::size_t N>
std::optional<std::uint64_t> scaled(std::string_view text,
                                    const std::array<std::pair<std::string_view, std::uint64_t>, N>& units,
                                    bool ignore_case) noexcept {
    const auto digits_end = std::find_if(text.begin(), text.end(),
                                         [](char c) { return c < '0' || c > '9'; });
    const auto n = parse_uint(text.substr(0, static_cast<std::size_t>(digits_end - text.begin())));
    if (!n) return std::nullopt;
    const std::string_view unit(digits_end, text.end());
    const auto same = [&](std::string_view known) {
        return std::equal(unit.begin(), unit.end(), known.begin(), known.end(), [&](char a, char b) {
            return ignore_case ? std::toupper(static_cast<unsigned char>(a)) == b : a == b;
        });
    };
    for (const auto& [name, factor] : units) {
        if (!same(name)) continue;
        if (*n > std::numeric_limits<std::uint64_t>::max() / factor) return std::nullopt;
        return *n * factor;
    }
    return std::nullopt;
}

}  // namespace

std::optional<std::uint64_t> parse_uint(std::string_view text) noexcept {
    std::uint64_t n = 0;
    // from_chars takes no sign for unsigned types and reports overflow.
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
    if (text.empty() || ec != std::errc{} || end != text.data() + text.size()) return std::nullopt;
    return n;
}

std::optional<std::chrono::milliseconds> parse_duration(std::string_view text) noexcept {
    static constexpr std::array<std::pair<std::string_view, std::uint64_t>, 6> units{{
        {"", 1000}, {"ms", 1}, {"s", 1000}, {"m", 60'000}, {"h", 3'600'000}, {"d", 86'400'000}}};
    const auto ms = scaled(text, units, false);
    using rep = std::chrono::milliseconds::rep;
    if (!ms || *ms > static_cast<std::uint64_t>(std::numeric_limits<rep>::max())) return std::nullopt;
    return std::chrono::milliseconds(static_cast<rep>(*ms));
}

std::optional<std::uint64_t> parse_size(std::string_view text) noexcept {
    static constexpr std::array<std::pair<std::string_view, std::uint64_t>, 5> units{{
        {"", 1}, {"B", 1}, {"KB", 1ull << 10}, {"MB", 1ull << 20}, {"GB", 1ull << 30}}};
    return scaled(text, units, true);
}

}  // namespace conf
