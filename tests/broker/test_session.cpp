// Session bookkeeping without sockets: queue bounds, the inflight window, packet ids,
// acknowledgements, and resending after a reconnect.
#include <doctest/doctest.h>

#include "broker/session.hpp"

namespace {

mqttd::outgoing out(const std::string& payload, mqtt::qos q, std::string share_filter = {}) {
    auto m = std::make_shared<mqttd::message>();
    m->topic = "t";
    m->payload = mqtt::shared_payload(payload);
    m->qos = q;
    return {m, q, false, {}, std::move(share_filter)};
}

std::vector<std::string> payloads(const std::vector<mqttd::session::publish_out>& v) {
    std::vector<std::string> r;
    for (const auto& p : v) r.emplace_back(p.out.msg->payload.view());
    return r;
}

struct counting_owner : mqttd::session_owner {
    int wakes = 0;
    void wake() override { ++wakes; }
    void taken_over() override {}
};

}  // namespace

TEST_CASE("session: a full queue drops new QoS 0 and evicts the oldest for QoS 1/2") {
    mqttd::session s("c", {32, 3, 1u << 20, true});
    s.enqueue(out("a", mqtt::qos::at_least_once));
    s.enqueue(out("b", mqtt::qos::at_least_once));
    s.enqueue(out("c", mqtt::qos::at_least_once));
    s.enqueue(out("q0", mqtt::qos::at_most_once));  // full: dropped
    s.enqueue(out("d", mqtt::qos::exactly_once));   // full: "a" evicted
    CHECK(s.queued() == 3);
    CHECK(s.drops().qos0_dropped == 1);
    CHECK(s.drops().queue_overflow == 1);
    const auto gen = s.attach({});
    std::vector<mqttd::session::publish_out> taken;
    s.take(gen, 32, 100, taken);
    CHECK(payloads(taken) == std::vector<std::string>{"b", "c", "d"});
}

TEST_CASE("session: the byte bound holds too") {
    mqttd::session s("c", {32, 1000, 10, true});  // 10 bytes: topic "t" + payload
    s.enqueue(out("12345678", mqtt::qos::at_least_once));  // 9 bytes
    s.enqueue(out("abc", mqtt::qos::at_least_once));       // evicts the first
    CHECK(s.queued() == 1);
    s.enqueue(out(std::string(20, 'x'), mqtt::qos::at_least_once));  // larger than the bound itself
    CHECK(s.queued() == 1);
    CHECK(s.drops().queue_overflow == 2);
}

TEST_CASE("session: the window limits QoS 1/2 in flight; QoS 0 passes; acks free the window") {
    mqttd::session s("c", {2, 100, 1u << 20, true});
    for (auto p : {"1", "2", "3"}) s.enqueue(out(p, mqtt::qos::at_least_once));
    const auto gen = s.attach({});
    std::vector<mqttd::session::publish_out> taken;
    s.take(gen, 2, 100, taken);
    REQUIRE(taken.size() == 2);
    CHECK(taken[0].packet_id != 0);
    CHECK(taken[0].packet_id != taken[1].packet_id);
    CHECK(s.inflight_count() == 2);
    CHECK(s.puback(taken[0].packet_id) != nullptr);
    CHECK(s.puback(taken[0].packet_id) == nullptr);  // acknowledged once only
    taken.clear();
    s.take(gen, 2, 100, taken);
    CHECK(payloads(taken) == std::vector<std::string>{"3"});
}

TEST_CASE("session: QoS 2 outbound states, and resending after reconnect with DUP and PUBREL") {
    mqttd::session s("c", {10, 100, 1u << 20, true});
    s.enqueue(out("x", mqtt::qos::exactly_once));
    s.enqueue(out("y", mqtt::qos::exactly_once));
    const auto gen = s.attach({});
    std::vector<mqttd::session::publish_out> taken;
    s.take(gen, 10, 100, taken);
    REQUIRE(taken.size() == 2);
    CHECK(s.puback(taken[0].packet_id) == nullptr);  // wrong ack for QoS 2
    CHECK(s.pubrec(taken[0].packet_id) != nullptr);
    std::vector<mqttd::session::publish_out> again;
    std::vector<std::uint16_t> rels;
    s.in_flight(again, rels);
    REQUIRE(again.size() == 1);
    CHECK(again[0].dup);
    CHECK(payloads(again) == std::vector<std::string>{"y"});
    CHECK(rels == std::vector<std::uint16_t>{taken[0].packet_id});
    CHECK(s.pubcomp(taken[0].packet_id));
    CHECK_FALSE(s.pubcomp(taken[0].packet_id));
}

TEST_CASE("session: incoming QoS 2 ids are remembered until PUBREL, bounded, and forgotten after the timeout") {
    using r = mqttd::session::incoming_qos2;
    using namespace std::chrono_literals;
    mqttd::session s("c", {});
    auto begin = [&](std::uint16_t id, std::size_t max, std::chrono::milliseconds timeout) {
        auto g = mqttd::ack_gate::opened();
        return s.begin_incoming_qos2(id, max, timeout, g);
    };
    CHECK(begin(7, 2, 300s) == r::fresh);
    CHECK(begin(7, 2, 300s) == r::duplicate);
    CHECK(begin(8, 2, 300s) == r::fresh);
    CHECK(begin(9, 2, 300s) == r::too_many);
    CHECK(s.release_incoming_qos2(7));
    CHECK_FALSE(s.release_incoming_qos2(7));
    CHECK(begin(9, 2, 300s) == r::fresh);
    // With a zero timeout the old ids make room at once.
    CHECK(begin(10, 2, 0ms) == r::fresh);
    CHECK(s.incoming_qos2_count() == 1);
    CHECK(begin(11, 0, 0ms) == r::fresh);  // 0: no limit
}

TEST_CASE("session: a resent QoS 2 PUBLISH gets the first copy's gate, and an unanswered id is never timed out") {
    using r = mqttd::session::incoming_qos2;
    using namespace std::chrono_literals;
    mqttd::session s("c", {});
    auto first = std::make_shared<mqttd::ack_gate>();
    auto g = first;
    REQUIRE(s.begin_incoming_qos2(5, 1, 0ms, g) == r::fresh);
    auto resent = std::make_shared<mqttd::ack_gate>();
    CHECK(s.begin_incoming_qos2(5, 1, 0ms, resent) == r::duplicate);
    CHECK(resent == first);  // answered when the first copy is stored, not before
    // The first copy not answered yet: the timeout does not make room for another id.
    auto other = std::make_shared<mqttd::ack_gate>();
    CHECK(s.begin_incoming_qos2(6, 1, 0ms, other) == r::too_many);
    first->open(mqtt::reason_code::success);
    CHECK(s.begin_incoming_qos2(6, 1, 0ms, other) == r::fresh);
}

TEST_CASE("session: expired messages are not delivered from the queue") {
    mqttd::session s("c", {});
    auto o = out("old", mqtt::qos::at_least_once);
    auto m = std::make_shared<mqttd::message>(*o.msg);
    m->expires_at = std::chrono::steady_clock::now() - std::chrono::seconds(1);
    o.msg = m;
    s.enqueue(o);
    s.enqueue(out("fresh", mqtt::qos::at_least_once));
    const auto gen = s.attach({});
    std::vector<mqttd::session::publish_out> taken;
    s.take(gen, 10, 10, taken);
    CHECK(payloads(taken) == std::vector<std::string>{"fresh"});
    CHECK(s.drops().expired == 1);
}

TEST_CASE("session: the owner is woken on enqueue, and a stale owner cannot detach") {
    mqttd::session s("c", {});
    auto a = std::make_shared<counting_owner>();
    auto gen_a = s.attach(a);
    s.enqueue(out("1", mqtt::qos::at_most_once));
    CHECK(a->wakes == 1);
    auto b = std::make_shared<counting_owner>();
    auto gen_b = s.attach(b);
    CHECK_FALSE(s.detach(gen_a));
    CHECK(s.attached());
    CHECK(s.detach(gen_b));
    CHECK_FALSE(s.attached());
}

TEST_CASE("session: room is the send window less what is in flight and queued, and far below while detached") {
    mqttd::session s("c", {4, 100, 1u << 20, true});
    auto owner = std::make_shared<counting_owner>();
    const std::int64_t detached = s.room();
    CHECK(detached < -65535);  // below any connected session, whatever its backlog
    const auto gen = s.attach(owner);
    CHECK(s.room() == 4);
    for (auto p : {"1", "2", "3", "4", "5", "6"}) s.enqueue(out(p, mqtt::qos::at_least_once));
    CHECK(s.room() == -2);
    std::vector<mqttd::session::publish_out> taken;
    s.take(gen, 2, 100, taken);  // the client's Receive Maximum of 2 narrows the window
    CHECK(s.room() == 2 - 6);
    CHECK(s.puback(taken[0].packet_id));
    CHECK(s.room() == 2 - 5);
    CHECK(s.detach(gen));
    CHECK(s.room() == detached - 5);
}

TEST_CASE("session: the owner is not woken while the window is full, since the ack that frees it takes again") {
    mqttd::session s("c", {2, 100, 1u << 20, true});
    auto owner = std::make_shared<counting_owner>();
    const auto gen = s.attach(owner);
    s.enqueue(out("1", mqtt::qos::at_least_once));
    s.enqueue(out("2", mqtt::qos::at_least_once));
    CHECK(owner->wakes == 2);
    std::vector<mqttd::session::publish_out> taken;
    s.take(gen, 2, 100, taken);
    REQUIRE(taken.size() == 2);
    s.enqueue(out("3", mqtt::qos::at_least_once));
    CHECK(owner->wakes == 2);
    CHECK(s.puback(taken[0].packet_id));
    s.enqueue(out("4", mqtt::qos::at_least_once));  // a slot is free: "3" can go
    CHECK(owner->wakes == 3);
    taken.clear();
    s.take(gen, 2, 100, taken);
    CHECK(payloads(taken) == std::vector<std::string>{"3"});
    s.enqueue(out("q0", mqtt::qos::at_most_once));  // behind "4", which waits for a slot
    CHECK(owner->wakes == 3);
    CHECK(s.puback(taken[0].packet_id));
    taken.clear();
    s.take(gen, 2, 100, taken);
    CHECK(payloads(taken) == std::vector<std::string>{"4", "q0"});
    s.enqueue(out("q0-next", mqtt::qos::at_most_once));  // QoS 0 needs no slot
    CHECK(owner->wakes == 4);
}

TEST_CASE("session: unacknowledged shared-subscription messages can be taken for another member") {
    mqttd::session s("c", {4, 100, 1u << 20, true});
    const std::string share = "$share/g/t";
    s.enqueue(out("sent-acked", mqtt::qos::at_least_once, share));
    s.enqueue(out("sent-unacked", mqtt::qos::at_least_once, share));
    s.enqueue(out("received-q2", mqtt::qos::exactly_once, share));
    s.enqueue(out("sent-q2", mqtt::qos::exactly_once, share));
    s.enqueue(out("own", mqtt::qos::at_least_once));
    s.enqueue(out("q0", mqtt::qos::at_most_once, share));
    s.enqueue(out("queued", mqtt::qos::exactly_once, share));
    s.enqueue(out("other-group", mqtt::qos::at_least_once, "$share/h/t"));
    const auto gen = s.attach({});
    std::vector<mqttd::session::publish_out> taken;
    s.take(gen, 5, 100, taken);  // a window of 5 leaves "queued" and "other-group" in the queue
    REQUIRE(taken.size() == 6);
    CHECK(s.puback(taken[0].packet_id));
    CHECK(s.pubrec(taken[2].packet_id));  // the client has it: it stays here

    auto moved = s.take_shared_unacked([&](const std::string& f) { return f == share; });
    std::vector<std::string> got;
    for (const auto& o : moved) got.emplace_back(o.msg->payload.view());
    CHECK(got == std::vector<std::string>{"sent-unacked", "queued"});
    // "received-q2" awaiting PUBCOMP, "sent-q2" (sent, no PUBREC yet: the client may have
    // it [MQTT-4.3.3]) and "own"
    CHECK(s.inflight_count() == 3);
    CHECK(s.queued() == 1);  // "other-group": not movable
    CHECK(s.take_shared_unacked([](const std::string&) { return true; }).size() == 1);
}

TEST_CASE("session: a connection that was taken over takes nothing more into flight") {
    mqttd::session s("c", {4, 100, 1u << 20, true});
    const auto old_owner = s.attach({});
    s.enqueue(out("1", mqtt::qos::at_least_once));
    const auto new_owner = s.attach({});  // the takeover; the old connection has not closed yet
    std::vector<mqttd::session::publish_out> taken;
    s.take(old_owner, 4, 100, taken);
    CHECK(taken.empty());
    CHECK(s.inflight_count() == 0);
    s.take(new_owner, 4, 100, taken);
    CHECK(payloads(taken) == std::vector<std::string>{"1"});
}

TEST_CASE("session: where an outgoing exchange stands, by packet id") {
    mqttd::session s("c", {4, 100, 1u << 20, true});
    const auto gen = s.attach({});
    s.enqueue(out("q1", mqtt::qos::at_least_once));
    s.enqueue(out("q2", mqtt::qos::exactly_once));
    std::vector<mqttd::session::publish_out> taken;
    s.take(gen, 4, 100, taken);
    REQUIRE(taken.size() == 2);
    CHECK(s.awaiting(taken[0].packet_id) == mqttd::session::await_state::puback);
    CHECK(s.awaiting(taken[1].packet_id) == mqttd::session::await_state::pubrec);
    CHECK(s.pubrec(taken[1].packet_id));
    CHECK(s.awaiting(taken[1].packet_id) == mqttd::session::await_state::pubcomp);
    CHECK(s.pubcomp(taken[1].packet_id));
    CHECK_FALSE(s.awaiting(taken[1].packet_id));
    CHECK_FALSE(s.awaiting(999));
}

namespace {

std::vector<mqttd::outgoing> page_of(std::initializer_list<const char*> ps) {
    std::vector<mqttd::outgoing> v;
    for (auto p : ps) v.push_back(out(p, mqtt::qos::at_least_once));
    return v;
}

// Takes everything, acknowledging each message as soon as it is in flight.
std::vector<std::string> drain(mqttd::session& s, std::uint64_t gen, std::uint16_t window) {
    std::vector<std::string> got;
    for (;;) {
        std::vector<mqttd::session::publish_out> taken;
        s.take(gen, window, 1, taken);
        if (taken.empty()) return got;
        got.emplace_back(taken[0].out.msg->payload.view());
        s.puback(taken[0].packet_id);
    }
}

}  // namespace

TEST_CASE("session: a flood of live messages never evicts stored ones; they go out first, in stored order") {
    mqttd::session s("c", {1, 4, 1u << 20, true});
    const auto gen = s.attach({});
    s.enqueue(out("live-0", mqtt::qos::at_least_once));  // queued before the page came
    CHECK(s.enqueue_stored(page_of({"s1", "s2"})) == 2);
    // The queue is bounded at 4: each live message over it evicts the oldest live one.
    for (auto p : {"live-1", "live-2", "live-3", "live-4"}) s.enqueue(out(p, mqtt::qos::at_least_once));
    CHECK(s.queued() == 4);
    CHECK(s.drops().queue_overflow == 3);
    CHECK(drain(s, gen, 1) == std::vector<std::string>{"s1", "s2", "live-3", "live-4"});
}

TEST_CASE("session: a queue of stored messages only drops a new live one; a page is taken as far as it fits") {
    mqttd::session s("c", {1, 3, 1u << 20, true});
    const auto gen = s.attach({});
    CHECK(s.enqueue_stored(page_of({"a1", "a2"})) == 2);
    s.enqueue(out("live-1", mqtt::qos::at_least_once));
    // A second subscription's page: "live-1" makes room for "b1", then the queue is stored
    // messages only, so "b2" and "b3" wait for the next page.
    CHECK(s.enqueue_stored(page_of({"b1", "b2", "b3"})) == 1);
    s.enqueue(out("live-2", mqtt::qos::at_least_once));  // dropped: the stored ones go first
    CHECK(s.queued() == 3);
    CHECK(s.drops().queue_overflow == 2);
    CHECK(drain(s, gen, 1) == std::vector<std::string>{"a1", "a2", "b1"});
    // One larger than the byte bound can never be queued: taken (and dropped), with those after it.
    mqttd::session small("c", {1, 3, 10, true});
    auto page = page_of({"fits"});
    page.insert(page.begin(), out(std::string(20, 'x'), mqtt::qos::at_least_once));
    CHECK(small.enqueue_stored(std::move(page)) == 2);
    CHECK(small.queued() == 1);
}

TEST_CASE("session: stored messages that expire or are taken keep the live ones behind them") {
    mqttd::session s("c", {2, 10, 1u << 20, true});
    const auto gen = s.attach({});
    CHECK(s.enqueue_stored(page_of({"s1", "s2"})) == 2);
    s.enqueue(out("live-1", mqtt::qos::at_least_once));
    std::vector<mqttd::session::publish_out> taken;
    s.take(gen, 2, 1, taken);  // "s1" in flight
    CHECK(s.enqueue_stored(page_of({"s3"})) == 1);  // behind "s2", ahead of "live-1"
    CHECK(drain(s, gen, 2) == std::vector<std::string>{"s2", "s3", "live-1"});
}
