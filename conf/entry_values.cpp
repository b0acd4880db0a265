#include "conf/entry_values.hpp"

#include <charconv>
#include <cmath>

namespace conf {

void bad_value(const entry& e, std::string_view expected) {
    throw config_error(e.where, fmt::format("{}: bad value \"{}\": expected {}", e.key, e.value, expected));
}

bool to_bool(const entry& e) {
    if (e.value == "true" || e.value == "on") return true;
    if (e.value == "false" || e.value == "off") return false;
    bad_value(e, "true, false, on or off");
}

std::string to_nonempty(const entry& e) {
    if (e.value.empty()) bad_value(e, "a non-empty value");
    return e.value;
}

double to_positive_double(const entry& e) {
    double x = 0;
    const auto end = e.value.data() + e.value.size();
    const auto [ptr, ec] = std::from_chars(e.value.data(), end, x);
    if (e.value.empty() || ec != std::errc{} || ptr != end || !std::isfinite(x) || x <= 0)
        bad_value(e, "a number greater than 0");
    return x;
}

std::chrono::milliseconds to_duration(const entry& e, std::chrono::milliseconds max) {
    const auto d = parse_duration(e.value);
    if (!d || *d > max) {
        std::string expected = "a duration such as 500ms, 30s, 15m, 2h or 1d";
        if (max != std::chrono::milliseconds::max())
            expected += fmt::format(", at most {}s", std::chrono::duration_cast<std::chrono::seconds>(max).count());
        bad_value(e, expected);
    }
    return *d;
}

std::uint64_t to_size(const entry& e, std::uint64_t min, std::uint64_t max) {
    const auto n = parse_size(e.value);
    if (!n || *n < min || *n > max)
        bad_value(e, fmt::format("a size such as 256, 64KB or 1MB, in {}..{} bytes", min, max));
    return *n;
}

}  // namespace conf
