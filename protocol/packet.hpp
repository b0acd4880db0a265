#pragma once
// Every MQTT control packet of 3.1, 3.1.1 and 5.0 as plain values. The codec turns
// bytes into these and back; nothing here does I/O.
#include <cstdint>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "protocol/properties.hpp"
#include "protocol/reason_code.hpp"
#include "protocol/shared_payload.hpp"

namespace mqtt {

enum class protocol_version : std::uint8_t { v31 = 3, v311 = 4, v5 = 5 };

enum class packet_type : std::uint8_t {
    connect = 1, connack, publish, puback, pubrec, pubrel, pubcomp,
    subscribe, suback, unsubscribe, unsuback, pingreq, pingresp, disconnect, auth,
};

enum class qos : std::uint8_t { at_most_once = 0, at_least_once = 1, exactly_once = 2 };

struct will_message {
    std::string topic;
    shared_payload payload;
    mqtt::qos qos = qos::at_most_once;
    bool retain = false;
    properties props;  // 5.0 will properties
    friend bool operator==(const will_message&, const will_message&) = default;
};

struct connect {
    protocol_version version = protocol_version::v311;
    bool clean_start = true;  // "clean session" in 3.1.1
    std::uint16_t keep_alive = 0;
    std::string client_id;
    std::optional<will_message> will;
    std::optional<std::string> username;
    std::optional<std::string> password;  // binary data
    properties props;
    friend bool operator==(const connect&, const connect&) = default;
};

struct connack {
    bool session_present = false;
    // 5.0 reason code; for 3.1.1 the return code's numeric value is carried here.
    std::uint8_t reason = 0;
    properties props;
    friend bool operator==(const connack&, const connack&) = default;
};

struct publish {
    std::string topic;
    shared_payload payload;
    mqtt::qos qos = qos::at_most_once;
    bool retain = false;
    bool dup = false;
    std::uint16_t packet_id = 0;  // 0 for QoS 0
    properties props;
    friend bool operator==(const publish&, const publish&) = default;
};

// PUBACK, PUBREC, PUBREL and PUBCOMP share one shape (spec 3.4-3.7).
// A 5.0 ack may omit the reason code and/or the property length; `wire_length`
// remembers a decoded form longer than needed (3: reason code only, 4: reason code and
// property length) so it re-encodes identically. 0 means "the shortest form that carries
// reason and props", and is what the decoder reports when the wire used that form; a
// value too short for the content is treated as 0.
struct ack_packet {
    std::uint16_t packet_id = 0;
    reason_code reason = reason_code::success;
    properties props;
    std::uint8_t wire_length = 0;
    friend bool operator==(const ack_packet&, const ack_packet&) = default;
};
struct puback : ack_packet {};
struct pubrec : ack_packet {};
struct pubrel : ack_packet {};
struct pubcomp : ack_packet {};

struct subscribe_options {
    mqtt::qos max_qos = qos::at_most_once;
    bool no_local = false;             // 5.0
    bool retain_as_published = false;  // 5.0
    std::uint8_t retain_handling = 0;  // 5.0: 0, 1 or 2
    friend bool operator==(const subscribe_options&, const subscribe_options&) = default;
};

struct subscription {
    std::string filter;
    subscribe_options options;
    friend bool operator==(const subscription&, const subscription&) = default;
};

struct subscribe {
    std::uint16_t packet_id = 0;
    std::vector<subscription> subscriptions;
    properties props;
    friend bool operator==(const subscribe&, const subscribe&) = default;
};

struct suback {
    std::uint16_t packet_id = 0;
    // 5.0 reason codes; for 3.1.1 0x00-0x02 granted QoS or 0x80 failure.
    std::vector<std::uint8_t> reasons;
    properties props;
    friend bool operator==(const suback&, const suback&) = default;
};

struct unsubscribe {
    std::uint16_t packet_id = 0;
    std::vector<std::string> filters;
    properties props;
    friend bool operator==(const unsubscribe&, const unsubscribe&) = default;
};

struct unsuback {
    std::uint16_t packet_id = 0;
    std::vector<std::uint8_t> reasons;  // 5.0 only; empty for 3.1.1
    properties props;
    friend bool operator==(const unsuback&, const unsuback&) = default;
};

struct pingreq {
    friend bool operator==(const pingreq&, const pingreq&) = default;
};
struct pingresp {
    friend bool operator==(const pingresp&, const pingresp&) = default;
};

struct disconnect {
    reason_code reason = reason_code::success;
    properties props;
    // As ack_packet, in bytes of body: 1 (reason code only) or 2 (reason code and
    // property length) when longer than needed; 0 for the shortest form.
    std::uint8_t wire_length = 0;
    friend bool operator==(const disconnect&, const disconnect&) = default;
};

struct auth {
    reason_code reason = reason_code::success;
    properties props;
    // As disconnect, but AUTH has no 1-byte form (spec 3.15.2.1): 2 keeps a reason code and
    // property length that could have been omitted; 0 for the shortest form.
    std::uint8_t wire_length = 0;
    friend bool operator==(const auth&, const auth&) = default;
};

using packet = std::variant<connect, connack, publish, puback, pubrec, pubrel, pubcomp,
                            subscribe, suback, unsubscribe, unsuback, pingreq, pingresp,
                            disconnect, auth>;

packet_type type_of(const packet& p) noexcept;

}  // namespace mqtt
