#pragma once
// MQTT 5.0 reason codes (spec 2.4) and an error category so they travel as std::error_code.
#include <cstdint>
#include <string_view>
#include <system_error>

namespace mqtt {

enum class reason_code : std::uint8_t {
    success = 0x00,  // also: normal disconnection, granted QoS 0
    granted_qos_1 = 0x01,
    granted_qos_2 = 0x02,
    disconnect_with_will = 0x04,
    no_matching_subscribers = 0x10,
    no_subscription_existed = 0x11,
    continue_authentication = 0x18,
    reauthenticate = 0x19,
    unspecified_error = 0x80,
    malformed_packet = 0x81,
    protocol_error = 0x82,
    implementation_specific_error = 0x83,
    unsupported_protocol_version = 0x84,
    client_identifier_not_valid = 0x85,
    bad_user_name_or_password = 0x86,
    not_authorized = 0x87,
    server_unavailable = 0x88,
    server_busy = 0x89,
    banned = 0x8A,
    server_shutting_down = 0x8B,
    bad_authentication_method = 0x8C,
    keep_alive_timeout = 0x8D,
    session_taken_over = 0x8E,
    topic_filter_invalid = 0x8F,
    topic_name_invalid = 0x90,
    packet_identifier_in_use = 0x91,
    packet_identifier_not_found = 0x92,
    receive_maximum_exceeded = 0x93,
    topic_alias_invalid = 0x94,
    packet_too_large = 0x95,
    message_rate_too_high = 0x96,
    quota_exceeded = 0x97,
    administrative_action = 0x98,
    payload_format_invalid = 0x99,
    retain_not_supported = 0x9A,
    qos_not_supported = 0x9B,
    use_another_server = 0x9C,
    server_moved = 0x9D,
    shared_subscriptions_not_supported = 0x9E,
    connection_rate_exceeded = 0x9F,
    maximum_connect_time = 0xA0,
    subscription_identifiers_not_supported = 0xA1,
    wildcard_subscriptions_not_supported = 0xA2,
};

// MQTT 3.1.1 CONNACK return codes (spec 3.1.1, 3.2.2.3).
enum class connack_return_code : std::uint8_t {
    accepted = 0,
    unacceptable_protocol_version = 1,
    identifier_rejected = 2,
    server_unavailable = 3,
    bad_user_name_or_password = 4,
    not_authorized = 5,
};

std::string_view to_string(reason_code rc) noexcept;

// Maps a 5.0 CONNACK reason to the closest 3.1.1 return code (spec 5.0, 3.2.2.2 notes).
connack_return_code to_v311_connack(reason_code rc) noexcept;

const std::error_category& reason_category() noexcept;

inline std::error_code make_error_code(reason_code rc) noexcept {
    return {static_cast<int>(rc), reason_category()};
}

// The reason code an error_code carries, or unspecified_error for foreign categories.
reason_code to_reason_code(const std::error_code& ec) noexcept;

}  // namespace mqtt

template <>
struct std::is_error_code_enum<mqtt::reason_code> : std::true_type {};
