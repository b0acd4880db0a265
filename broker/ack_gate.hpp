#pragma once
// When a publisher's PUBACK or PUBREC may be sent, and with which reason code. Opened
// once, by whoever decides (the hooks' publish_token on release, or the connection at
// once), on any thread; read on the connection's thread. A QoS 2 message keeps its gate
// in the session until PUBREL, so a copy sent again, even on a later connection, is
// answered only when the first copy was stored [MQTT-4.3.3].
#include <atomic>
#include <cstdint>
#include <memory>

#include "protocol/reason_code.hpp"

namespace mqttd {

class ack_gate {
public:
    static std::shared_ptr<ack_gate> opened(mqtt::reason_code rc = mqtt::reason_code::success) {
        auto g = std::make_shared<ack_gate>();
        g->open(rc);
        return g;
    }
    void open(mqtt::reason_code rc) noexcept {
        reason_.store(static_cast<std::uint8_t>(rc), std::memory_order_relaxed);
        open_.store(true, std::memory_order_release);
    }
    bool is_open() const noexcept { return open_.load(std::memory_order_acquire); }
    // Once open.
    mqtt::reason_code reason() const noexcept { return static_cast<mqtt::reason_code>(reason_.load(std::memory_order_relaxed)); }

private:
    std::atomic<bool> open_{false};
    std::atomic<std::uint8_t> reason_{0};
};
using ack_gate_ptr = std::shared_ptr<ack_gate>;

}  // namespace mqttd
