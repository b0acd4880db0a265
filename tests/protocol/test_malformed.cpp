// Inputs that break a rule of the specification, each with the reason code it must fail with.
#include <vector>

#include "support.hpp"

using namespace mqtt;
using test::bytes;

namespace {

constexpr auto v311 = protocol_version::v311;
constexpr auto v5 = protocol_version::v5;
constexpr std::optional<protocol_version> none;

// Prepends the one-byte remaining length (the rows keep their bodies under 128 bytes).
std::string frame(int first, const std::string& body) {
    REQUIRE(body.size() < 128);
    return bytes({first, static_cast<int>(body.size())}) + body;
}

std::string str(std::string_view s) { return bytes({0, static_cast<int>(s.size())}) + std::string(s); }

// CONNECT bodies: protocol name and level, flags, keep alive 60.
std::string connect_head(std::string_view name, int level, int flags) {
    return str(name) + bytes({level, flags, 0x00, 0x3C});
}

struct row {
    const char* what;
    std::optional<protocol_version> version;
    std::string wire;
    reason_code expected;
    std::uint32_t max_packet_size = max_packet_size_limit;
};

std::vector<row> rows() {
    using enum reason_code;
    const auto c311 = [](int flags) { return connect_head("MQTT", 4, flags); };
    const auto c5 = [](int flags) { return connect_head("MQTT", 5, flags); };
    return {
        // Fixed header (spec 2.1)
        {"packet type 0 is reserved", v311, bytes({0x00, 0x00}), malformed_packet},
        {"the first packet is not a CONNECT [MQTT-3.1.0-1]", none, frame(0x30, str("t")), protocol_error},
        {"AUTH is not a 3.1.1 packet", v311, bytes({0xF0, 0x00}), malformed_packet},
        {"CONNECT with flags 0001", none, frame(0x11, c311(0x02) + str("c")), malformed_packet},
        {"PUBLISH with QoS 3 [MQTT-3.3.1-4]", v311, frame(0x36, str("t") + bytes({0, 1})), malformed_packet},
        {"PUBLISH QoS 0 with DUP [MQTT-3.3.1-2]", v5, frame(0x38, str("t") + bytes({0})), malformed_packet},
        {"PUBREL with flags 0000 [MQTT-3.6.1-1]", v5, bytes({0x60, 0x02, 0x00, 0x01}), malformed_packet},
        {"SUBSCRIBE with flags 0000 [MQTT-3.8.1-1]", v311, frame(0x80, bytes({0, 1}) + str("a") + bytes({0})),
         malformed_packet},
        {"UNSUBSCRIBE with flags 0011 [MQTT-3.10.1-1]", v311, frame(0xA3, bytes({0, 1}) + str("a")), malformed_packet},
        {"PINGREQ with flags 0001", v311, bytes({0xC1, 0x00}), malformed_packet},
        {"PUBACK with flags 0010", v5, bytes({0x42, 0x02, 0x00, 0x01}), malformed_packet},
        // Remaining length (spec 1.5.5, 2.1.4)
        {"remaining length of five bytes", v311, bytes({0x30, 0xFF, 0xFF, 0xFF, 0xFF, 0x01}), malformed_packet},
        {"remaining length not minimally encoded", v311, bytes({0xC0, 0x80, 0x00}), malformed_packet},
        {"packet larger than the maximum packet size", v5, frame(0x30, str("topic") + "payload payload"),
         packet_too_large, 16},
        {"PINGREQ with a body", v311, bytes({0xC0, 0x01, 0x00}), malformed_packet},
        {"3.1.1 DISCONNECT with a body", v311, bytes({0xE0, 0x01, 0x00}), malformed_packet},
        // CONNECT (spec 3.1)
        {"protocol name is not MQTT [MQTT-3.1.2-1]", none, frame(0x10, connect_head("MQTX", 4, 2) + str("c")),
         unsupported_protocol_version},
        {"protocol level 6 [MQTT-3.1.2-2]", none, frame(0x10, connect_head("MQTT", 6, 2) + str("c")),
         unsupported_protocol_version},
        {"MQIsdp with level 4", none, frame(0x10, connect_head("MQIsdp", 4, 2) + str("c")),
         unsupported_protocol_version},
        {"MQTT with level 3", none, frame(0x10, connect_head("MQTT", 3, 2) + str("c")), unsupported_protocol_version},
        {"CONNECT reserved flag set [MQTT-3.1.2-3]", none, frame(0x10, c311(0x03) + str("c")), malformed_packet},
        {"will QoS 3 [MQTT-3.1.2-12]", none, frame(0x10, c311(0x1E) + str("c") + str("w") + str("m")),
         malformed_packet},
        {"will QoS without will flag [MQTT-3.1.2-11]", none, frame(0x10, c311(0x0A) + str("c")), protocol_error},
        {"will retain without will flag [MQTT-3.1.2-13]", none, frame(0x10, c5(0x22) + bytes({0}) + str("c")),
         protocol_error},
        {"3.1.1 password without user name [MQTT-3.1.2-22]", none, frame(0x10, c311(0x42) + str("c") + str("p")),
         protocol_error},
        {"client id is not UTF-8", none, frame(0x10, c311(0x02) + bytes({0x00, 0x01, 0xFF})), malformed_packet},
        {"CONNECT longer than its fields", none, frame(0x10, c311(0x02) + str("c") + "x"), malformed_packet},
        {"CONNECT shorter than its fields (user name flag, no user name)", none, frame(0x10, c311(0x82) + str("c")),
         malformed_packet},
        {"will topic with a wildcard", none, frame(0x10, c311(0x06) + str("c") + str("w/#") + str("m")),
         topic_name_invalid},
        {"5.0 CONNECT with a Topic Alias property", none, frame(0x10, c5(0x02) + bytes({3, 0x23, 0, 1}) + str("c")),
         malformed_packet},
        {"5.0 CONNECT with Session Expiry Interval twice", none,
         frame(0x10, c5(0x02) + bytes({10, 0x11, 0, 0, 0, 1, 0x11, 0, 0, 0, 2}) + str("c")), protocol_error},
        {"5.0 CONNECT with an unknown property", none, frame(0x10, c5(0x02) + bytes({2, 0x7F, 0}) + str("c")),
         malformed_packet},
        {"5.0 CONNECT with Receive Maximum 0", none, frame(0x10, c5(0x02) + bytes({3, 0x21, 0, 0}) + str("c")),
         protocol_error},
        {"5.0 CONNECT with Authentication Data but no Authentication Method", none,
         frame(0x10, c5(0x02) + bytes({4, 0x16, 0, 1, 'x'}) + str("c")), protocol_error},
        {"5.0 CONNECT with Request Problem Information 2", none,
         frame(0x10, c5(0x02) + bytes({2, 0x17, 2}) + str("c")), protocol_error},
        {"5.0 CONNECT with Maximum Packet Size 0", none,
         frame(0x10, c5(0x02) + bytes({5, 0x27, 0, 0, 0, 0}) + str("c")), protocol_error},
        {"5.0 property length beyond the packet", none, frame(0x10, c5(0x02) + bytes({20, 0x21, 0, 1})),
         malformed_packet},
        {"5.0 user property key holding U+0000", none,
         frame(0x10, c5(0x02) + bytes({7, 0x26, 0, 1, 0, 0, 1, 'v'}) + str("c")), malformed_packet},
        {"5.0 will property not allowed in a will (Topic Alias)", none,
         frame(0x10, c5(0x06) + bytes({0}) + str("c") + bytes({3, 0x23, 0, 1}) + str("w") + str("m")),
         malformed_packet},
        // PUBLISH (spec 3.3)
        {"topic name with + [MQTT-3.3.2-2]", v311, frame(0x30, str("a/+")), topic_name_invalid},
        {"topic name with # [MQTT-3.3.2-2]", v5, frame(0x30, str("a/#") + bytes({0})), topic_name_invalid},
        {"topic name with a surrogate", v311, frame(0x30, bytes({0, 3, 0xED, 0xA0, 0x80})), malformed_packet},
        {"topic name with U+0000 [MQTT-1.5.4-2]", v5, frame(0x30, bytes({0, 3, 'a', 0, 'b', 0})), malformed_packet},
        {"QoS 1 with packet identifier 0 [MQTT-2.2.1-3]", v311, frame(0x32, str("t") + bytes({0, 0})),
         protocol_error},
        {"5.0 empty topic without a Topic Alias (spec 3.3.2.1)", v5, frame(0x30, str("") + bytes({0}) + "x"),
         protocol_error},
        {"3.1.1 empty topic [MQTT-4.7.3-1]", v311, frame(0x30, str("") + "x"), malformed_packet},
        {"5.0 Topic Alias 0 [MQTT-3.3.2-8]", v5, frame(0x30, str("t") + bytes({3, 0x23, 0, 0})), topic_alias_invalid},
        {"5.0 Subscription Identifier 0", v5, frame(0x30, str("t") + bytes({2, 0x0B, 0})), protocol_error},
        {"5.0 Topic Alias twice", v5, frame(0x30, str("t") + bytes({6, 0x23, 0, 1, 0x23, 0, 2})), protocol_error},
        {"5.0 PUBLISH with Session Expiry Interval", v5, frame(0x30, str("t") + bytes({5, 0x11, 0, 0, 0, 1})),
         malformed_packet},
        {"5.0 Response Topic with a wildcard [MQTT-3.3.2-14]", v5, frame(0x30, str("t") + bytes({4, 0x08, 0, 1, '#'})),
         protocol_error},
        {"5.0 Payload Format Indicator 2", v5, frame(0x30, str("t") + bytes({2, 0x01, 2})), protocol_error},
        {"topic length beyond the packet", v311, bytes({0x30, 0x04, 0x00, 0x05, 'a', 'b'}), malformed_packet},
        {"5.0 PUBLISH without a property length", v5, frame(0x30, str("t")), malformed_packet},
        // Acks (spec 3.4-3.7)
        {"PUBACK with packet identifier 0", v311, bytes({0x40, 0x02, 0x00, 0x00}), protocol_error},
        {"3.1.1 PUBACK of 3 bytes", v311, bytes({0x40, 0x03, 0x00, 0x01, 0x00}), malformed_packet},
        {"PUBACK of 1 byte", v5, bytes({0x40, 0x01, 0x00}), malformed_packet},
        {"5.0 PUBACK with reason code 0x05", v5, bytes({0x40, 0x03, 0x00, 0x01, 0x05}), protocol_error},
        {"5.0 PUBREL with PUBACK's reason code 0x10", v5, bytes({0x62, 0x03, 0x00, 0x01, 0x10}), protocol_error},
        {"5.0 PUBACK property length beyond the packet", v5, bytes({0x40, 0x04, 0x00, 0x01, 0x00, 0x05}),
         malformed_packet},
        {"5.0 PUBCOMP with Reason String twice", v5,
         frame(0x70, bytes({0, 1, 0, 8, 0x1F, 0, 1, 'a', 0x1F, 0, 1, 'b'})), protocol_error},
        // SUBSCRIBE and UNSUBSCRIBE (spec 3.8, 3.10, 4.7, 4.8)
        {"3.1.1 SUBSCRIBE without filters [MQTT-3.8.3-3]", v311, bytes({0x82, 0x02, 0x00, 0x01}), protocol_error},
        {"5.0 SUBSCRIBE without filters [MQTT-3.8.3-2]", v5, bytes({0x82, 0x03, 0x00, 0x01, 0x00}), protocol_error},
        {"SUBSCRIBE with packet identifier 0", v311, frame(0x82, bytes({0, 0}) + str("a") + bytes({0})),
         protocol_error},
        {"3.1.1 subscription options reserved bit [MQTT-3-8.3-4]", v311,
         frame(0x82, bytes({0, 1}) + str("a") + bytes({0x04})), malformed_packet},
        {"3.1.1 requested QoS 3 [MQTT-3-8.3-4]", v311, frame(0x82, bytes({0, 1}) + str("a") + bytes({0x03})),
         malformed_packet},
        {"5.0 subscription options reserved bit [MQTT-3.8.3-5]", v5,
         frame(0x82, bytes({0, 1, 0}) + str("a") + bytes({0x40})), malformed_packet},
        {"5.0 maximum QoS 3", v5, frame(0x82, bytes({0, 1, 0}) + str("a") + bytes({0x03})), protocol_error},
        {"5.0 retain handling 3", v5, frame(0x82, bytes({0, 1, 0}) + str("a") + bytes({0x30})), protocol_error},
        {"5.0 No Local on a shared subscription [MQTT-3.8.3-4]", v5,
         frame(0x82, bytes({0, 1, 0}) + str("$share/g/a") + bytes({0x04})), protocol_error},
        {"filter with # not last [MQTT-4.7.1-1]", v311, frame(0x82, bytes({0, 1}) + str("a/#/b") + bytes({0})),
         topic_filter_invalid},
        {"filter with + inside a level [MQTT-4.7.1-2]", v5, frame(0x82, bytes({0, 1, 0}) + str("a+") + bytes({0})),
         topic_filter_invalid},
        {"empty filter [MQTT-4.7.3-1]", v311, frame(0x82, bytes({0, 1}) + str("") + bytes({0})),
         topic_filter_invalid},
        {"shared filter without a filter: $share/g", v5,
         frame(0x82, bytes({0, 1, 0}) + str("$share/g") + bytes({0})), topic_filter_invalid},
        {"shared filter with an empty share name: $share//f [MQTT-4.8.2-1]", v5,
         frame(0x82, bytes({0, 1, 0}) + str("$share//f") + bytes({0})), topic_filter_invalid},
        {"share name with a wildcard: $share/g+/f [MQTT-4.8.2-2]", v5,
         frame(0x82, bytes({0, 1, 0}) + str("$share/g+/f") + bytes({0})), topic_filter_invalid},
        {"5.0 SUBSCRIBE with two Subscription Identifiers", v5,
         frame(0x82, bytes({0, 1, 4, 0x0B, 1, 0x0B, 2}) + str("a") + bytes({0})), protocol_error},
        {"5.0 SUBSCRIBE with Subscription Identifier 0", v5,
         frame(0x82, bytes({0, 1, 2, 0x0B, 0}) + str("a") + bytes({0})), protocol_error},
        {"5.0 Subscription Identifier of five bytes", v5,
         frame(0x82, bytes({0, 1, 6, 0x0B, 0x80, 0x80, 0x80, 0x80, 0x01}) + str("a") + bytes({0})), malformed_packet},
        {"SUBSCRIBE filter without options", v311, frame(0x82, bytes({0, 1}) + str("a")), malformed_packet},
        {"UNSUBSCRIBE without filters [MQTT-3.10.3-2]", v311, bytes({0xA2, 0x02, 0x00, 0x01}), protocol_error},
        {"UNSUBSCRIBE with an invalid filter", v5, frame(0xA2, bytes({0, 1, 0}) + str("a/#/")), topic_filter_invalid},
        {"5.0 UNSUBSCRIBE with a Subscription Identifier", v5, frame(0xA2, bytes({0, 1, 2, 0x0B, 1}) + str("a")),
         malformed_packet},
        // CONNACK, SUBACK, UNSUBACK (spec 3.2, 3.9, 3.11)
        {"3.1.1 CONNACK return code 6", v311, bytes({0x20, 0x02, 0x00, 0x06}), protocol_error},
        {"CONNACK reserved flag bit [MQTT-3.2.2-1]", v311, bytes({0x20, 0x02, 0x02, 0x00}), malformed_packet},
        {"3.1 CONNACK with a session-present bit (the byte is reserved)", protocol_version::v31,
         bytes({0x20, 0x02, 0x01, 0x00}), malformed_packet},
        {"5.0 CONNACK session present with a refusal [MQTT-3.2.2-6]", v5, bytes({0x20, 0x03, 0x01, 0x87, 0x00}),
         protocol_error},
        {"5.0 CONNACK with reason code 0x10", v5, bytes({0x20, 0x03, 0x00, 0x10, 0x00}), protocol_error},
        {"5.0 CONNACK Maximum QoS 2", v5, bytes({0x20, 0x05, 0x00, 0x00, 0x02, 0x24, 0x02}), protocol_error},
        {"3.1.1 SUBACK return code 3 [MQTT-3.9.3-2]", v311, bytes({0x90, 0x03, 0x00, 0x01, 0x03}), protocol_error},
        {"5.0 SUBACK with reason code 0x90", v5, bytes({0x90, 0x04, 0x00, 0x01, 0x00, 0x90}), protocol_error},
        {"5.0 UNSUBACK without reason codes", v5, bytes({0xB0, 0x03, 0x00, 0x01, 0x00}), protocol_error},
        {"3.1.1 UNSUBACK with a reason code", v311, bytes({0xB0, 0x03, 0x00, 0x01, 0x00}), malformed_packet},
        // DISCONNECT and AUTH (spec 3.14, 3.15)
        {"5.0 DISCONNECT with reason code 0x10", v5, bytes({0xE0, 0x01, 0x10}), protocol_error},
        {"5.0 DISCONNECT property length not minimal", v5, bytes({0xE0, 0x03, 0x00, 0x80, 0x00}), malformed_packet},
        {"5.0 DISCONNECT with Server Keep Alive", v5, bytes({0xE0, 0x05, 0x00, 0x03, 0x13, 0x00, 0x01}),
         malformed_packet},
        {"5.0 AUTH of one byte", v5, bytes({0xF0, 0x01, 0x00}), malformed_packet},
        {"5.0 AUTH with reason code 0x01", v5, bytes({0xF0, 0x02, 0x01, 0x00}), protocol_error},
        {"5.0 AUTH with Will Delay Interval", v5, bytes({0xF0, 0x07, 0x18, 0x05, 0x18, 0, 0, 0, 1}),
         malformed_packet},
        {"5.0 AUTH with Authentication Data but no method", v5, bytes({0xF0, 0x06, 0x18, 0x04, 0x16, 0, 1, 'x'}),
         protocol_error},
    };
}

}  // namespace

TEST_CASE("malformed: each violation fails with the prescribed reason code") {
    const auto table = rows();
    CHECK(table.size() >= 40);
    for (const auto& r : table) {
        CAPTURE(r.what);
        CAPTURE(test::hex(r.wire));
        const auto d = test::decode(r.wire, r.version, r.max_packet_size);
        CHECK_FALSE(d.packet);
        CHECK(d.ec.category() == reason_category());
        CHECK(to_string(to_reason_code(d.ec)) == to_string(r.expected));
        // Fed one byte at a time, the decoder reaches the same verdict.
        decoder slow(r.max_packet_size);
        if (r.version) slow.set_version(*r.version);
        std::error_code ec;
        std::optional<packet> p;
        for (char c : r.wire) {
            slow.feed(std::string_view(&c, 1));
            p = slow.next(ec);
            if (p || ec) break;
        }
        CHECK_FALSE(p);
        CHECK(ec == d.ec);
    }
}

TEST_CASE("malformed: the error sticks") {
    decoder d;
    d.set_version(v311);
    d.feed(bytes({0xC1, 0x00, 0xC0, 0x00}));
    std::error_code ec;
    CHECK_FALSE(d.next(ec));
    CHECK(ec == reason_code::malformed_packet);
    d.feed(bytes({0xC0, 0x00}));
    CHECK_FALSE(d.next(ec));
    CHECK(ec == reason_code::malformed_packet);
}

TEST_CASE("malformed: the version is known even when the CONNECT is malformed") {
    // A 5.0 CONNECT whose properties are broken: the broker answers with a 5.0 CONNACK.
    const auto wire = frame(0x10, connect_head("MQTT", 5, 0x02) + bytes({2, 0x7F, 0}) + str("c"));
    const auto d = test::decode(wire, none);
    CHECK(d.ec == reason_code::malformed_packet);
    CHECK(d.version == v5);
    // An unsupported level leaves it unknown.
    const auto e = test::decode(frame(0x10, connect_head("MQTT", 7, 0x02) + str("c")), none);
    CHECK(e.ec == reason_code::unsupported_protocol_version);
    CHECK_FALSE(e.version);
}

TEST_CASE("malformed: packet too large is reported before the body arrives") {
    decoder d(1000);
    d.set_version(v5);
    d.feed(bytes({0x30, 0xFF, 0xFF, 0x7F}));  // announces 2,097,151 bytes
    std::error_code ec;
    CHECK_FALSE(d.next(ec));
    CHECK(ec == reason_code::packet_too_large);
    CHECK(d.buffered() == 4);
}

TEST_CASE("malformed: the size limit counts the whole packet") {
    const auto wire = frame(0x30, str("t") + "12345");  // 2 + 8 bytes
    CHECK(test::decode(wire, v311, 10).packet);
    CHECK(test::decode(wire, v311, 9).ec == reason_code::packet_too_large);
}

TEST_CASE("malformed: garbage is rejected on its first byte") {
    decoder d;
    d.feed("G");  // "GET / HTTP/1.1": type 4 with flags 0111
    std::error_code ec;
    CHECK_FALSE(d.next(ec));
    CHECK(ec == reason_code::protocol_error);
}

TEST_CASE("malformed: a fifth remaining length byte is refused as soon as the fourth arrives") {
    decoder d;
    d.set_version(v311);
    d.feed(bytes({0x30, 0x80, 0x80, 0x80}));
    std::error_code ec;
    CHECK_FALSE(d.next(ec));
    CHECK_FALSE(ec);
    d.feed(bytes({0x80}));
    CHECK_FALSE(d.next(ec));
    CHECK(ec == reason_code::malformed_packet);
}

TEST_CASE("reason codes: names, category and 3.1.1 CONNACK mapping") {
    CHECK(to_string(reason_code::malformed_packet) == "Malformed Packet");
    CHECK(to_string(reason_code::packet_too_large) == "Packet too large");
    CHECK(to_string(static_cast<reason_code>(0x55)) == "Unknown reason code");
    const std::error_code ec = reason_code::topic_alias_invalid;
    CHECK(ec.category().name() == std::string("mqtt"));
    CHECK(ec.message() == "Topic Alias invalid");
    CHECK(to_reason_code(ec) == reason_code::topic_alias_invalid);
    CHECK(to_reason_code(std::error_code{}) == reason_code::success);
    CHECK(to_reason_code(std::make_error_code(std::errc::io_error)) == reason_code::unspecified_error);
    CHECK(to_v311_connack(reason_code::success) == connack_return_code::accepted);
    CHECK(to_v311_connack(reason_code::unsupported_protocol_version) ==
          connack_return_code::unacceptable_protocol_version);
    CHECK(to_v311_connack(reason_code::client_identifier_not_valid) == connack_return_code::identifier_rejected);
    CHECK(to_v311_connack(reason_code::server_busy) == connack_return_code::server_unavailable);
    CHECK(to_v311_connack(reason_code::bad_user_name_or_password) == connack_return_code::bad_user_name_or_password);
    CHECK(to_v311_connack(reason_code::banned) == connack_return_code::not_authorized);
}

TEST_CASE("properties: describe() follows the table of spec 2.2.2.2") {
    const auto alias = describe(0x23);
    REQUIRE(alias);
    CHECK(alias->type == property_type::two_byte_integer);
    CHECK(alias->contexts == static_cast<std::uint16_t>(property_context::publish));
    CHECK_FALSE(alias->may_repeat);
    const auto user = describe(0x26);
    REQUIRE(user);
    CHECK(user->type == property_type::utf8_string_pair);
    CHECK(user->may_repeat);
    CHECK((user->contexts & static_cast<std::uint16_t>(property_context::unsubscribe)) != 0);
    const auto sub_id = describe(0x0B);
    REQUIRE(sub_id);
    CHECK(sub_id->type == property_type::variable_byte_integer);
    int defined = 0;
    for (int id = 0; id < 256; ++id) defined += describe(static_cast<std::uint8_t>(id)).has_value();
    CHECK(defined == 27);
    CHECK_FALSE(describe(0x00));
    CHECK_FALSE(describe(0x04));
    CHECK_FALSE(describe(0x2B));
}
