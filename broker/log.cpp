#include "broker/log.hpp"

#include <unistd.h>

#include <chrono>
#include <string>

namespace mqttd::log {

void write(level l, std::string_view text) {
    static constexpr std::string_view names[] = {"debug", "info", "warning", "error"};
    auto now = std::chrono::system_clock::now();
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count();
    std::string line = fmt::format("{}.{:03} [{}] {}\n", ms / 1000, ms % 1000, names[static_cast<int>(l)], text);
    [[maybe_unused]] auto n = ::write(2, line.data(), line.size());
}

}  // namespace mqttd::log
