#pragma once
// What the clients of one generator thread count and measure. Counters are atomic so
// the controller can read them live for progress and phase changes; histograms are
// written by that thread alone and read only after it has stopped.
#include <atomic>
#include <chrono>
#include <cstdint>

#include "bench/histogram.hpp"

namespace bench {

using clock = std::chrono::steady_clock;

inline std::int64_t to_ns(clock::time_point t) noexcept {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
}

struct shard {
    std::atomic<std::uint64_t> connects{0};
    std::atomic<std::uint64_t> connect_failures{0};
    std::atomic<std::uint64_t> subscribed{0};
    std::atomic<std::uint64_t> published{0};
    std::atomic<std::uint64_t> acked{0};  // PUBACK, or PUBCOMP for QoS 2
    std::atomic<std::uint64_t> delivered{0};
    std::atomic<std::uint64_t> closed{0};
    std::atomic<std::uint64_t> unexpected_closes{0};  // closed by the broker or the network
    std::atomic<std::int64_t> last_connack_ns{0};
    std::atomic<std::int64_t> last_delivery_ns{0};

    histogram latency;          // publisher's send to subscriber's receipt
    histogram ack_latency;      // PUBLISH sent to PUBACK (QoS 1) or PUBCOMP (QoS 2) received
    histogram connect_latency;  // TCP connect started to CONNACK received
    histogram connack_latency;  // CONNECT sent to CONNACK received: the broker's part
};

// Switched by the controller, read by every client.
struct run_flags {
    std::atomic<bool> publishing{false};
    std::atomic<bool> measuring{false};
};

}  // namespace bench
