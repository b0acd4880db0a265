#pragma once
// Minimal leveled logging to stderr: one write per line, so lines from several threads
// do not interleave.
#include <fmt/format.h>

#include <atomic>
#include <string_view>

namespace mqttd::log {

enum class level : int { debug = 0, info, warning, error };

inline std::atomic<level> threshold{level::info};

inline bool enabled(level l) noexcept { return threshold.load(std::memory_order_relaxed) <= l; }

// The level of the same name in another enum of these four names (the configuration's,
// the PostgreSQL layer's).
template <class Level>
constexpr level level_of(Level l) noexcept {
    switch (l) {
        case Level::debug: return level::debug;
        case Level::info: return level::info;
        case Level::warning: return level::warning;
        case Level::error: return level::error;
    }
    return level::error;
}

void write(level l, std::string_view text);

template <class... Args>
void debug(fmt::format_string<Args...> f, Args&&... args) {
    if (threshold.load(std::memory_order_relaxed) <= level::debug) write(level::debug, fmt::format(f, std::forward<Args>(args)...));
}
template <class... Args>
void info(fmt::format_string<Args...> f, Args&&... args) {
    if (threshold.load(std::memory_order_relaxed) <= level::info) write(level::info, fmt::format(f, std::forward<Args>(args)...));
}
template <class... Args>
void warning(fmt::format_string<Args...> f, Args&&... args) {
    if (threshold.load(std::memory_order_relaxed) <= level::warning) write(level::warning, fmt::format(f, std::forward<Args>(args)...));
}
template <class... Args>
void error(fmt::format_string<Args...> f, Args&&... args) {
    write(level::error, fmt::format(f, std::forward<Args>(args)...));
}

}  // namespace mqttd::log
