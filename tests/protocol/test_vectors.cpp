// Byte-exact vectors written by hand from the MQTT 3.1, 3.1.1 and 5.0 specifications:
// each must decode to the expected packet, and the packet must encode to the same bytes.
#include "support.hpp"

using namespace mqtt;
using test::bytes;
using test::props;

namespace {

constexpr auto v31 = protocol_version::v31;
constexpr auto v311 = protocol_version::v311;
constexpr auto v5 = protocol_version::v5;

void check_vector(const std::string& wire, const packet& expected, protocol_version v) {
    CAPTURE(test::hex(wire));
    // A CONNECT is decoded by a fresh decoder, which learns the version from it.
    const bool is_connect = type_of(expected) == packet_type::connect;
    const auto d = test::decode(wire, is_connect ? std::nullopt : std::optional(v));
    REQUIRE_MESSAGE(!d.ec, d.ec.message());
    REQUIRE(d.packet);
    CHECK(type_of(*d.packet) == type_of(expected));
    CHECK(*d.packet == expected);
    CHECK(d.left == 0);
    CHECK(d.version == v);
    CHECK(test::hex(encode(expected, v)) == test::hex(wire));
    CHECK(encoded_size(expected, v) == wire.size());
}

will_message will(std::string topic, std::string payload, qos q, bool retain, properties p = {}) {
    will_message w;
    w.topic = std::move(topic);
    w.payload = shared_payload(payload);
    w.qos = q;
    w.retain = retain;
    w.props = std::move(p);
    return w;
}

}  // namespace

// ---------------------------------------------------------------- 3.1 and 3.1.1

TEST_CASE("vectors 3.1.1: CONNECT, minimal") {
    connect c;
    c.version = v311;
    c.clean_start = true;
    c.keep_alive = 60;
    c.client_id = "abc";
    check_vector(bytes({0x10, 0x0F,                          // CONNECT, remaining length 15
                        0x00, 0x04, 'M', 'Q', 'T', 'T',      // protocol name
                        0x04,                                // level 4
                        0x02,                                // clean session
                        0x00, 0x3C,                          // keep alive 60
                        0x00, 0x03, 'a', 'b', 'c'}),         // client id
                 c, v311);
}

TEST_CASE("vectors 3.1.1: CONNECT with will, user name and password") {
    connect c;
    c.version = v311;
    c.clean_start = false;
    c.keep_alive = 10;
    c.client_id = "ci";
    c.will = will("w/t", "gone", qos::at_least_once, true);
    c.username = "user";
    c.password = bytes({0x00, 0xFF});
    check_vector(bytes({0x10, 0x23,
                        0x00, 0x04, 'M', 'Q', 'T', 'T', 0x04,
                        0xEC,  // user name, password, will retain, will QoS 1, will flag
                        0x00, 0x0A,
                        0x00, 0x02, 'c', 'i',
                        0x00, 0x03, 'w', '/', 't',
                        0x00, 0x04, 'g', 'o', 'n', 'e',
                        0x00, 0x04, 'u', 's', 'e', 'r',
                        0x00, 0x02, 0x00, 0xFF}),
                 c, v311);
}

TEST_CASE("vectors 3.1.1: CONNECT with an empty client id") {
    connect c;
    c.version = v311;
    c.keep_alive = 0;
    check_vector(bytes({0x10, 0x0C, 0x00, 0x04, 'M', 'Q', 'T', 'T', 0x04, 0x02, 0x00, 0x00, 0x00, 0x00}), c, v311);
}

TEST_CASE("vectors 3.1: CONNECT with protocol name MQIsdp, level 3") {
    connect c;
    c.version = v31;
    c.clean_start = true;
    c.keep_alive = 60;
    c.client_id = "c1";
    check_vector(bytes({0x10, 0x10,
                        0x00, 0x06, 'M', 'Q', 'I', 's', 'd', 'p',
                        0x03, 0x02, 0x00, 0x3C,
                        0x00, 0x02, 'c', '1'}),
                 c, v31);
}

TEST_CASE("vectors 3.1: other packets use the 3.1.1 forms") {
    check_vector(bytes({0x20, 0x02, 0x00, 0x00}), connack{}, v31);
    check_vector(bytes({0x62, 0x02, 0x12, 0x34}), pubrel{{.packet_id = 0x1234}}, v31);
    check_vector(bytes({0xE0, 0x00}), disconnect{}, v31);
    // Its CONNACK's first byte is reserved: a resumed session is not announced.
    CHECK(test::hex(encode(connack{.session_present = true}, v31)) == "20 02 00 00");
}

TEST_CASE("vectors 3.1.1: CONNACK") {
    check_vector(bytes({0x20, 0x02, 0x01, 0x00}), connack{.session_present = true}, v311);
    check_vector(bytes({0x20, 0x02, 0x00, 0x05}), connack{.reason = 5}, v311);  // not authorized
}

TEST_CASE("vectors 3.1.1: PUBLISH") {
    publish p0;
    p0.topic = "a/b";
    p0.payload = shared_payload("hello");
    check_vector(bytes({0x30, 0x0A, 0x00, 0x03, 'a', '/', 'b', 'h', 'e', 'l', 'l', 'o'}), p0, v311);

    publish p1;
    p1.topic = "a/b";
    p1.payload = shared_payload("hi");
    p1.qos = qos::at_least_once;
    p1.dup = true;
    p1.retain = true;
    p1.packet_id = 10;
    check_vector(bytes({0x3B, 0x09, 0x00, 0x03, 'a', '/', 'b', 0x00, 0x0A, 'h', 'i'}), p1, v311);

    publish p2;
    p2.topic = "t";
    p2.qos = qos::exactly_once;
    p2.packet_id = 0x1234;
    check_vector(bytes({0x34, 0x05, 0x00, 0x01, 't', 0x12, 0x34}), p2, v311);
}

TEST_CASE("vectors 3.1.1: PUBACK, PUBREC, PUBREL, PUBCOMP") {
    check_vector(bytes({0x40, 0x02, 0x00, 0x0A}), puback{{.packet_id = 10}}, v311);
    check_vector(bytes({0x50, 0x02, 0x00, 0x0B}), pubrec{{.packet_id = 11}}, v311);
    check_vector(bytes({0x62, 0x02, 0x00, 0x0C}), pubrel{{.packet_id = 12}}, v311);
    check_vector(bytes({0x70, 0x02, 0x00, 0x0D}), pubcomp{{.packet_id = 13}}, v311);
}

TEST_CASE("vectors 3.1.1: SUBSCRIBE, SUBACK") {
    subscribe s;
    s.packet_id = 1;
    s.subscriptions = {{"a/b", {.max_qos = qos::at_least_once}}, {"c/+", {.max_qos = qos::exactly_once}}};
    check_vector(bytes({0x82, 0x0E, 0x00, 0x01,
                        0x00, 0x03, 'a', '/', 'b', 0x01,
                        0x00, 0x03, 'c', '/', '+', 0x02}),
                 s, v311);
    check_vector(bytes({0x90, 0x05, 0x00, 0x01, 0x01, 0x80, 0x00}), suback{.packet_id = 1, .reasons = {1, 0x80, 0}},
                 v311);
}

TEST_CASE("vectors 3.1.1: UNSUBSCRIBE, UNSUBACK") {
    unsubscribe u;
    u.packet_id = 2;
    u.filters = {"a/b", "c/+"};
    check_vector(bytes({0xA2, 0x0C, 0x00, 0x02, 0x00, 0x03, 'a', '/', 'b', 0x00, 0x03, 'c', '/', '+'}), u, v311);
    check_vector(bytes({0xB0, 0x02, 0x00, 0x02}), unsuback{.packet_id = 2}, v311);
}

TEST_CASE("vectors 3.1.1: PINGREQ, PINGRESP, DISCONNECT") {
    check_vector(bytes({0xC0, 0x00}), pingreq{}, v311);
    check_vector(bytes({0xD0, 0x00}), pingresp{}, v311);
    check_vector(bytes({0xE0, 0x00}), disconnect{}, v311);
}

// ---------------------------------------------------------------- 5.0

TEST_CASE("vectors 5.0: CONNECT with properties, will properties and user properties") {
    connect c;
    c.version = v5;
    c.clean_start = true;
    c.keep_alive = 30;
    c.client_id = "cli1";
    c.props = props({{property_id::session_expiry_interval, 3600u},
                     {property_id::receive_maximum, 20u},
                     {property_id::maximum_packet_size, 65536u},
                     {property_id::topic_alias_maximum, 10u},
                     {property_id::request_problem_information, 0u},
                     {property_id::user_property, string_pair("k", "v")}});
    c.will = will("w/t", "dead", qos::exactly_once, false,
                  props({{property_id::will_delay_interval, 5u},
                         {property_id::payload_format_indicator, 1u},
                         {property_id::message_expiry_interval, 60u},
                         {property_id::content_type, std::string("text")},
                         {property_id::response_topic, std::string("r/t")},
                         {property_id::correlation_data, bytes({0x01, 0x02})},
                         {property_id::user_property, string_pair("a", "b")}}));
    c.username = "user";
    c.password = "pwd";
    check_vector(bytes({0x10, 0x66,
                        0x00, 0x04, 'M', 'Q', 'T', 'T', 0x05,
                        0xD6,        // user name, password, will QoS 2, will flag, clean start
                        0x00, 0x1E,  // keep alive 30
                        0x19,        // properties: 25 bytes
                        0x11, 0x00, 0x00, 0x0E, 0x10,
                        0x21, 0x00, 0x14,
                        0x27, 0x00, 0x01, 0x00, 0x00,
                        0x22, 0x00, 0x0A,
                        0x17, 0x00,
                        0x26, 0x00, 0x01, 'k', 0x00, 0x01, 'v',
                        0x00, 0x04, 'c', 'l', 'i', '1',
                        0x25,  // will properties: 37 bytes
                        0x18, 0x00, 0x00, 0x00, 0x05,
                        0x01, 0x01,
                        0x02, 0x00, 0x00, 0x00, 0x3C,
                        0x03, 0x00, 0x04, 't', 'e', 'x', 't',
                        0x08, 0x00, 0x03, 'r', '/', 't',
                        0x09, 0x00, 0x02, 0x01, 0x02,
                        0x26, 0x00, 0x01, 'a', 0x00, 0x01, 'b',
                        0x00, 0x03, 'w', '/', 't',
                        0x00, 0x04, 'd', 'e', 'a', 'd',
                        0x00, 0x04, 'u', 's', 'e', 'r',
                        0x00, 0x03, 'p', 'w', 'd'}),
                 c, v5);
}

TEST_CASE("vectors 5.0: CONNECT with a password and no user name, and enhanced authentication") {
    connect c;
    c.version = v5;
    c.clean_start = false;
    c.keep_alive = 0;
    c.client_id = "x";
    c.props = props({{property_id::authentication_method, std::string("SCRAM")},
                     {property_id::authentication_data, bytes({0x00, 0x01})}});
    c.password = "p";
    check_vector(bytes({0x10, 0x1E,
                        0x00, 0x04, 'M', 'Q', 'T', 'T', 0x05, 0x40, 0x00, 0x00,
                        0x0D,
                        0x15, 0x00, 0x05, 'S', 'C', 'R', 'A', 'M',
                        0x16, 0x00, 0x02, 0x00, 0x01,
                        0x00, 0x01, 'x',
                        0x00, 0x01, 'p'}),
                 c, v5);
}

TEST_CASE("vectors 5.0: CONNACK with many properties") {
    connack c;
    c.session_present = false;
    c.reason = 0;
    c.props = props({{property_id::session_expiry_interval, 120u},
                     {property_id::receive_maximum, 10u},
                     {property_id::maximum_qos, 1u},
                     {property_id::retain_available, 0u},
                     {property_id::maximum_packet_size, 4096u},
                     {property_id::assigned_client_identifier, std::string("xyz")},
                     {property_id::topic_alias_maximum, 5u},
                     {property_id::reason_string, std::string("ok")},
                     {property_id::user_property, string_pair("a", "b")},
                     {property_id::wildcard_subscription_available, 1u},
                     {property_id::subscription_identifier_available, 0u},
                     {property_id::shared_subscription_available, 1u},
                     {property_id::server_keep_alive, 60u},
                     {property_id::response_information, std::string("r")},
                     {property_id::server_reference, std::string("s")},
                     {property_id::authentication_method, std::string("m")},
                     {property_id::authentication_data, std::string("d")}});
    check_vector(bytes({0x20, 0x42, 0x00, 0x00,
                        0x3F,  // properties: 63 bytes
                        0x11, 0x00, 0x00, 0x00, 0x78,
                        0x21, 0x00, 0x0A,
                        0x24, 0x01,
                        0x25, 0x00,
                        0x27, 0x00, 0x00, 0x10, 0x00,
                        0x12, 0x00, 0x03, 'x', 'y', 'z',
                        0x22, 0x00, 0x05,
                        0x1F, 0x00, 0x02, 'o', 'k',
                        0x26, 0x00, 0x01, 'a', 0x00, 0x01, 'b',
                        0x28, 0x01,
                        0x29, 0x00,
                        0x2A, 0x01,
                        0x13, 0x00, 0x3C,
                        0x1A, 0x00, 0x01, 'r',
                        0x1C, 0x00, 0x01, 's',
                        0x15, 0x00, 0x01, 'm',
                        0x16, 0x00, 0x01, 'd'}),
                 c, v5);
}

TEST_CASE("vectors 5.0: CONNACK refusing, without properties") {
    check_vector(bytes({0x20, 0x03, 0x00, 0x87, 0x00}), connack{.reason = 0x87}, v5);
    check_vector(bytes({0x20, 0x03, 0x01, 0x00, 0x00}), connack{.session_present = true}, v5);
}

TEST_CASE("vectors 5.0: PUBLISH with topic alias, subscription identifiers and correlation data") {
    publish p;
    p.topic = "t/1";
    p.qos = qos::exactly_once;
    p.dup = true;
    p.retain = true;
    p.packet_id = 7;
    p.props = props({{property_id::topic_alias, 2u},
                     {property_id::subscription_identifier, 1u},
                     {property_id::subscription_identifier, 128u},
                     {property_id::correlation_data, bytes({0x00, 0xFF, 0x10})},
                     {property_id::response_topic, std::string("rep/1")},
                     {property_id::payload_format_indicator, 1u},
                     {property_id::message_expiry_interval, 256u},
                     {property_id::content_type, std::string("a/b")},
                     {property_id::user_property, string_pair("k", "")}});
    p.payload = shared_payload("abc");
    check_vector(bytes({0x3D, 0x34,
                        0x00, 0x03, 't', '/', '1',
                        0x00, 0x07,
                        0x29,  // properties: 41 bytes
                        0x23, 0x00, 0x02,
                        0x0B, 0x01,
                        0x0B, 0x80, 0x01,
                        0x09, 0x00, 0x03, 0x00, 0xFF, 0x10,
                        0x08, 0x00, 0x05, 'r', 'e', 'p', '/', '1',
                        0x01, 0x01,
                        0x02, 0x00, 0x00, 0x01, 0x00,
                        0x03, 0x00, 0x03, 'a', '/', 'b',
                        0x26, 0x00, 0x01, 'k', 0x00, 0x00,
                        'a', 'b', 'c'}),
                 p, v5);
    CHECK(p.props.subscription_identifiers() == std::vector<std::uint32_t>{1, 128});
}

TEST_CASE("vectors 5.0: PUBLISH with an empty topic and a topic alias, and without properties") {
    publish p;
    p.props = props({{property_id::topic_alias, 2u}});
    p.payload = shared_payload("x");
    check_vector(bytes({0x30, 0x07, 0x00, 0x00, 0x03, 0x23, 0x00, 0x02, 'x'}), p, v5);

    publish q;
    q.topic = "a";
    q.qos = qos::at_least_once;
    q.packet_id = 1;
    check_vector(bytes({0x32, 0x06, 0x00, 0x01, 'a', 0x00, 0x01, 0x00}), q, v5);
}

TEST_CASE("vectors 5.0: acks in their three wire forms") {
    // 2 bytes: success, no properties (spec 3.4.2.1).
    check_vector(bytes({0x40, 0x02, 0x00, 0x01}), puback{{.packet_id = 1}}, v5);
    // 3 bytes: a reason code, no property length.
    check_vector(bytes({0x40, 0x03, 0x00, 0x01, 0x10}),
                 puback{{.packet_id = 1, .reason = reason_code::no_matching_subscribers}}, v5);
    check_vector(bytes({0x70, 0x03, 0x00, 0x04, 0x92}),
                 pubcomp{{.packet_id = 4, .reason = reason_code::packet_identifier_not_found}}, v5);
    // 3 bytes where 2 would do: remembered so it re-encodes the same.
    check_vector(bytes({0x40, 0x03, 0x00, 0x01, 0x00}), puback{{.packet_id = 1, .wire_length = 3}}, v5);
    // 4+ bytes: reason code and properties.
    check_vector(bytes({0x50, 0x0B, 0x00, 0x02, 0x80, 0x07, 0x1F, 0x00, 0x04, 'f', 'u', 'l', 'l'}),
                 pubrec{{.packet_id = 2,
                         .reason = reason_code::unspecified_error,
                         .props = props({{property_id::reason_string, std::string("full")}})}},
                 v5);
    check_vector(bytes({0x62, 0x04, 0x00, 0x03, 0x00, 0x00}), pubrel{{.packet_id = 3, .wire_length = 4}}, v5);
    check_vector(bytes({0x62, 0x04, 0x00, 0x03, 0x92, 0x00}),
                 pubrel{{.packet_id = 3, .reason = reason_code::packet_identifier_not_found, .wire_length = 4}}, v5);
    check_vector(bytes({0x70, 0x0B, 0x00, 0x05, 0x00, 0x07, 0x26, 0x00, 0x01, 'k', 0x00, 0x01, 'v'}),
                 pubcomp{{.packet_id = 5, .props = props({{property_id::user_property, string_pair("k", "v")}})}},
                 v5);
}

TEST_CASE("vectors 5.0: SUBSCRIBE with options and a subscription identifier") {
    subscribe s;
    s.packet_id = 10;
    s.props = props({{property_id::subscription_identifier, 150u},
                     {property_id::user_property, string_pair("k", "v")}});
    s.subscriptions = {
        {"a/+", {.max_qos = qos::at_least_once, .no_local = true, .retain_as_published = true, .retain_handling = 2}},
        {"$share/g/x/#", {.max_qos = qos::exactly_once, .retain_handling = 1}},
    };
    check_vector(bytes({0x82, 0x22, 0x00, 0x0A,
                        0x0A,
                        0x0B, 0x96, 0x01,
                        0x26, 0x00, 0x01, 'k', 0x00, 0x01, 'v',
                        0x00, 0x03, 'a', '/', '+', 0x2D,
                        0x00, 0x0C, '$', 's', 'h', 'a', 'r', 'e', '/', 'g', '/', 'x', '/', '#', 0x12}),
                 s, v5);
}

TEST_CASE("vectors 5.0: SUBACK, UNSUBSCRIBE, UNSUBACK") {
    check_vector(bytes({0x90, 0x0B, 0x00, 0x0A, 0x05, 0x1F, 0x00, 0x02, 'o', 'k', 0x01, 0x02, 0xA1}),
                 suback{.packet_id = 10,
                        .reasons = {0x01, 0x02, 0xA1},
                        .props = props({{property_id::reason_string, std::string("ok")}})},
                 v5);
    check_vector(bytes({0xA2, 0x08, 0x00, 0x0B, 0x00, 0x00, 0x03, 'a', '/', 'b'}),
                 unsubscribe{.packet_id = 11, .filters = {"a/b"}}, v5);
    check_vector(bytes({0xB0, 0x05, 0x00, 0x0B, 0x00, 0x00, 0x11}),
                 unsuback{.packet_id = 11, .reasons = {0x00, 0x11}}, v5);
}

TEST_CASE("vectors 5.0: DISCONNECT with and without a reason") {
    check_vector(bytes({0xE0, 0x00}), disconnect{}, v5);
    check_vector(bytes({0xE0, 0x01, 0x04}), disconnect{.reason = reason_code::disconnect_with_will}, v5);
    check_vector(bytes({0xE0, 0x01, 0x00}), disconnect{.wire_length = 1}, v5);
    check_vector(bytes({0xE0, 0x02, 0x00, 0x00}), disconnect{.wire_length = 2}, v5);
    check_vector(bytes({0xE0, 0x11, 0x8E, 0x0F,
                        0x11, 0x00, 0x00, 0x00, 0x00,
                        0x1F, 0x00, 0x03, 'b', 'y', 'e',
                        0x1C, 0x00, 0x01, 'h'}),
                 disconnect{.reason = reason_code::session_taken_over,
                            .props = props({{property_id::session_expiry_interval, 0u},
                                            {property_id::reason_string, std::string("bye")},
                                            {property_id::server_reference, std::string("h")}})},
                 v5);
}

TEST_CASE("vectors 5.0: AUTH") {
    check_vector(bytes({0xF0, 0x00}), auth{}, v5);
    check_vector(bytes({0xF0, 0x02, 0x00, 0x00}), auth{.wire_length = 2}, v5);
    check_vector(bytes({0xF0, 0x0F, 0x18, 0x0D,
                        0x15, 0x00, 0x05, 'S', 'C', 'R', 'A', 'M',
                        0x16, 0x00, 0x02, 0xAB, 0xCD}),
                 auth{.reason = reason_code::continue_authentication,
                      .props = props({{property_id::authentication_method, std::string("SCRAM")},
                                      {property_id::authentication_data, bytes({0xAB, 0xCD})}})},
                 v5);
}

TEST_CASE("vectors 5.0: PINGREQ, PINGRESP") {
    check_vector(bytes({0xC0, 0x00}), pingreq{}, v5);
    check_vector(bytes({0xD0, 0x00}), pingresp{}, v5);
}

TEST_CASE("vectors: a remaining length of two bytes") {
    publish p;
    p.topic = "t";
    p.payload = shared_payload(std::string(200, 'x'));
    // 3 + 200 = 203 = 0xCB 0x01
    check_vector(bytes({0x30, 0xCB, 0x01, 0x00, 0x01, 't'}) + std::string(200, 'x'), p, v311);
}

// ---------------------------------------------------------------- encoder forms

TEST_CASE("encoder: shortest 5.0 forms when wire_length is 0") {
    CHECK(test::hex(encode(puback{{.packet_id = 1}}, v5)) == "40 02 00 01");
    CHECK(test::hex(encode(puback{{.packet_id = 1, .reason = reason_code::quota_exceeded}}, v5)) ==
          "40 03 00 01 97");
    CHECK(test::hex(encode(disconnect{}, v5)) == "e0 00");
    CHECK(test::hex(encode(disconnect{.reason = reason_code::server_busy}, v5)) == "e0 01 89");
    CHECK(test::hex(encode(auth{.reason = reason_code::reauthenticate}, v5)) == "f0 02 19 00");
    // A remembered form too short for the content gives way to the shortest that fits.
    CHECK(test::hex(encode(puback{{.packet_id = 1, .reason = reason_code::quota_exceeded, .wire_length = 2}}, v5)) ==
          "40 03 00 01 97");
    CHECK(test::hex(encode(disconnect{.wire_length = 1}, v5)) == "e0 01 00");
}

TEST_CASE("encoder: 3.1.1 forms drop what 3.1.1 cannot carry") {
    CHECK(test::hex(encode(puback{{.packet_id = 1, .reason = reason_code::quota_exceeded}}, v311)) == "40 02 00 01");
    CHECK(test::hex(encode(disconnect{.reason = reason_code::server_busy}, v311)) == "e0 00");
    CHECK(test::hex(encode(connack{.reason = 0x87}, v311)) == "20 02 00 05");  // not authorized
    CHECK(test::hex(encode(connack{.reason = 0x84}, v311)) == "20 02 00 01");  // protocol version
    CHECK(test::hex(encode(suback{.packet_id = 1, .reasons = {0x02, 0x97}}, v311)) == "90 04 00 01 02 80");
    CHECK(test::hex(encode(unsuback{.packet_id = 1, .reasons = {0x11}}, v311)) == "b0 02 00 01");
    publish p;
    p.topic = "t";
    p.props = props({{property_id::topic_alias, 1u}});
    CHECK(test::hex(encode(p, v311)) == "30 03 00 01 74");
    connect c;
    c.version = v311;
    c.password = "p";  // no user name: 3.1.1 cannot send the password [MQTT-3.1.2-22]
    CHECK(test::hex(encode(c, v311)) == "10 0c 00 04 4d 51 54 54 04 02 00 00 00 00");
}
