#pragma once
// Durations and byte sizes as EMQX 4.x config files write them. Each parser returns
// nullopt for anything it does not accept (negative, overflowing, unknown unit, junk);
// callers turn that into a config_error naming the file, line and key.
#include <chrono>
#include <cstdint>
#include <optional>
#include <string_view>

namespace conf {

// Digits only: no sign, no spaces, no fraction.
std::optional<std::uint64_t> parse_uint(std::string_view text) noexcept;

// <n>[ms|s|m|h|d]; a plain <n> means seconds, as in EMQX. `infinity` is not a
// duration: the few keys that allow it (time_range) check for it first.
std::optional<std::chrono::milliseconds> parse_duration(std::string_view text) noexcept;

// <n>[B|KB|MB|GB], units case-insensitive and binary (1KB = 1024 bytes) as in EMQX;
// a plain <n> means bytes.
std::optional<std::uint64_t> parse_size(std::string_view text) noexcept;

}  // namespace conf
