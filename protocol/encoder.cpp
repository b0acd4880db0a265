#include "protocol/encoder.hpp"

#include <algorithm>
#include <type_traits>

#include "protocol/wire.hpp"

namespace mqtt {

namespace {

using wire::size_sink;
using wire::string_sink;

bool is_v5(protocol_version v) { return v == protocol_version::v5; }

// The size pass, which runs over the whole packet before a byte is written, notes a value
// longer than its prefix can say; the packet is then refused, so the cast never cuts.
template <class Sink>
void put_binary(Sink& s, std::string_view v) {
    if constexpr (std::is_same_v<Sink, size_sink>) s.string_too_long |= v.size() > max_string_size;
    s.u16(static_cast<std::uint16_t>(v.size()));
    s.bytes(v);
}

// A value of the wrong alternative for its identifier is written as zero or empty.
template <class Sink>
void put_property(Sink& s, const property& p) {
    const auto info = describe(static_cast<std::uint8_t>(p.id));
    if (!info) return;
    const auto* n = std::get_if<std::uint32_t>(&p.value);
    const auto* str = std::get_if<std::string>(&p.value);
    const auto* pair = std::get_if<string_pair>(&p.value);
    const std::uint32_t number = n ? *n : 0;
    s.varint(static_cast<std::uint8_t>(p.id));
    switch (info->type) {
    case property_type::byte: s.u8(static_cast<std::uint8_t>(number)); break;
    case property_type::two_byte_integer: s.u16(static_cast<std::uint16_t>(number)); break;
    case property_type::four_byte_integer: s.u32(number); break;
    case property_type::variable_byte_integer: s.varint(std::min(number, varint_max)); break;
    case property_type::utf8_string:
    case property_type::binary_data: put_binary(s, str ? std::string_view(*str) : std::string_view()); break;
    case property_type::utf8_string_pair:
        put_binary(s, pair ? std::string_view(pair->first) : std::string_view());
        put_binary(s, pair ? std::string_view(pair->second) : std::string_view());
        break;
    }
}

template <class Sink>
void put_properties(Sink& s, const properties& props) {
    size_sink length;
    for (const auto& p : props) put_property(length, p);
    s.varint(static_cast<std::uint32_t>(length.size));
    if constexpr (std::is_same_v<Sink, size_sink>) {
        s.size += length.size;
        s.string_too_long |= length.string_too_long;
    } else {
        for (const auto& p : props) put_property(s, p);
    }
}

// The 5.0 forms of acks (2, 3 or 4+ bytes) and of DISCONNECT and AUTH (0, 1 or 2+ bytes):
// the one remembered in wire_length unless the content needs a longer one.
std::size_t ack_form(const ack_packet& a) {
    const std::size_t shortest = !a.props.empty() ? 4 : a.reason != reason_code::success ? 3 : 2;
    return std::max<std::size_t>(std::min<std::size_t>(a.wire_length, 4), shortest);
}
std::size_t disconnect_form(const disconnect& d) {
    const std::size_t shortest = !d.props.empty() ? 2 : d.reason != reason_code::success ? 1 : 0;
    return std::max<std::size_t>(std::min<std::size_t>(d.wire_length, 2), shortest);
}
// AUTH has no one-byte form (spec 3.15.2.1).
std::size_t auth_form(const auth& a) {
    return a.wire_length != 0 || a.reason != reason_code::success || !a.props.empty() ? 2 : 0;
}

std::uint8_t first_byte(const packet& p) {
    const auto type = static_cast<std::uint8_t>(static_cast<unsigned>(type_of(p)) << 4);
    if (const auto* pub = std::get_if<publish>(&p)) {
        const auto q = static_cast<std::uint8_t>(pub->qos);
        // [MQTT-3.3.1-2] DUP is 0 for QoS 0.
        return static_cast<std::uint8_t>(type | (pub->dup && q != 0 ? 0x08 : 0) | q << 1 | (pub->retain ? 1 : 0));
    }
    switch (type_of(p)) {
    case packet_type::pubrel:
    case packet_type::subscribe:
    case packet_type::unsubscribe: return type | 0x02;
    default: return type;
    }
}

// Everything after the fixed header. 3.1/3.1.1 forms drop what they cannot carry.
template <class Sink>
struct body_writer {
    Sink& s;
    protocol_version v;

    // A CONNECT states its own version.
    void operator()(const connect& c) const {
        const bool v5 = is_v5(c.version);
        const bool has_password = c.password && (v5 || c.username);  // [MQTT-3.1.2-22]
        put_binary(s, c.version == protocol_version::v31 ? "MQIsdp" : "MQTT");
        s.u8(static_cast<std::uint8_t>(c.version));
        std::uint8_t flags = c.clean_start ? 0x02 : 0;
        if (c.will) {
            flags |= static_cast<std::uint8_t>(0x04 | static_cast<unsigned>(c.will->qos) << 3 | (c.will->retain ? 0x20 : 0));
        }
        if (has_password) flags |= 0x40;
        if (c.username) flags |= 0x80;
        s.u8(flags);
        s.u16(c.keep_alive);
        if (v5) put_properties(s, c.props);
        put_binary(s, c.client_id);
        if (c.will) {
            if (v5) put_properties(s, c.will->props);
            put_binary(s, c.will->topic);
            put_binary(s, c.will->payload.view());
        }
        if (c.username) put_binary(s, *c.username);
        if (has_password) put_binary(s, *c.password);
    }

    void operator()(const connack& c) const {
        // MQTT 3.1 has no session-present flag: its first CONNACK byte is reserved (0).
        s.u8(c.session_present && v != protocol_version::v31 ? 1 : 0);
        if (is_v5(v)) {
            s.u8(c.reason);
            put_properties(s, c.props);
        } else {
            const bool v311_code = c.reason <= static_cast<std::uint8_t>(connack_return_code::not_authorized);
            s.u8(v311_code ? c.reason
                           : static_cast<std::uint8_t>(to_v311_connack(static_cast<reason_code>(c.reason))));
        }
    }

    void operator()(const publish& p) const {
        put_binary(s, p.topic);
        if (p.qos != qos::at_most_once) s.u16(p.packet_id);
        if (is_v5(v)) put_properties(s, p.props);
        s.bytes(p.payload.view());
    }

    void operator()(const ack_packet& a) const {
        s.u16(a.packet_id);
        if (!is_v5(v)) return;
        const auto form = ack_form(a);
        if (form >= 3) s.u8(static_cast<std::uint8_t>(a.reason));
        if (form >= 4) put_properties(s, a.props);
    }

    void operator()(const subscribe& sub) const {
        s.u16(sub.packet_id);
        if (is_v5(v)) put_properties(s, sub.props);
        for (const auto& [filter, o] : sub.subscriptions) {
            put_binary(s, filter);
            auto options = static_cast<std::uint8_t>(o.max_qos);
            if (is_v5(v)) {
                options |= static_cast<std::uint8_t>((o.no_local ? 0x04 : 0) | (o.retain_as_published ? 0x08 : 0) |
                                                     (o.retain_handling & 3) << 4);
            }
            s.u8(options);
        }
    }

    void operator()(const suback& a) const {
        s.u16(a.packet_id);
        if (is_v5(v)) {
            put_properties(s, a.props);
            for (auto r : a.reasons) s.u8(r);
        } else {
            for (auto r : a.reasons) s.u8(r <= 2 ? r : 0x80);  // granted QoS or failure
        }
    }

    void operator()(const unsubscribe& u) const {
        s.u16(u.packet_id);
        if (is_v5(v)) put_properties(s, u.props);
        for (const auto& f : u.filters) put_binary(s, f);
    }

    void operator()(const unsuback& a) const {
        s.u16(a.packet_id);
        if (!is_v5(v)) return;
        put_properties(s, a.props);
        for (auto r : a.reasons) s.u8(r);
    }

    void operator()(const pingreq&) const {}
    void operator()(const pingresp&) const {}

    void operator()(const disconnect& d) const {
        if (!is_v5(v)) return;
        const auto form = disconnect_form(d);
        if (form >= 1) s.u8(static_cast<std::uint8_t>(d.reason));
        if (form >= 2) put_properties(s, d.props);
    }

    // AUTH exists only in 5.0 and is written in that form whatever the version.
    void operator()(const auth& a) const {
        if (auth_form(a) == 0) return;
        s.u8(static_cast<std::uint8_t>(a.reason));
        put_properties(s, a.props);
    }
};

// Sets ec for a packet no form can express.
std::size_t body_size(const packet& p, protocol_version v, std::error_code& ec) {
    size_sink s;
    std::visit(body_writer<size_sink>{s, v}, p);
    if (s.string_too_long)
        ec = encode_error::string_too_long;
    else if (s.size > varint_max)
        ec = encode_error::packet_too_large;
    else
        ec.clear();
    return s.size;
}

class category final : public std::error_category {
public:
    const char* name() const noexcept override { return "mqtt.encode"; }
    std::string message(int value) const override {
        switch (static_cast<encode_error>(value)) {
        case encode_error::string_too_long: return "a string or binary value is longer than 65,535 bytes";
        case encode_error::packet_too_large:
            return "the packet is longer than 268,435,455 bytes after its fixed header";
        }
        return "unknown encoder error";
    }
};

}  // namespace

const std::error_category& encode_category() noexcept {
    static const category instance;
    return instance;
}

std::size_t encoded_size(const packet& p, protocol_version v, std::error_code& ec) {
    const auto body = body_size(p, v, ec);
    if (ec) return 0;
    return 1 + varint_size(static_cast<std::uint32_t>(body)) + body;
}

std::size_t encoded_size(const packet& p, protocol_version v) {
    std::error_code ec;
    const auto size = encoded_size(p, v, ec);
    if (ec) throw std::system_error(ec, "mqtt::encoded_size");
    return size;
}

void encode(const packet& p, protocol_version v, std::string& out, std::error_code& ec) {
    const auto body = body_size(p, v, ec);
    if (ec) return;
    out.reserve(out.size() + 1 + varint_size(static_cast<std::uint32_t>(body)) + body);
    string_sink s{out};
    s.u8(first_byte(p));
    s.varint(static_cast<std::uint32_t>(body));
    std::visit(body_writer<string_sink>{s, v}, p);
}

void encode(const packet& p, protocol_version v, std::string& out) {
    std::error_code ec;
    encode(p, v, out, ec);
    if (ec) throw std::system_error(ec, "mqtt::encode");
}

std::string encode(const packet& p, protocol_version v) {
    std::string out;
    encode(p, v, out);
    return out;
}

}  // namespace mqtt
