// The connection's MQTT rules without a socket: packets and times in, bytes out (read
// back with a client-side decoder), the phase and what the connection is asked to do.
#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <thread>
#include <string>
#include <vector>

#include "broker/broker.hpp"
#include "broker/connection_rules.hpp"
#include "protocol/decoder.hpp"
#include "protocol/encoder.hpp"

using namespace std::chrono_literals;
using mqtt::reason_code;
using phase = mqttd::connection_rules::phase;
using clock_type = mqttd::connection_rules::clock;

namespace {

struct recording_owner : mqttd::session_owner {
    std::atomic<int> wakes = 0;  // the password checker wakes from its own thread
    int takeovers = 0;
    void wake() override { ++wakes; }
    void taken_over() override { ++takeovers; }
};

// One client's connection, driven by hand: `t` is the time every input carries.
struct client {
    mqttd::broker& b;
    std::shared_ptr<recording_owner> owner = std::make_shared<recording_owner>();
    clock_type::time_point t = clock_type::time_point{} + 1000h;
    mqttd::connection_rules rules;
    mqtt::decoder reader;

    explicit client(mqttd::broker& br) : b(br), rules(br, owner, t) {}

    void in(mqtt::packet p) { rules.packet(p, t); }

    // What the rules have sent since the last call, as the client decodes it; every
    // write completes at once unless `complete` is false.
    std::vector<mqtt::packet> out(bool complete = true) {
        std::string bytes;
        rules.take_output(bytes, t);
        if (complete) rules.written(t);
        reader.feed(bytes);
        std::vector<mqtt::packet> got;
        std::error_code ec;
        while (auto p = reader.next(ec)) got.push_back(std::move(*p));
        REQUIRE_FALSE(ec);
        return got;
    }

    mqtt::connack connect(mqtt::protocol_version v, std::string id, std::uint16_t keep_alive = 60,
                          bool clean = true, mqtt::properties props = {}) {
        mqtt::connect c;
        c.version = v;
        c.client_id = std::move(id);
        c.keep_alive = keep_alive;
        c.clean_start = clean;
        c.props = std::move(props);
        reader.set_version(v);
        in(c);
        auto got = out();
        REQUIRE(!got.empty());
        REQUIRE(std::holds_alternative<mqtt::connack>(got.front()));
        return std::get<mqtt::connack>(got.front());
    }

    mqtt::connack connect5(std::string id, mqtt::properties props = {}, std::uint16_t keep_alive = 60) {
        return connect(mqtt::protocol_version::v5, std::move(id), keep_alive, true, std::move(props));
    }

    // The reason of the DISCONNECT among `got`, if there is one.
    static std::optional<reason_code> disconnect_reason(const std::vector<mqtt::packet>& got) {
        for (const auto& p : got)
            if (auto* d = std::get_if<mqtt::disconnect>(&p)) return d->reason;
        return std::nullopt;
    }
};

mqtt::publish publish(std::string topic, mqtt::qos q, std::uint16_t id, mqtt::properties props = {}) {
    mqtt::publish p;
    p.topic = std::move(topic);
    p.payload = mqtt::shared_payload(std::string_view("x"));
    p.qos = q;
    p.packet_id = id;
    p.props = std::move(props);
    return p;
}

mqtt::properties props(std::initializer_list<std::pair<mqtt::property_id, std::uint32_t>> l) {
    mqtt::properties p;
    for (auto [id, v] : l) p.add(id, v);
    return p;
}

mqttd::broker_options quiet_options() {
    mqttd::broker_options o;
    o.listeners.clear();
    return o;
}

}  // namespace

TEST_CASE("rules: the first packet must be CONNECT, and a refusal closes so that the client can read it") {
    mqttd::broker b(quiet_options());
    client c(b);
    c.in(mqtt::pingreq{});  // [MQTT-3.1.0-1]
    CHECK(c.rules.state() == phase::closing);
    CHECK_FALSE(c.rules.has_output());
    c.rules.flushed(c.t);
    CHECK(c.rules.state() == phase::lingering);
    CHECK(c.rules.wants_input());  // reads, to discard, until the client closes
    CHECK(c.rules.deadline() == c.t + mqttd::connection_rules::linger_time);
    c.t += mqttd::connection_rules::linger_time;
    c.rules.tick(c.t);
    CHECK(c.rules.state() == phase::ended);
}

TEST_CASE("rules: an MQTT 3.1 client gets a CONNACK whose first byte is reserved") {
    mqttd::broker b(quiet_options());
    {
        client first(b);
        first.connect(mqtt::protocol_version::v31, "old-device", 60, false);
    }
    client again(b);
    auto ack = again.connect(mqtt::protocol_version::v31, "old-device", 60, false);
    CHECK(ack.reason == 0);
    CHECK_FALSE(ack.session_present);  // a session is there, but 3.1 has no flag for it
}

TEST_CASE("rules: a client that floods PINGREQ and never reads is paused at the output bound, then closed") {
    mqttd::broker b(quiet_options());
    client c(b);
    c.connect(mqtt::protocol_version::v311, "flooder", 30);
    std::string writing;
    c.rules.take_output(writing, c.t);  // a write starts and never finishes
    int sent = 0;
    while (c.rules.wants_input()) {
        c.in(mqtt::pingreq{});
        ++sent;
        REQUIRE(sent < 1'000'000);
    }
    CHECK(c.rules.unwritten() >= mqttd::connection_rules::output_bound);
    CHECK(c.rules.unwritten() < mqttd::connection_rules::output_bound + 16);
    CHECK(c.rules.state() == phase::connected);
    // Not drained for as long as its keep-alive (30 s x 0.75 x 2) allows silence: closed.
    c.t += 44s;
    c.rules.tick(c.t);
    CHECK(c.rules.state() == phase::connected);
    c.t += 2s;
    c.rules.tick(c.t);
    CHECK(c.rules.state() == phase::closing);
}

TEST_CASE("rules: output that drains resumes reading and restarts the keep-alive") {
    mqttd::broker b(quiet_options());
    client c(b);
    c.connect(mqtt::protocol_version::v311, "slow-reader", 10);
    std::string writing;
    c.rules.take_output(writing, c.t);
    while (c.rules.wants_input()) c.in(mqtt::pingreq{});
    c.t += 12s;  // longer than the keep-alive's 15 s? not yet; and the silence is the broker's
    c.rules.written(c.t);
    c.rules.take_output(writing, c.t);
    c.rules.written(c.t);
    CHECK(c.rules.wants_input());
    CHECK(c.rules.deadline() == c.t + 15s);
}

TEST_CASE("rules: inbound topic aliases are bounded in bytes, whatever their count") {
    mqttd::broker b(quiet_options());
    client c(b);
    auto ack = c.connect5("aliases");
    CHECK(ack.props.integer(mqtt::property_id::topic_alias_maximum) == 100);
    const std::string long_topic(4000, 'a');
    int accepted = 0;
    for (std::uint32_t alias = 1; alias <= 100 && c.rules.state() == phase::connected; ++alias) {
        c.in(publish(long_topic + std::to_string(alias), mqtt::qos::at_most_once, 0,
                     props({{mqtt::property_id::topic_alias, alias}})));
        if (c.rules.state() == phase::connected) ++accepted;
    }
    CHECK(accepted == 16);  // 16 x 4001 bytes fit in 64 KiB, a 17th does not
    CHECK(client::disconnect_reason(c.out()) == reason_code::quota_exceeded);
}

TEST_CASE("rules: replacing an alias's topic counts only the new name") {
    mqttd::broker b(quiet_options());
    client c(b);
    c.connect5("alias-reuse");
    const std::string topic(30000, 'b');
    for (int i = 0; i < 50; ++i)
        c.in(publish(topic + std::to_string(i % 10), mqtt::qos::at_most_once, 0,
                     props({{mqtt::property_id::topic_alias, 1}})));
    CHECK(c.rules.state() == phase::connected);
}

TEST_CASE("rules: a wrong acknowledgement is a protocol error") {
    mqttd::broker b(quiet_options());
    client sub(b);
    sub.connect5("sub");
    mqtt::subscribe s;
    s.packet_id = 1;
    s.subscriptions.push_back({"q/#", {mqtt::qos::exactly_once}});
    sub.in(s);
    sub.out();
    client pub(b);
    pub.connect5("pub");
    pub.in(publish("q/1", mqtt::qos::at_least_once, 1));
    pub.in(publish("q/2", mqtt::qos::exactly_once, 2));
    pub.out();
    sub.rules.woken(sub.t);
    auto got = sub.out();
    REQUIRE(got.size() == 2);
    const auto q1 = std::get<mqtt::publish>(got[0]).packet_id;
    const auto q2 = std::get<mqtt::publish>(got[1]).packet_id;

    SUBCASE("PUBREC for a QoS 1 message") {
        sub.in(mqtt::pubrec{{q1}});
        CHECK(client::disconnect_reason(sub.out()) == reason_code::protocol_error);
    }
    SUBCASE("PUBACK for a QoS 2 message") {
        sub.in(mqtt::puback{{q2}});
        CHECK(client::disconnect_reason(sub.out()) == reason_code::protocol_error);
    }
    SUBCASE("PUBCOMP before the broker sent PUBREL") {
        sub.in(mqtt::pubcomp{{q2}});
        CHECK(client::disconnect_reason(sub.out()) == reason_code::protocol_error);
    }
    SUBCASE("acks for ids the session does not know are not errors") {
        sub.in(mqtt::puback{{999}});
        sub.in(mqtt::pubcomp{{998}});
        CHECK(sub.rules.state() == phase::connected);
        sub.in(mqtt::pubrec{{q2}});
        sub.in(mqtt::pubrec{{q2}});  // again: the same PUBREL again
        auto acks = sub.out();
        REQUIRE(acks.size() == 2);
        CHECK(std::get<mqtt::pubrel>(acks[1]).reason == reason_code::success);
        sub.in(mqtt::pubcomp{{q2}});
        sub.in(mqtt::puback{{q1}});
        CHECK(sub.rules.state() == phase::connected);
    }
}

TEST_CASE("rules: PUBREL before the broker answered the PUBLISH is a protocol error") {
    mqttd::broker b(quiet_options());
    std::vector<mqttd::publish_hold> held;
    b.hooks().on_message_publish([&](const mqttd::client_info&, const mqttd::message_ptr&,
                                     const mqttd::publish_hold& h) { held.push_back(h); });
    client pub(b);
    pub.connect5("held");
    pub.in(publish("t", mqtt::qos::exactly_once, 7));
    CHECK(pub.out().empty());  // PUBREC waits for the hold
    pub.in(mqtt::pubrel{{7}});
    CHECK(client::disconnect_reason(pub.out()) == reason_code::protocol_error);
}

TEST_CASE("rules: held QoS 2 messages count once against Receive Maximum") {
    auto o = quiet_options();
    o.max_inflight = 4;
    mqttd::broker b(o);
    std::vector<mqttd::publish_hold> held;
    b.hooks().on_message_publish([&](const mqttd::client_info&, const mqttd::message_ptr&,
                                     const mqttd::publish_hold& h) { held.push_back(h); });
    client pub(b);
    pub.connect5("window");
    for (std::uint16_t id = 1; id <= 4; ++id) pub.in(publish("t", mqtt::qos::exactly_once, id));
    CHECK(pub.rules.state() == phase::connected);
    pub.in(publish("t", mqtt::qos::exactly_once, 5));  // [MQTT-3.3.4-9]
    CHECK(client::disconnect_reason(pub.out()) == reason_code::receive_maximum_exceeded);
}

TEST_CASE("rules: acks held for the hooks pause reading, and the silence does not count against the client") {
    auto o = quiet_options();
    o.max_inflight = 16;
    mqttd::broker b(o);
    std::vector<mqttd::publish_hold> held;
    b.hooks().on_message_publish([&](const mqttd::client_info&, const mqttd::message_ptr&,
                                     const mqttd::publish_hold& h) { held.push_back(h); });
    client pub(b);
    pub.connect(mqtt::protocol_version::v311, "paused", 5);
    for (std::uint16_t id = 1; id <= 16; ++id) pub.in(publish("t", mqtt::qos::at_least_once, id));
    CHECK_FALSE(pub.rules.wants_input());
    CHECK(pub.rules.deadline() == clock_type::time_point::max());
    pub.t += 60s;
    held.clear();  // stored: the holds open
    CHECK(pub.owner->wakes > 0);
    pub.rules.woken(pub.t);
    CHECK(pub.out().size() == 16);
    CHECK(pub.rules.wants_input());
    CHECK(pub.rules.deadline() == pub.t + 7500ms);
}

TEST_CASE("rules: mqtt.max_keepalive caps long keep-alives and none, and leaves short ones") {
    auto o = quiet_options();
    o.max_keepalive = 60;
    mqttd::broker b(o);
    client none(b);
    CHECK(none.connect5("none", {}, 0).props.integer(mqtt::property_id::server_keep_alive) == 60);
    client longer(b);
    CHECK(longer.connect5("long", {}, 600).props.integer(mqtt::property_id::server_keep_alive) == 60);
    CHECK(longer.rules.deadline() == longer.t + 90s);
    client shorter(b);
    CHECK_FALSE(shorter.connect5("short", {}, 10).props.find(mqtt::property_id::server_keep_alive));
    CHECK(shorter.rules.deadline() == shorter.t + 15s);
    client v311(b);
    auto refused = v311.connect(mqtt::protocol_version::v311, "v311-long", 600);
    CHECK(refused.reason == 2);  // identifier rejected: 3.1.1 cannot be told
    CHECK(v311.rules.state() == phase::closing);
}

TEST_CASE("rules: the CONNACK fits the client's Maximum Packet Size or is not sent") {
    mqttd::broker b(quiet_options());
    const auto ask = [](std::uint32_t max) {
        return props({{mqtt::property_id::maximum_packet_size, max},
                      {mqtt::property_id::request_response_information, 1}});
    };
    client roomy(b);
    CHECK(roomy.connect5("roomy", ask(1000)).props.find(mqtt::property_id::response_information));
    client tight(b);
    auto ack = tight.connect5("tight", ask(24));  // room for the limits, not the response topic
    CHECK_FALSE(ack.props.find(mqtt::property_id::response_information));
    CHECK(mqtt::encoded_size(mqtt::packet(ack), mqtt::protocol_version::v5) <= 24);
    CHECK(tight.rules.state() == phase::connected);
    client tiny(b);
    mqtt::connect c;
    c.version = mqtt::protocol_version::v5;
    c.client_id = "tiny";
    c.props = ask(8);
    tiny.in(c);  // [MQTT-3.1.2-24]: no packet beyond 8 bytes, and no CONNACK is that small
    CHECK_FALSE(tiny.rules.has_output());
    CHECK(tiny.rules.state() == phase::closing);
    CHECK_FALSE(b.sessions().find("tiny"));  // nothing was taken over or opened
}

TEST_CASE("rules: a connection taken over moves nothing more into flight") {
    mqttd::broker b(quiet_options());
    client old_conn(b);
    old_conn.connect(mqtt::protocol_version::v311, "device", 60, false);
    mqtt::subscribe s;
    s.packet_id = 1;
    s.subscriptions.push_back({"cmd", {mqtt::qos::at_least_once}});
    old_conn.in(s);
    old_conn.out();
    client new_conn(b);
    new_conn.connect(mqtt::protocol_version::v311, "device", 60, false);
    CHECK(old_conn.owner->takeovers == 1);
    // A message arrives before the old connection has heard of the takeover.
    client pub(b);
    pub.connect(mqtt::protocol_version::v311, "pub");
    pub.in(publish("cmd", mqtt::qos::at_least_once, 1));
    old_conn.rules.woken(old_conn.t);
    CHECK(old_conn.out().empty());
    new_conn.rules.woken(new_conn.t);
    auto got = new_conn.out();
    REQUIRE(got.size() == 1);
    CHECK(std::get<mqtt::publish>(got[0]).topic == "cmd");
}

TEST_CASE("rules: after a Clean Start takeover, a SUBSCRIBE on the old connection leaves nothing in the tree") {
    mqttd::broker b(quiet_options());
    client old_conn(b);
    old_conn.connect(mqtt::protocol_version::v311, "device", 60, false);
    client new_conn(b);
    new_conn.connect(mqtt::protocol_version::v311, "device", 60, true);
    mqtt::subscribe s;
    s.packet_id = 1;
    s.subscriptions.push_back({"late/#", {mqtt::qos::at_least_once}});
    old_conn.in(s);  // handled before its takeover runs
    auto got = old_conn.out();
    REQUIRE(got.size() == 1);
    CHECK(std::get<mqtt::suback>(got[0]).reasons == std::vector<std::uint8_t>{0x80});
    CHECK(b.subscriptions().size() == 0);
}

TEST_CASE("rules: a DISCONNECT with a reason is flushed, then the connection lingers, then ends") {
    mqttd::broker b(quiet_options());
    client c(b);
    c.connect5("closing");
    c.rules.shutting_down(c.t);
    CHECK(c.rules.state() == phase::closing);
    CHECK(client::disconnect_reason(c.out()) == reason_code::server_shutting_down);
    c.in(mqtt::pingreq{});  // read while closing, not answered
    CHECK_FALSE(c.rules.has_output());
    c.rules.flushed(c.t);
    CHECK(c.rules.state() == phase::lingering);
    CHECK_FALSE(b.sessions().find("closing"));  // released at the flush, not at the socket's close
    c.rules.input_ended();
    CHECK(c.rules.state() == phase::ended);
}

TEST_CASE("rules: a closing connection that cannot flush ends at the grace") {
    mqttd::broker b(quiet_options());
    client c(b);
    c.connect5("stuck", {}, 10);
    c.t += 16s;
    c.rules.tick(c.t);
    CHECK(c.rules.state() == phase::closing);  // keep-alive timeout: DISCONNECT 0x8D queued
    c.t += mqttd::connection_rules::close_grace;
    c.rules.tick(c.t);
    CHECK(c.rules.state() == phase::ended);
}

TEST_CASE("rules: a broken second CONNECT is a Protocol Error, not a CONNECT's refusal") {
    mqttd::broker b(quiet_options());
    client c(b);
    c.connect5("second-connect");
    // The decoder stops at the second CONNECT's protocol level [MQTT-3.1.0-2].
    c.rules.decode_error(mqtt::make_error_code(reason_code::unsupported_protocol_version),
                         mqtt::protocol_version::v5, c.t);
    CHECK(client::disconnect_reason(c.out()) == reason_code::protocol_error);
}

namespace {

mqttd::broker_options with_password(const std::string& user, const std::string& stored) {
    auto o = quiet_options();
    o.allow_anonymous = false;
    std::string why;
    o.passwords.emplace(user, std::make_shared<const auth::password_hash>(*auth::parse_password_hash(stored, why)));
    return o;
}

mqtt::connect connect_as(mqtt::protocol_version v, std::string user, std::string password) {
    mqtt::connect c;
    c.version = v;
    c.client_id = "auth-" + user;
    c.username = std::move(user);
    c.password = std::move(password);
    return c;
}

// Waits for the checker's wake-up, as the connection would, and hands it to the rules.
void await_password_check(client& c) {
    for (int i = 0; i < 1000 && c.owner->wakes == 0; ++i) std::this_thread::sleep_for(10ms);
    REQUIRE(c.owner->wakes > 0);
    c.rules.woken(c.t);
}

}  // namespace

TEST_CASE("rules: a password is checked off the connection's thread; reading waits, the connect timeout runs") {
    mqttd::broker b(with_password("alice", "$plain$wonderland"));
    client c(b);
    c.reader.set_version(mqtt::protocol_version::v5);
    c.in(connect_as(mqtt::protocol_version::v5, "alice", "wonderland"));
    CHECK(c.rules.state() == phase::awaiting_connect);
    CHECK_FALSE(c.rules.wants_input());  // what the client sent behind CONNECT waits
    CHECK(c.rules.deadline() == c.t + b.options().connect_timeout);
    await_password_check(c);
    auto got = c.out();
    REQUIRE(got.size() == 1);
    CHECK(std::get<mqtt::connack>(got[0]).reason == 0);
    CHECK(c.rules.state() == phase::connected);
    CHECK(c.rules.wants_input());
}

namespace {

// A refusal for a wrong password comes only after the delay, on a tick.
std::vector<mqtt::packet> after_refusal_delay(client& c) {
    CHECK(c.out().empty());
    CHECK_FALSE(c.rules.wants_input());
    CHECK(c.rules.deadline() == c.t + mqttd::connection_rules::refusal_delay);
    c.t += mqttd::connection_rules::refusal_delay - 1ms;
    c.rules.tick(c.t);
    CHECK(c.out().empty());
    c.t += 1ms;
    c.rules.tick(c.t);
    return c.out();
}

}  // namespace

TEST_CASE("rules: a wrong password is CONNACK 4 (3.1.1) or 0x86 (5.0), a second late; so is an unlisted name") {
    mqttd::broker b(with_password("alice", "$plain$wonderland"));
    client v311(b);
    v311.reader.set_version(mqtt::protocol_version::v311);
    v311.in(connect_as(mqtt::protocol_version::v311, "alice", "guess"));
    await_password_check(v311);
    auto got = after_refusal_delay(v311);
    REQUIRE(got.size() == 1);
    CHECK(std::get<mqtt::connack>(got[0]).reason == 4);
    CHECK(v311.rules.state() == phase::closing);

    client v5(b);
    v5.reader.set_version(mqtt::protocol_version::v5);
    v5.in(connect_as(mqtt::protocol_version::v5, "alice", "guess"));
    await_password_check(v5);
    got = after_refusal_delay(v5);
    REQUIRE(got.size() == 1);
    CHECK(std::get<mqtt::connack>(got[0]).reason == static_cast<std::uint8_t>(reason_code::bad_user_name_or_password));

    client stranger(b);
    stranger.reader.set_version(mqtt::protocol_version::v311);
    stranger.in(connect_as(mqtt::protocol_version::v311, "mallory", "wonderland"));
    got = after_refusal_delay(stranger);
    REQUIRE(got.size() == 1);
    CHECK(std::get<mqtt::connack>(got[0]).reason == 4);
    CHECK(stranger.owner->wakes == 0);
}

namespace {

mqttd::broker_options with_acl(const char* text, bool disconnect = false) {
    auto o = quiet_options();
    auto rules = std::make_shared<std::vector<auth::acl_rule>>();
    // deny subscribe "secret/#" and publish "secret/#"; allow all else (acl_nomatch allow)
    auth::acl_rule deny;
    deny.allow = false;
    deny.what = auth::access::pubsub;
    deny.topics = {{text}};
    rules->push_back(deny);
    o.acl = std::move(rules);
    o.acl_deny_disconnect = disconnect;
    return o;
}

mqtt::subscribe subscribe_to(std::initializer_list<const char*> filters) {
    mqtt::subscribe s;
    s.packet_id = 7;
    for (const char* f : filters) s.subscriptions.push_back({f, {mqtt::qos::at_least_once}});
    return s;
}

}  // namespace

TEST_CASE("rules: ACL: a refused subscription is 0x87 (5.0) or 0x80 (3.1.1); the others are granted") {
    mqttd::broker b(with_acl("secret/#"));
    client v5(b);
    v5.connect5("acl-sub-5");
    v5.in(subscribe_to({"open/#", "secret/a", "$share/g/secret/#"}));
    auto got = v5.out();
    REQUIRE(got.size() == 1);
    CHECK(std::get<mqtt::suback>(got[0]).reasons == std::vector<std::uint8_t>{1, 0x87, 0x87});
    CHECK(b.subscriptions().size() == 1);

    client v311(b);
    v311.connect(mqtt::protocol_version::v311, "acl-sub-4");
    v311.in(subscribe_to({"secret/a"}));
    got = v311.out();
    REQUIRE(got.size() == 1);
    CHECK(std::get<mqtt::suback>(got[0]).reasons == std::vector<std::uint8_t>{0x80});
}

TEST_CASE("rules: ACL: a refused PUBLISH is not routed: PUBACK 0x87 (5.0), acknowledged and dropped (3.1.1)") {
    mqttd::broker b(with_acl("secret/#"));
    client sub(b);
    sub.connect5("acl-watch");
    sub.in(subscribe_to({"#"}));
    sub.out();
    client v5(b);
    v5.connect5("acl-pub-5");
    v5.in(publish("secret/x", mqtt::qos::at_least_once, 1));
    auto got = v5.out();
    REQUIRE(got.size() == 1);
    CHECK(std::get<mqtt::puback>(got[0]).reason == reason_code::not_authorized);
    client v311(b);
    v311.connect(mqtt::protocol_version::v311, "acl-pub-4");
    v311.in(publish("secret/x", mqtt::qos::exactly_once, 2));
    got = v311.out();
    REQUIRE(got.size() == 1);
    CHECK(std::holds_alternative<mqtt::pubrec>(got[0]));
    v311.in(mqtt::pubrel{{2}});
    got = v311.out();
    REQUIRE(got.size() == 1);
    CHECK(std::holds_alternative<mqtt::pubcomp>(got[0]));
    v5.in(publish("open/x", mqtt::qos::at_most_once, 0));
    sub.rules.woken(sub.t);  // what the session queued for it
    got = sub.out();
    REQUIRE(got.size() == 1);  // only the permitted one
    CHECK(std::get<mqtt::publish>(got[0]).topic == "open/x");
}

TEST_CASE("rules: ACL: acl_deny_action = disconnect closes with 0x87; a refused will is dropped") {
    mqttd::broker b(with_acl("secret/#", true));
    client c(b);
    c.connect5("acl-disconnect");
    c.in(publish("secret/x", mqtt::qos::at_least_once, 1));
    CHECK(client::disconnect_reason(c.out()) == reason_code::not_authorized);
    CHECK(c.rules.state() == phase::closing);

    mqttd::broker quiet(with_acl("secret/#"));
    client watcher(quiet);
    watcher.connect5("acl-will-watch");
    watcher.in(subscribe_to({"#"}));
    watcher.out();
    for (const char* topic : {"secret/will", "open/will"}) {
        client w(quiet);
        mqtt::connect cn;
        cn.version = mqtt::protocol_version::v311;
        cn.client_id = std::string("acl-will-") + topic;
        mqtt::will_message will;
        will.topic = topic;
        will.payload = mqtt::shared_payload(std::string_view("gone"));
        cn.will = std::move(will);
        w.reader.set_version(mqtt::protocol_version::v311);
        w.in(cn);
        w.out();
        w.rules.input_ended();  // the network went away: the will is due
    }
    watcher.rules.woken(watcher.t);
    const auto got = watcher.out();
    REQUIRE(got.size() == 1);
    CHECK(std::get<mqtt::publish>(got[0]).topic == "open/will");
}
