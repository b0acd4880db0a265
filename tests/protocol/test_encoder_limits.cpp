// What the wire format cannot say is refused, never cut to fit: a string or binary value
// over 65,535 bytes (2-byte length prefix), a body over 268,435,455 bytes (remaining length).
#include <functional>
#include <stdexcept>
#include <utility>
#include <vector>

#include "support.hpp"

using namespace mqtt;

namespace {

constexpr auto v311 = protocol_version::v311;
constexpr auto v5 = protocol_version::v5;

const std::string longest(max_string_size, 's');
const std::string too_long(max_string_size + 1, 's');

// Checks every entry point refuses p with `expected` and writes nothing.
void check_refused(const packet& p, protocol_version v, encode_error expected) {
    std::error_code ec;
    std::string out = "kept";
    encode(p, v, out, ec);
    CHECK(ec == expected);
    CHECK(out == "kept");

    ec.clear();
    CHECK(encoded_size(p, v, ec) == 0);
    CHECK(ec == expected);

    const auto throws_expected = [&](const std::function<void()>& f) {
        try {
            f();
            FAIL("no exception");
        } catch (const std::system_error& e) {
            CHECK(e.code() == expected);
        }
    };
    throws_expected([&] { encode(p, v, out); });
    CHECK(out == "kept");
    throws_expected([&] { (void)encode(p, v); });
    throws_expected([&] { (void)encoded_size(p, v); });
}

publish publish_with_topic(std::string topic) {
    publish p;
    p.topic = std::move(topic);
    p.payload = shared_payload("x");
    return p;
}

// One packet per place a length-prefixed value can be written, each with that value s.
std::vector<std::pair<const char*, packet>> one_long_value_each(const std::string& s) {
    std::vector<std::pair<const char*, packet>> out;
    out.emplace_back("PUBLISH topic", publish_with_topic(s));

    auto with_prop = [&](const char* name, auto pkt, property_id id, property_value value) {
        pkt.props.add(id, std::move(value));
        out.emplace_back(name, std::move(pkt));
    };
    with_prop("CONNACK reason string", connack{.reason = 0x80}, property_id::reason_string, s);
    with_prop("CONNACK response information", connack{}, property_id::response_information, s);
    with_prop("CONNACK assigned client identifier", connack{}, property_id::assigned_client_identifier, s);
    with_prop("PUBLISH correlation data", publish_with_topic("t"), property_id::correlation_data, s);
    with_prop("PUBLISH user property name", publish_with_topic("t"), property_id::user_property, string_pair{s, "v"});
    with_prop("PUBLISH user property value", publish_with_topic("t"), property_id::user_property, string_pair{"k", s});
    with_prop("PUBACK reason string", puback{{.packet_id = 1, .reason = reason_code::quota_exceeded}},
              property_id::reason_string, s);
    with_prop("SUBACK reason string", suback{.packet_id = 1, .reasons = {0x80}}, property_id::reason_string, s);
    with_prop("DISCONNECT server reference", disconnect{.reason = reason_code::use_another_server},
              property_id::server_reference, s);
    auth a{.reason = reason_code::continue_authentication};
    a.props.add(property_id::authentication_method, "m");
    with_prop("AUTH authentication data", std::move(a), property_id::authentication_data, s);

    connect c;
    c.version = v5;
    c.client_id = s;
    out.emplace_back("CONNECT client id", c);
    c.client_id = "c";
    c.will = will_message{.topic = "t", .payload = shared_payload(s)};
    out.emplace_back("CONNECT will payload", c);
    c.will.reset();
    c.username = "u";
    c.password = s;
    out.emplace_back("CONNECT password", c);
    out.emplace_back("SUBSCRIBE filter", subscribe{.packet_id = 1, .subscriptions = {{.filter = s}}});
    out.emplace_back("UNSUBSCRIBE filter", unsubscribe{.packet_id = 1, .filters = {"a", s}});
    return out;
}

}  // namespace

TEST_CASE("encoder: a value of 65,535 bytes is written whole and decodes back") {
    // Not a structured binding: clang 14 cannot capture one in CAPTURE's lambda.
    for (const auto& item : one_long_value_each(longest)) {
        const char* where = item.first;
        const packet& p = item.second;
        CAPTURE(where);
        std::error_code ec;
        std::string out;
        encode(p, v5, out, ec);
        REQUIRE_MESSAGE(!ec, ec.message());
        CHECK(out.size() == encoded_size(p, v5));
        const auto d = test::decode(out, type_of(p) == packet_type::connect ? std::nullopt : std::optional(v5));
        REQUIRE_MESSAGE(!d.ec, d.ec.message());
        CHECK(*d.packet == p);
    }
}

TEST_CASE("encoder: a value of 65,536 bytes is refused, not cut to 65,535") {
    // Not a structured binding: clang 14 cannot capture one in CAPTURE's lambda.
    for (const auto& item : one_long_value_each(too_long)) {
        const char* where = item.first;
        const packet& p = item.second;
        CAPTURE(where);
        check_refused(p, v5, encode_error::string_too_long);
    }
    std::error_code ec;
    std::string out;
    encode(publish_with_topic(too_long), v5, out, ec);
    CHECK(ec.message() == "a string or binary value is longer than 65,535 bytes");
}

TEST_CASE("encoder: only what the version writes is checked") {
    // 3.1.1 has no properties: an over-long reason string is dropped with them.
    connack c{.reason = 0x87};
    c.props.add(property_id::reason_string, too_long);
    CHECK(test::hex(encode(c, v311)) == "20 02 00 05");
    // Nor a password without a user name [MQTT-3.1.2-22].
    connect n;
    n.version = v311;
    n.password = too_long;
    CHECK(encoded_size(n, v311) == 14);
}

TEST_CASE("encoder: a body over 268,435,455 bytes is refused") {
    // 2 (topic length) + 1 (topic) + payload = max_remaining_length + 1.
    auto p = publish_with_topic("t");
    p.payload = shared_payload(std::string(max_remaining_length - 2, 'x'));
    check_refused(p, v311, encode_error::packet_too_large);
    p.payload = shared_payload(std::string(max_remaining_length - 3, 'x'));
    std::error_code ec;
    CHECK(encoded_size(p, v311, ec) == 1 + 4 + std::size_t{max_remaining_length});
    CHECK(!ec);
}
