#pragma once
// Broker-wide counters, bumped from every thread and read for $SYS.
#include <atomic>
#include <cstdint>

namespace mqttd {

struct stats {
    std::atomic<std::int64_t> clients_connected{0};
    std::atomic<std::uint64_t> clients_total{0};  // connections accepted since start
    std::atomic<std::uint64_t> messages_received{0};
    std::atomic<std::uint64_t> messages_sent{0};
    std::atomic<std::uint64_t> messages_dropped{0};
    std::atomic<std::uint64_t> publish_received{0};
    std::atomic<std::uint64_t> publish_sent{0};
    std::atomic<std::uint64_t> bytes_received{0};
    std::atomic<std::uint64_t> bytes_sent{0};

    static void bump(std::atomic<std::uint64_t>& c, std::uint64_t n = 1) { c.fetch_add(n, std::memory_order_relaxed); }
};

}  // namespace mqttd
