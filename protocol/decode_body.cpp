// Packet bodies to packets, with the validation the specifications prescribe. Each
// violation fails the reader with the reason code the 5.0 specification gives for it
// (spec 4.13); for 3.1 and 3.1.1 every violation closes the connection, and the code
// still says why.
#include <array>
#include <initializer_list>

#include "protocol/decoder.hpp"
#include "protocol/fixed_header.hpp"
#include "protocol/topic.hpp"
#include "protocol/wire.hpp"

namespace mqtt {

namespace {

using wire::reader;
using enum reason_code;

// A set of byte values, for the reason codes each packet may carry.
class code_set {
public:
    constexpr code_set(std::initializer_list<std::uint8_t> codes) {
        for (auto c : codes) bits_[c >> 6] |= std::uint64_t{1} << (c & 63);
    }
    constexpr bool contains(std::uint8_t c) const { return (bits_[c >> 6] >> (c & 63)) & 1; }

private:
    std::array<std::uint64_t, 4> bits_{};
};

// Reason code tables of spec 3.2.2.2, 3.4.2.1-3.7.2.1, 3.9.3, 3.11.3, 3.14.2.1 and 3.15.2.1.
constexpr code_set connack_codes{0x00, 0x80, 0x81, 0x82, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89,
                                 0x8A, 0x8C, 0x90, 0x95, 0x97, 0x99, 0x9A, 0x9B, 0x9C, 0x9D, 0x9F};
constexpr code_set puback_codes{0x00, 0x10, 0x80, 0x83, 0x87, 0x90, 0x91, 0x97, 0x99};
constexpr code_set pubrel_codes{0x00, 0x92};
constexpr code_set suback_codes{0x00, 0x01, 0x02, 0x80, 0x83, 0x87, 0x8F, 0x91, 0x97, 0x9E, 0xA1, 0xA2};
constexpr code_set suback_v311_codes{0x00, 0x01, 0x02, 0x80};
constexpr code_set unsuback_codes{0x00, 0x11, 0x80, 0x83, 0x87, 0x8F, 0x91};
constexpr code_set disconnect_codes{0x00, 0x04, 0x80, 0x81, 0x82, 0x83, 0x87, 0x89, 0x8B, 0x8D,
                                    0x8E, 0x8F, 0x90, 0x93, 0x94, 0x95, 0x96, 0x97, 0x98, 0x99,
                                    0x9A, 0x9B, 0x9C, 0x9D, 0x9E, 0x9F, 0xA0, 0xA1, 0xA2};
constexpr code_set auth_codes{0x00, 0x18, 0x19};

// Reason codes outside a packet's table parse but are not allowed: a Protocol Error.
reason_code read_reason(reader& r, const code_set& allowed) {
    const auto rc = r.u8();
    if (!allowed.contains(rc)) r.fail(protocol_error);
    return static_cast<reason_code>(rc);
}

// [MQTT-2.2.1-3] Packets that carry an identifier carry a non-zero one.
std::uint16_t read_packet_id(reader& r) {
    const auto id = r.u16();
    if (id == 0) r.fail(protocol_error);
    return id;
}

std::uint64_t bit(property_id id) { return std::uint64_t{1} << static_cast<unsigned>(id); }

// Reads one property identifier and value without validating it.
std::optional<property_info> skip_property(reader& r) {
    const auto id = r.varint();
    const auto info = id <= 0xFF ? describe(static_cast<std::uint8_t>(id)) : std::nullopt;
    if (!info) return std::nullopt;
    switch (info->type) {
    case property_type::byte: r.bytes(1); break;
    case property_type::two_byte_integer: r.bytes(2); break;
    case property_type::four_byte_integer: r.bytes(4); break;
    case property_type::variable_byte_integer: r.varint(); break;
    case property_type::utf8_string:
    case property_type::binary_data: r.binary(); break;
    case property_type::utf8_string_pair:
        r.binary();
        r.binary();
        break;
    }
    return info;
}

// How many properties a block holds, so the container is allocated once.
std::size_t count_properties(std::string_view block) {
    reader r(block);
    std::size_t n = 0;
    while (!r.empty() && skip_property(r) && !r.failed()) ++n;
    return n;
}

property_value read_value(reader& r, property_type type) {
    switch (type) {
    case property_type::byte: return std::uint32_t{r.u8()};
    case property_type::two_byte_integer: return std::uint32_t{r.u16()};
    case property_type::four_byte_integer: return r.u32();
    case property_type::variable_byte_integer: return r.varint();
    case property_type::utf8_string: return std::string(r.utf8());
    case property_type::binary_data: return std::string(r.binary());
    case property_type::utf8_string_pair: {
        auto key = r.utf8();
        auto value = r.utf8();
        return string_pair(key, value);
    }
    }
    return {};
}

// Value rules of spec 3.x: the Protocol Errors "to have the value 0" or "other than 0 or 1".
reason_code check_value(property_id id, const property_value& v) {
    using enum property_id;
    if (const auto* s = std::get_if<std::string>(&v))
        // [MQTT-3.3.2-14] The Response Topic is a topic name, free of wildcards.
        return id == response_topic && !valid_topic_name(*s) ? protocol_error : success;
    const auto* n = std::get_if<std::uint32_t>(&v);
    if (!n) return success;
    switch (id) {
    case payload_format_indicator:
    case request_problem_information:
    case request_response_information:
    case maximum_qos:
    case retain_available:
    case wildcard_subscription_available:
    case subscription_identifier_available:
    case shared_subscription_available: return *n > 1 ? protocol_error : success;
    case receive_maximum:
    case maximum_packet_size:
    case subscription_identifier: return *n == 0 ? protocol_error : success;
    // [MQTT-3.3.2-8]
    case topic_alias: return *n == 0 ? topic_alias_invalid : success;
    default: return success;
    }
}

// Spec 2.2.2: an identifier unknown or not allowed in this packet is a Malformed Packet;
// a repeated one that may not repeat is a Protocol Error.
void read_properties(reader& r, property_context context, properties& out) {
    const auto ctx = static_cast<std::uint16_t>(context);
    const auto bytes = r.bytes(r.varint());
    if (bytes.empty()) return;
    out.reserve(count_properties(bytes));
    reader block(bytes);
    std::uint64_t seen = 0;
    while (!block.empty() && !block.failed()) {
        const auto id = block.varint();
        const auto info = id <= 0xFF ? describe(static_cast<std::uint8_t>(id)) : std::nullopt;
        if (!info || !(info->contexts & ctx)) {
            block.fail(malformed_packet);
            break;
        }
        const auto pid = static_cast<property_id>(id);
        // Spec 3.8.2.1.2: one Subscription Identifier per SUBSCRIBE.
        const bool may_repeat = info->may_repeat &&
                                !(pid == property_id::subscription_identifier && context == property_context::subscribe);
        if ((seen & bit(pid)) && !may_repeat) block.fail(protocol_error);
        seen |= bit(pid);
        auto value = read_value(block, info->type);
        if (block.failed()) break;
        if (const auto rc = check_value(pid, value); rc != success) block.fail(rc);
        out.add(pid, std::move(value));
    }
    // "It is a Protocol Error to include Authentication Data if there is no Authentication Method."
    if ((seen & bit(property_id::authentication_data)) && !(seen & bit(property_id::authentication_method)))
        block.fail(protocol_error);
    if (block.failed()) r.fail(block.error());
}

bool is_v5(protocol_version v) { return v == protocol_version::v5; }

connect read_connect(reader& r, std::optional<protocol_version>& version) {
    connect c;
    const auto name = r.utf8();
    const auto level = r.u8();
    if (r.failed()) return c;
    // [MQTT-3.1.2-1], [MQTT-3.1.2-2]: 5.0 answers both an unknown name and an unknown
    // level with 0x84. The version is published at once so a broker can pick the CONNACK
    // form even if the rest of this CONNECT is malformed.
    if (name == "MQTT" && (level == 4 || level == 5))
        c.version = static_cast<protocol_version>(level);
    else if (name == "MQIsdp" && level == 3)
        c.version = protocol_version::v31;
    else
        r.fail(unsupported_protocol_version);
    if (r.failed()) return c;
    if (!version) version = c.version;

    const auto flags = r.u8();
    const bool will = flags & 0x04;
    const auto will_qos = (flags >> 3) & 3;
    const bool will_retain = flags & 0x20;
    const bool password = flags & 0x40;
    const bool username = flags & 0x80;
    if (flags & 0x01) r.fail(malformed_packet);  // [MQTT-3.1.2-3]
    if (will && will_qos == 3) r.fail(malformed_packet);  // [MQTT-3.1.2-12]
    // [MQTT-3.1.2-11], [MQTT-3.1.2-13]: parseable, but not allowed.
    if (!will && (will_qos != 0 || will_retain)) r.fail(protocol_error);
    // [MQTT-3.1.2-22] (3.1.1 only; 5.0 allows a password without a user name).
    if (!is_v5(c.version) && password && !username) r.fail(protocol_error);
    c.clean_start = flags & 0x02;
    c.keep_alive = r.u16();
    if (is_v5(c.version)) read_properties(r, property_context::connect, c.props);
    c.client_id = r.utf8();
    if (will) {
        will_message w;
        w.qos = static_cast<qos>(will_qos);
        w.retain = will_retain;
        if (is_v5(c.version)) read_properties(r, property_context::will, w.props);
        const auto topic = r.utf8();
        if (!r.failed() && !valid_topic_name(topic)) r.fail(topic_name_invalid);
        w.topic = topic;
        w.payload = shared_payload(r.binary());
        c.will = std::move(w);
    }
    if (username) c.username = std::string(r.utf8());
    if (password) c.password = std::string(r.binary());
    return c;
}

connack read_connack(reader& r, protocol_version v) {
    connack c;
    const auto flags = r.u8();
    // [MQTT-3.2.2-1] reserved bits; in 3.1 the whole byte is reserved (no session present).
    if (flags & (v == protocol_version::v31 ? 0xFF : 0xFE)) r.fail(malformed_packet);
    c.session_present = flags & 1;
    c.reason = r.u8();
    if (is_v5(v)) {
        if (!connack_codes.contains(c.reason)) r.fail(protocol_error);
        read_properties(r, property_context::connack, c.props);
    } else if (c.reason > static_cast<std::uint8_t>(connack_return_code::not_authorized)) {
        r.fail(protocol_error);
    }
    // [MQTT-3.2.2-6] A refusal never claims a session.
    if (c.session_present && c.reason != 0) r.fail(protocol_error);
    return c;
}

publish read_publish(reader& r, std::uint8_t first, protocol_version v) {
    publish p;
    p.qos = static_cast<qos>((first >> 1) & 3);
    p.dup = first & 8;
    p.retain = first & 1;
    const auto topic = r.utf8();
    if (has_wildcard(topic)) r.fail(topic_name_invalid);  // [MQTT-3.3.2-2]
    if (!is_v5(v) && topic.empty()) r.fail(malformed_packet);  // [MQTT-4.7.3-1]
    if (p.qos != qos::at_most_once) p.packet_id = read_packet_id(r);
    if (is_v5(v)) {
        read_properties(r, property_context::publish, p.props);
        // Spec 3.3.2.1: an empty topic needs a Topic Alias.
        if (!r.failed() && topic.empty() && !p.props.find(property_id::topic_alias)) r.fail(protocol_error);
    }
    if (r.failed()) return p;
    p.topic = topic;
    p.payload = shared_payload(r.rest());
    return p;
}

// Records a decoded form only when it is longer than the shortest one for the content,
// so that a packet built by hand compares equal to the same packet decoded.
std::uint8_t form_if_longer(std::size_t form, std::size_t shortest) {
    return form == shortest ? 0 : static_cast<std::uint8_t>(form);
}

template <class Ack>
Ack read_ack(reader& r, protocol_version v, const code_set& codes) {
    Ack a;
    a.packet_id = read_packet_id(r);
    if (!is_v5(v) || r.empty()) return a;
    // Spec 3.4.2.1: reason code and property length may be omitted (forms of 2, 3, 4+ bytes).
    a.reason = read_reason(r, codes);
    std::size_t form = 3;
    if (!r.empty()) {
        read_properties(r, property_context::puback, a.props);
        form = 4;
    }
    const std::size_t shortest = !a.props.empty() ? 4 : a.reason != success ? 3 : 2;
    a.wire_length = form_if_longer(form, shortest);
    return a;
}

// Subscription options (spec 3.8.3.1).
subscribe_options read_options(reader& r, protocol_version v, std::string_view filter) {
    const auto b = r.u8();
    subscribe_options o;
    o.max_qos = static_cast<qos>(b & 3);
    if (!is_v5(v)) {
        if ((b & 0xFC) || (b & 3) == 3) r.fail(malformed_packet);  // [MQTT-3-8.3-4]
        return o;
    }
    o.no_local = b & 0x04;
    o.retain_as_published = b & 0x08;
    o.retain_handling = (b >> 4) & 3;
    if (b & 0xC0) r.fail(malformed_packet);  // [MQTT-3.8.3-5]
    if ((b & 3) == 3 || o.retain_handling == 3) r.fail(protocol_error);
    if (o.no_local && parse_shared(filter)) r.fail(protocol_error);  // [MQTT-3.8.3-4]
    return o;
}

// A filter that breaks the rules of spec 4.7.1 / 4.8.2 parses as a string but is not
// allowed: reported as 0x8F, the Protocol Error class code that names it.
std::string_view read_filter(reader& r) {
    const auto f = r.utf8();
    if (!r.failed() && !valid_topic_filter(f)) r.fail(topic_filter_invalid);
    return f;
}

subscribe read_subscribe(reader& r, protocol_version v) {
    subscribe s;
    s.packet_id = read_packet_id(r);
    if (is_v5(v)) read_properties(r, property_context::subscribe, s.props);
    if (!r.failed() && r.empty()) r.fail(protocol_error);  // [MQTT-3.8.3-2]
    while (!r.empty()) {
        subscription sub;
        sub.filter = read_filter(r);
        sub.options = read_options(r, v, sub.filter);
        s.subscriptions.push_back(std::move(sub));
    }
    return s;
}

unsubscribe read_unsubscribe(reader& r, protocol_version v) {
    unsubscribe u;
    u.packet_id = read_packet_id(r);
    if (is_v5(v)) read_properties(r, property_context::unsubscribe, u.props);
    if (!r.failed() && r.empty()) r.fail(protocol_error);  // [MQTT-3.10.3-2]
    while (!r.empty()) u.filters.emplace_back(read_filter(r));
    return u;
}

// SUBACK and UNSUBACK answer every filter of a request that had at least one.
std::vector<std::uint8_t> read_reasons(reader& r, const code_set& codes) {
    if (!r.failed() && r.empty()) r.fail(protocol_error);
    const auto bytes = r.rest();
    for (auto c : bytes)
        if (!codes.contains(static_cast<std::uint8_t>(c))) r.fail(protocol_error);
    return {bytes.begin(), bytes.end()};
}

suback read_suback(reader& r, protocol_version v) {
    suback s;
    s.packet_id = read_packet_id(r);
    if (is_v5(v)) read_properties(r, property_context::suback, s.props);
    s.reasons = read_reasons(r, is_v5(v) ? suback_codes : suback_v311_codes);
    return s;
}

unsuback read_unsuback(reader& r, protocol_version v) {
    unsuback u;
    u.packet_id = read_packet_id(r);
    if (!is_v5(v)) return u;
    read_properties(r, property_context::unsuback, u.props);
    u.reasons = read_reasons(r, unsuback_codes);
    return u;
}

// Spec 3.14.2: a 5.0 DISCONNECT body of 0, 1 or 2+ bytes.
disconnect read_disconnect(reader& r, protocol_version v) {
    disconnect d;
    if (!is_v5(v) || r.empty()) return d;
    d.reason = read_reason(r, disconnect_codes);
    std::size_t form = 1;
    if (!r.empty()) {
        read_properties(r, property_context::disconnect, d.props);
        form = 2;
    }
    const std::size_t shortest = !d.props.empty() ? 2 : d.reason != success ? 1 : 0;
    d.wire_length = form_if_longer(form, shortest);
    return d;
}

// Spec 3.15.2: only "omit both" is allowed, so an AUTH body has 0 or 2+ bytes.
auth read_auth(reader& r) {
    auth a;
    if (r.empty()) return a;
    a.reason = read_reason(r, auth_codes);
    read_properties(r, property_context::auth, a.props);
    const std::size_t shortest = a.reason != success || !a.props.empty() ? 2 : 0;
    a.wire_length = form_if_longer(2, shortest);
    return a;
}

packet read_packet(reader& r, std::uint8_t first, std::optional<protocol_version>& version) {
    const auto type = static_cast<packet_type>(first >> 4);
    if (type == packet_type::connect) return read_connect(r, version);
    const auto v = *version;
    switch (type) {
    case packet_type::connack: return read_connack(r, v);
    case packet_type::publish: return read_publish(r, first, v);
    case packet_type::puback: return read_ack<puback>(r, v, puback_codes);
    case packet_type::pubrec: return read_ack<pubrec>(r, v, puback_codes);
    case packet_type::pubrel: return read_ack<pubrel>(r, v, pubrel_codes);
    case packet_type::pubcomp: return read_ack<pubcomp>(r, v, pubrel_codes);
    case packet_type::subscribe: return read_subscribe(r, v);
    case packet_type::suback: return read_suback(r, v);
    case packet_type::unsubscribe: return read_unsubscribe(r, v);
    case packet_type::unsuback: return read_unsuback(r, v);
    case packet_type::pingreq: return pingreq{};
    case packet_type::pingresp: return pingresp{};
    case packet_type::disconnect: return read_disconnect(r, v);
    default: return read_auth(r);
    }
}

}  // namespace

std::optional<packet> decode_body(std::uint8_t first_byte, std::string_view body,
                                  std::optional<protocol_version>& version, std::error_code& ec) {
    if (const auto rc = check_fixed_header(first_byte, version); rc != success) {
        ec = rc;
        return std::nullopt;
    }
    reader r(body);
    auto p = read_packet(r, first_byte, version);
    if (!r.empty()) r.fail(malformed_packet);  // bytes beyond the packet's fields
    if (r.failed()) {
        ec = r.error();
        return std::nullopt;
    }
    ec.clear();
    return p;
}

}  // namespace mqtt
