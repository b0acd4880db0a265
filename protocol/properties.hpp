#pragma once
// MQTT 5.0 properties (spec 2.2.2.2). Kept in wire order so that encoding what was
// decoded gives the same bytes; lookups are linear because packets carry few properties.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace mqtt {

enum class property_id : std::uint8_t {
    payload_format_indicator = 0x01,
    message_expiry_interval = 0x02,
    content_type = 0x03,
    response_topic = 0x08,
    correlation_data = 0x09,
    subscription_identifier = 0x0B,
    session_expiry_interval = 0x11,
    assigned_client_identifier = 0x12,
    server_keep_alive = 0x13,
    authentication_method = 0x15,
    authentication_data = 0x16,
    request_problem_information = 0x17,
    will_delay_interval = 0x18,
    request_response_information = 0x19,
    response_information = 0x1A,
    server_reference = 0x1C,
    reason_string = 0x1F,
    receive_maximum = 0x21,
    topic_alias_maximum = 0x22,
    topic_alias = 0x23,
    maximum_qos = 0x24,
    retain_available = 0x25,
    user_property = 0x26,
    maximum_packet_size = 0x27,
    wildcard_subscription_available = 0x28,
    subscription_identifier_available = 0x29,
    shared_subscription_available = 0x2A,
};

enum class property_type : std::uint8_t {
    byte,
    two_byte_integer,
    four_byte_integer,
    variable_byte_integer,
    utf8_string,
    binary_data,
    utf8_string_pair,
};

// Where a property may appear (spec 2.2.2.2 table); a bit per context.
enum class property_context : std::uint16_t {
    connect = 1u << 0,
    connack = 1u << 1,
    publish = 1u << 2,
    will = 1u << 3,
    puback = 1u << 4,  // also PUBREC, PUBREL, PUBCOMP
    subscribe = 1u << 5,
    suback = 1u << 6,
    unsubscribe = 1u << 7,
    unsuback = 1u << 8,
    disconnect = 1u << 9,
    auth = 1u << 10,
};

struct property_info {
    property_type type;
    std::uint16_t contexts;  // property_context bits
    bool may_repeat;         // user properties; subscription identifiers in PUBLISH
};

// nullopt for an identifier the specification does not define.
std::optional<property_info> describe(std::uint8_t id) noexcept;

using string_pair = std::pair<std::string, std::string>;
// byte / two-byte / four-byte / varint values are all held in uint32_t; the id says which.
using property_value = std::variant<std::uint32_t, std::string, string_pair>;

struct property {
    property_id id;
    property_value value;
    friend bool operator==(const property&, const property&) = default;
};

class properties {
public:
    bool empty() const noexcept { return items_.empty(); }
    std::size_t size() const noexcept { return items_.size(); }
    auto begin() const noexcept { return items_.begin(); }
    auto end() const noexcept { return items_.end(); }

    void add(property_id id, property_value v) { items_.push_back({id, std::move(v)}); }
    void reserve(std::size_t n) { items_.reserve(n); }
    // Replaces the first property with this id (or adds it).
    void set(property_id id, property_value v);
    void erase(property_id id);  // removes every occurrence
    const property* find(property_id id) const noexcept;

    std::optional<std::uint32_t> integer(property_id id) const noexcept;
    std::optional<std::string_view> string(property_id id) const noexcept;
    std::vector<string_pair> user_properties() const;
    std::vector<std::uint32_t> subscription_identifiers() const;

    friend bool operator==(const properties&, const properties&) = default;

private:
    std::vector<property> items_;
};

}  // namespace mqtt
