// The hook bus against the real broker (in this process, on a loopback port) and real
// Paho clients: a handler can observe, delay a publisher's acknowledgement, subscribe a
// client as if it had sent SUBSCRIBE, deliver messages to one client's session, and
// learn when a session ends.
#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <map>
#include <mutex>
#include <thread>

#include "broker/broker.hpp"
#include "paho_client.hpp"

using namespace std::chrono_literals;

namespace {

struct running_broker {
    mqttd::broker b;
    explicit running_broker(unsigned threads = 2) : b(options(threads)) { b.start(); }
    ~running_broker() {
        b.stop();
        b.wait();
    }
    std::uint16_t port() const { return b.ports().front(); }

    static mqttd::broker_options options(unsigned threads) {
        mqttd::broker_options o;
        o.listeners = {{mqttd::listener_options::kind::tcp, "127.0.0.1", 0}};
        o.threads = threads;
        o.sys_interval = 0s;
        return o;
    }
};

// Events seen by handlers, which run on broker threads.
struct event_log {
    std::mutex m;
    std::condition_variable cv;
    std::vector<std::string> lines;

    void add(std::string s) {
        {
            std::lock_guard lock(m);
            lines.push_back(std::move(s));
        }
        cv.notify_all();
    }
    bool wait_for(const std::string& s, std::chrono::milliseconds timeout = 3s) {
        std::unique_lock lock(m);
        return cv.wait_for(lock, timeout, [&] { return std::find(lines.begin(), lines.end(), s) != lines.end(); });
    }
};

mqttd::message_ptr stored_message(const std::string& topic, const std::string& payload, mqtt::qos q) {
    auto m = std::make_shared<mqttd::message>();
    m->topic = topic;
    m->payload = mqtt::shared_payload(payload);
    m->qos = q;
    m->msgid = "stored-" + payload;
    return m;
}

}  // namespace

TEST_CASE("hooks: a handler observes every event with its data") {
    event_log log;  // outlives the broker, whose threads call the handlers
    running_broker rb;
    auto& h = rb.b.hooks();
    h.on_client_connected([&](const mqttd::client_info& c) { log.add("connected " + c.clientid); });
    h.on_client_disconnected([&](const mqttd::client_info& c) { log.add("disconnected " + c.clientid); });
    h.on_session_subscribed([&](const mqttd::subscription_event& e) {
        log.add("subscribed " + e.client.clientid + " " + e.topic + " " + std::to_string(static_cast<int>(e.qos)));
    });
    h.on_session_unsubscribed([&](const mqttd::subscription_event& e) { log.add("unsubscribed " + e.client.clientid + " " + e.topic); });
    h.on_message_publish([&](const mqttd::client_info& c, const mqttd::message_ptr& m, const mqttd::publish_hold&) {
        log.add("publish " + c.clientid + " " + m->topic + " " + std::string(m->payload.view()) + " " +
                std::to_string(static_cast<int>(m->qos)) + (m->msgid.empty() ? " no-msgid" : " msgid"));
    });
    h.on_message_delivered([&](const mqttd::delivery_event& e) { log.add("delivered " + e.client.clientid + " " + e.msg->topic); });
    h.on_message_acked([&](const mqttd::delivery_event& e) { log.add("acked " + e.client.clientid + " " + e.msg->topic); });

    {
        test::paho_client sub(rb.port(), "observer-sub");
        test::paho_client pub(rb.port(), "observer-pub");
        REQUIRE(sub.connect() == MQTTCLIENT_SUCCESS);
        REQUIRE(pub.connect() == MQTTCLIENT_SUCCESS);
        CHECK(log.wait_for("connected observer-sub"));
        REQUIRE(sub.subscribe("obs/+", 1) == MQTTCLIENT_SUCCESS);
        CHECK(log.wait_for("subscribed observer-sub obs/+ 1"));
        CHECK(pub.completed(pub.publish("obs/x", "hello", 1), 3s));
        CHECK(log.wait_for("publish observer-pub obs/x hello 1 msgid"));
        auto got = sub.receive(3s);
        REQUIRE(got);
        CHECK(got->payload == "hello");
        CHECK(log.wait_for("delivered observer-sub obs/x"));
        CHECK(log.wait_for("acked observer-sub obs/x"));
        REQUIRE(sub.unsubscribe("obs/+") == MQTTCLIENT_SUCCESS);
        CHECK(log.wait_for("unsubscribed observer-sub obs/+"));
    }
    CHECK(log.wait_for("disconnected observer-sub"));
    CHECK(log.wait_for("disconnected observer-pub"));
}

TEST_CASE("hooks: a publish handler delays the PUBACK while other traffic flows") {
    std::mutex m;
    std::vector<mqttd::publish_hold> held;
    running_broker rb;
    auto handle = rb.b.hooks().on_message_publish(
        [&](const mqttd::client_info&, const mqttd::message_ptr& msg, const mqttd::publish_hold& hold) {
            if (hold && msg->topic == "slow/store") {
                std::lock_guard lock(m);
                held.push_back(hold);
            }
        });

    test::paho_client slow(rb.port(), "slow-publisher");
    test::paho_client other_pub(rb.port(), "other-publisher");
    test::paho_client other_sub(rb.port(), "other-subscriber");
    REQUIRE(slow.connect() == MQTTCLIENT_SUCCESS);
    REQUIRE(other_pub.connect() == MQTTCLIENT_SUCCESS);
    REQUIRE(other_sub.connect() == MQTTCLIENT_SUCCESS);
    REQUIRE(other_sub.subscribe("fast/#", 1) == MQTTCLIENT_SUCCESS);

    auto first = slow.publish("slow/store", "1", 1);
    auto second = slow.publish("slow/store", "2", 2);
    CHECK_FALSE(slow.completed(first, 700ms));  // held: no PUBACK yet

    // Meanwhile other clients are served, and the slow publisher's connection keeps
    // reading: a QoS 0 publish from it is routed at once.
    REQUIRE(other_sub.subscribe("slow/qos0", 0) == MQTTCLIENT_SUCCESS);
    slow.publish("slow/qos0", "through", 0);
    CHECK(other_pub.completed(other_pub.publish("fast/x", "quick", 1), 2s));
    auto a = other_sub.receive(2s);
    auto b = other_sub.receive(2s);
    REQUIRE(a);
    REQUIRE(b);
    CHECK(((a->payload == "quick" && b->payload == "through") || (a->payload == "through" && b->payload == "quick")));

    {
        std::lock_guard lock(m);
        CHECK(held.size() == 2);
        held.clear();  // release: the broker acknowledges now, in order
    }
    CHECK(slow.completed(first, 3s));
    CHECK(slow.completed(second, 3s));

    // Detached at runtime: nothing is held any more.
    rb.b.hooks().detach(handle);
    CHECK(slow.completed(slow.publish("slow/store", "3", 1), 2s));
    std::lock_guard lock(m);
    CHECK(held.empty());
}

TEST_CASE("hooks: a handler subscribes a client as if it had sent SUBSCRIBE") {
    event_log log;
    running_broker rb;
    rb.b.hooks().on_client_connected([&](const mqttd::client_info& c) {
        if (c.clientid == "restored") rb.b.subscribe(c.clientid, {{"restore/+", {mqtt::qos::at_least_once}}});
    });
    rb.b.hooks().on_session_subscribed([&](const mqttd::subscription_event& e) {
        log.add("subscribed " + e.client.clientid + " " + e.topic);
    });

    // A retained message is served to the restored subscription too.
    test::paho_client pub(rb.port(), "restorer-pub");
    REQUIRE(pub.connect() == MQTTCLIENT_SUCCESS);
    CHECK(pub.completed(pub.publish("restore/kept", "retained-one", 1, true), 2s));

    test::paho_client client(rb.port(), "restored");
    REQUIRE(client.connect() == MQTTCLIENT_SUCCESS);
    CHECK(log.wait_for("subscribed restored restore/+"));
    auto r = client.receive(3s);
    REQUIRE(r);
    CHECK(r->payload == "retained-one");
    CHECK(r->retained);

    CHECK(pub.completed(pub.publish("restore/live", "live-one", 1), 2s));
    auto live = client.receive(3s);
    REQUIRE(live);
    CHECK(live->topic == "restore/live");
    CHECK(live->qos == 1);
    CHECK_FALSE(rb.b.subscribe("nobody-by-this-name", {{"x", {}}}));
}

TEST_CASE("hooks: a handler delivers stored messages to one client's session, in order, with QoS") {
    event_log acked;
    running_broker rb;
    rb.b.hooks().on_session_subscribed([&](const mqttd::subscription_event& e) {
        if (e.topic != "inbox/#") return;
        std::vector<mqttd::message_ptr> msgs;
        for (int i = 0; i < 50; ++i) msgs.push_back(stored_message("inbox/a", std::to_string(i), mqtt::qos::at_least_once));
        rb.b.deliver(e.client.clientid, msgs, e.qos, false);
    });
    rb.b.hooks().on_message_acked([&](const mqttd::delivery_event& e) {
        if (e.msg->msgid == "stored-49") acked.add("last acked by " + e.client.clientid);
    });

    test::paho_client client(rb.port(), "fetcher");
    REQUIRE(client.connect() == MQTTCLIENT_SUCCESS);
    REQUIRE(client.subscribe("inbox/#", 1) == MQTTCLIENT_SUCCESS);
    for (int i = 0; i < 50; ++i) {
        auto r = client.receive(3s);
        REQUIRE(r);
        CHECK(r->payload == std::to_string(i));
        CHECK(r->qos == 1);
        CHECK_FALSE(r->retained);
    }
    CHECK(acked.wait_for("last acked by fetcher"));

    // Another client subscribed to the same filter gets nothing it did not ask for.
    test::paho_client bystander(rb.port(), "bystander");
    REQUIRE(bystander.connect() == MQTTCLIENT_SUCCESS);
    REQUIRE(bystander.subscribe("inbox/b", 1) == MQTTCLIENT_SUCCESS);
    CHECK_FALSE(bystander.receive(500ms));
    CHECK_FALSE(rb.b.deliver("nobody-by-this-name", {stored_message("x", "y", mqtt::qos::at_most_once)},
                             mqtt::qos::at_most_once, false));
}

TEST_CASE("hooks: session.terminated, once per session, when it ends with its connection or is taken over") {
    event_log log;
    // Session identity -> a number in the order seen; forgotten when the session ends
    // (a later session may have the same address).
    std::mutex owners_mutex;
    std::map<const mqttd::session*, int> owners;
    int next_owner = 1;
    auto owner_no = [&](const mqttd::session* s, bool ends) {
        std::lock_guard lock(owners_mutex);
        const int n = owners.emplace(s, next_owner).first->second;
        if (n == next_owner) ++next_owner;
        if (ends) owners.erase(s);
        return "#" + std::to_string(n);
    };
    running_broker rb;
    rb.b.hooks().on_session_subscribed([&](const mqttd::subscription_event& e) {
        log.add("subscribed " + e.client.clientid + " " + owner_no(e.owner, false));
    });
    rb.b.hooks().on_session_terminated([&](const mqttd::session_event& e) {
        log.add("terminated " + e.clientid + " " + owner_no(e.owner, true));
    });
    rb.b.hooks().on_client_disconnected([&](const mqttd::client_info& c) { log.add("disconnected " + c.clientid); });
    auto count_starting = [&](const std::string& prefix) {
        std::lock_guard lock(log.m);
        return std::count_if(log.lines.begin(), log.lines.end(), [&](const std::string& l) { return l.starts_with(prefix); });
    };

    {
        test::paho_client c(rb.port(), "ends-with-connection");
        REQUIRE(c.connect() == MQTTCLIENT_SUCCESS);
        REQUIRE(c.subscribe("a", 1) == MQTTCLIENT_SUCCESS);
        CHECK(log.wait_for("subscribed ends-with-connection #1"));
    }
    CHECK(log.wait_for("terminated ends-with-connection #1"));

    test::paho_client first(rb.port(), "taken-over");
    REQUIRE(first.connect() == MQTTCLIENT_SUCCESS);
    REQUIRE(first.subscribe("a", 1) == MQTTCLIENT_SUCCESS);
    CHECK(log.wait_for("subscribed taken-over #2"));
    test::paho_client second(rb.port(), "taken-over");
    REQUIRE(second.connect() == MQTTCLIENT_SUCCESS);
    REQUIRE(second.subscribe("a", 1) == MQTTCLIENT_SUCCESS);
    CHECK(log.wait_for("subscribed taken-over #3"));
    CHECK(log.wait_for("terminated taken-over #2"));
    // The first connection is gone (it releases its session before that event): its
    // session did not end a second time, and the second's goes on.
    CHECK(log.wait_for("disconnected taken-over"));
    CHECK(count_starting("terminated taken-over") == 1);
}

TEST_CASE("hooks: message.publish runs before the message is routed") {
    // What a handler queues for a message (its row) then comes before anything a
    // subscriber's acknowledgement of it can queue. Observed through the counter of
    // messages routed to nobody, which routing bumps.
    running_broker rb;
    auto& dropped = rb.b.counters().messages_dropped;
    std::atomic<std::int64_t> at_hook{-1};  // the counter when the hook ran
    rb.b.hooks().on_message_publish([&](const mqttd::client_info&, const mqttd::message_ptr& m, const mqttd::publish_hold&) {
        if (m->topic == "nobody/listens") at_hook = static_cast<std::int64_t>(dropped.load());
    });
    test::paho_client pub(rb.port(), "unheard");
    REQUIRE(pub.connect() == MQTTCLIENT_SUCCESS);
    for (int qos : {0, 1}) {
        CAPTURE(qos);
        const auto before = dropped.load();
        CHECK(pub.completed(pub.publish("nobody/listens", "x", qos), 3s));
        const auto deadline = std::chrono::steady_clock::now() + 3s;
        while (dropped.load() == before && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(5ms);
        CHECK(dropped.load() == before + 1);
        CHECK(at_hook.load() == static_cast<std::int64_t>(before));  // not yet routed when the hook ran
    }
}
