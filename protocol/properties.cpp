#include "protocol/properties.hpp"

#include <algorithm>

namespace mqtt {

std::optional<property_info> describe(std::uint8_t id) noexcept {
    using t = property_type;
    constexpr auto connect = std::uint16_t(property_context::connect);
    constexpr auto connack = std::uint16_t(property_context::connack);
    constexpr auto publish = std::uint16_t(property_context::publish);
    constexpr auto will = std::uint16_t(property_context::will);
    constexpr auto ack = std::uint16_t(property_context::puback);
    constexpr auto subscribe = std::uint16_t(property_context::subscribe);
    constexpr auto suback = std::uint16_t(property_context::suback);
    constexpr auto unsubscribe = std::uint16_t(property_context::unsubscribe);
    constexpr auto unsuback = std::uint16_t(property_context::unsuback);
    constexpr auto disconnect = std::uint16_t(property_context::disconnect);
    constexpr auto auth = std::uint16_t(property_context::auth);
    constexpr auto message = std::uint16_t(publish | will);

    using enum property_id;
    switch (static_cast<property_id>(id)) {
    case payload_format_indicator: return property_info{t::byte, message, false};
    case message_expiry_interval: return property_info{t::four_byte_integer, message, false};
    case content_type: return property_info{t::utf8_string, message, false};
    case response_topic: return property_info{t::utf8_string, message, false};
    case correlation_data: return property_info{t::binary_data, message, false};
    // Repeats in PUBLISH only; the decoder rejects a second one in SUBSCRIBE.
    case subscription_identifier:
        return property_info{t::variable_byte_integer, std::uint16_t(publish | subscribe), true};
    case session_expiry_interval:
        return property_info{t::four_byte_integer, std::uint16_t(connect | connack | disconnect), false};
    case assigned_client_identifier: return property_info{t::utf8_string, connack, false};
    case server_keep_alive: return property_info{t::two_byte_integer, connack, false};
    case authentication_method:
        return property_info{t::utf8_string, std::uint16_t(connect | connack | auth), false};
    case authentication_data:
        return property_info{t::binary_data, std::uint16_t(connect | connack | auth), false};
    case request_problem_information: return property_info{t::byte, connect, false};
    case will_delay_interval: return property_info{t::four_byte_integer, will, false};
    case request_response_information: return property_info{t::byte, connect, false};
    case response_information: return property_info{t::utf8_string, connack, false};
    case server_reference: return property_info{t::utf8_string, std::uint16_t(connack | disconnect), false};
    case reason_string:
        return property_info{t::utf8_string,
                             std::uint16_t(connack | ack | suback | unsuback | disconnect | auth), false};
    case receive_maximum: return property_info{t::two_byte_integer, std::uint16_t(connect | connack), false};
    case topic_alias_maximum: return property_info{t::two_byte_integer, std::uint16_t(connect | connack), false};
    case topic_alias: return property_info{t::two_byte_integer, publish, false};
    case maximum_qos: return property_info{t::byte, connack, false};
    case retain_available: return property_info{t::byte, connack, false};
    case user_property:
        return property_info{t::utf8_string_pair,
                             std::uint16_t(connect | connack | publish | will | ack | subscribe | suback |
                                           unsubscribe | unsuback | disconnect | auth),
                             true};
    case maximum_packet_size: return property_info{t::four_byte_integer, std::uint16_t(connect | connack), false};
    case wildcard_subscription_available: return property_info{t::byte, connack, false};
    case subscription_identifier_available: return property_info{t::byte, connack, false};
    case shared_subscription_available: return property_info{t::byte, connack, false};
    }
    return std::nullopt;
}

void properties::set(property_id id, property_value v) {
    auto it = std::find_if(items_.begin(), items_.end(), [id](const property& p) { return p.id == id; });
    if (it == items_.end())
        items_.push_back({id, std::move(v)});
    else
        it->value = std::move(v);
}

void properties::erase(property_id id) {
    std::erase_if(items_, [id](const property& p) { return p.id == id; });
}

const property* properties::find(property_id id) const noexcept {
    for (const auto& p : items_)
        if (p.id == id) return &p;
    return nullptr;
}

std::optional<std::uint32_t> properties::integer(property_id id) const noexcept {
    const auto* p = find(id);
    const auto* v = p ? std::get_if<std::uint32_t>(&p->value) : nullptr;
    return v ? std::optional(*v) : std::nullopt;
}

std::optional<std::string_view> properties::string(property_id id) const noexcept {
    const auto* p = find(id);
    const auto* v = p ? std::get_if<std::string>(&p->value) : nullptr;
    return v ? std::optional<std::string_view>(*v) : std::nullopt;
}

std::vector<string_pair> properties::user_properties() const {
    std::vector<string_pair> out;
    for (const auto& p : items_)
        if (const auto* v = std::get_if<string_pair>(&p.value); v && p.id == property_id::user_property)
            out.push_back(*v);
    return out;
}

std::vector<std::uint32_t> properties::subscription_identifiers() const {
    std::vector<std::uint32_t> out;
    for (const auto& p : items_)
        if (const auto* v = std::get_if<std::uint32_t>(&p.value); v && p.id == property_id::subscription_identifier)
            out.push_back(*v);
    return out;
}

}  // namespace mqtt
