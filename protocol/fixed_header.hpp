#pragma once
// Checks on the first byte of a packet (spec 2.1), which the decoder applies before it
// waits for the rest, so that garbage is rejected as early as possible. Private to the codec.
#include <cstdint>
#include <optional>

#include "protocol/packet.hpp"

namespace mqtt {

inline reason_code check_fixed_header(std::uint8_t first, std::optional<protocol_version> version) noexcept {
    const auto type = first >> 4;
    const auto flags = first & 0x0F;
    if (type == 0) return reason_code::malformed_packet;
    // [MQTT-3.1.0-1] The first packet on a connection is a CONNECT.
    if (!version && type != int(packet_type::connect)) return reason_code::protocol_error;
    if (type == int(packet_type::auth) && *version != protocol_version::v5) return reason_code::malformed_packet;
    switch (static_cast<packet_type>(type)) {
    case packet_type::publish: {
        const auto qos = (flags >> 1) & 3;
        const bool dup = flags & 8;
        // [MQTT-3.3.1-4] QoS 3; [MQTT-3.3.1-2] DUP set on a QoS 0 message.
        return qos == 3 || (qos == 0 && dup) ? reason_code::malformed_packet : reason_code::success;
    }
    // [MQTT-3.6.1-1], [MQTT-3.8.1-1], [MQTT-3.10.1-1]
    case packet_type::pubrel:
    case packet_type::subscribe:
    case packet_type::unsubscribe: return flags == 0x2 ? reason_code::success : reason_code::malformed_packet;
    default: return flags == 0 ? reason_code::success : reason_code::malformed_packet;
    }
}

}  // namespace mqtt
