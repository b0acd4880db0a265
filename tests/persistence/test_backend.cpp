// The backend's functions against a real PostgreSQL, driven through the hook bus with a
// stand-in for the broker (which records what the backend asks of it). The real broker
// with real clients is exercised by tests/integration/test_backend_*.py.
#include <doctest/doctest.h>

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <limits>
#include <map>
#include <mutex>

#include "backend_test_env.hpp"
#include "broker/hooks.hpp"
#include "conf/backend_settings.hpp"
#include "conf/config_file.hpp"
#include "persistence/backend.hpp"

using namespace betest;
namespace pg = mqttd::pg;
using mqttd::client_info;
using mqttd::message;
using mqttd::message_ptr;

namespace {

struct delivery {
    std::string clientid;
    std::vector<message_ptr> msgs;
    mqtt::qos qos;
    bool retained;
};

class fake_broker final : public mqttd::broker_api {
public:
    explicit fake_broker(mqttd::hook_bus& h) : hooks_(h) {}
    bool subscribe(const std::string& clientid, const std::vector<mqtt::subscription>& subs) override {
        {
            std::lock_guard lock(m_);
            for (const auto& s : subs) subscribed.emplace_back(clientid, s.filter, s.options.max_qos);
        }
        for (const auto& s : subs) hooks_.session_subscribed({client_info{clientid, {}, {}, {}}, s.filter, s.options.max_qos, false});
        return true;
    }
    bool deliver(const std::string& clientid, const std::vector<message_ptr>& msgs, mqtt::qos qos, bool retained) override {
        std::lock_guard lock(m_);
        deliveries.push_back({clientid, msgs, qos, retained});
        return true;
    }
    // The session queue takes at most `stored_room` of a page (the first ones).
    std::size_t deliver_stored(const std::string& clientid, const std::vector<message_ptr>& msgs,
                               mqtt::qos qos) override {
        const auto n = std::min(msgs.size(), stored_room.load());
        deliver(clientid, {msgs.begin(), msgs.begin() + static_cast<std::ptrdiff_t>(n)}, qos, false);
        return n;
    }
    const std::string& node_name() const override { return node_; }

    std::vector<delivery> take() {
        std::lock_guard lock(m_);
        return std::exchange(deliveries, {});
    }
    std::size_t count() {
        std::lock_guard lock(m_);
        return deliveries.size();
    }

    std::mutex m_;
    std::vector<delivery> deliveries;
    std::vector<std::tuple<std::string, std::string, mqtt::qos>> subscribed;
    std::atomic<std::size_t> stored_room{std::numeric_limits<std::size_t>::max()};

private:
    mqttd::hook_bus& hooks_;
    std::string node_ = "mqttd@unit";
};

conf::backend_settings settings_for(const std::string& dsn, const std::vector<std::string>& hooks,
                                    const std::string& extra = "") {
    auto p = pgtest::params(dsn);
    std::string text = fmt::format(
        "backend.pgsql.pool1.server = {}:{}\nbackend.pgsql.pool1.pool_size = 2\n"
        "backend.pgsql.pool1.username = {}\nbackend.pgsql.pool1.password = {}\nbackend.pgsql.pool1.database = {}\n"
        "backend.pgsql.batch_delay = 1ms\n{}",
        p.host, p.port, p.user, p.password, p.database, extra);
    for (const auto& h : hooks) text += h + "\n";
    return conf::parse_backend_settings(conf::parse_config(text, "unit.conf"));
}

message_ptr make_msg(const std::string& topic, std::string payload, mqtt::qos q, bool retain, const std::string& sender) {
    static std::atomic<int> n{0};
    auto m = std::make_shared<message>();
    m->topic = topic;
    m->payload = mqtt::shared_payload(payload);
    m->qos = q;
    m->retain = retain;
    m->msgid = pgtest::unique("unitmsg") + "_" + std::to_string(n++);
    m->sender = sender;
    m->timestamp = std::chrono::system_clock::now();
    return m;
}

struct env {
    env(const std::string& d, const std::vector<std::string>& hooks, const std::string& extra = "")
        : admin(admin_io, d), broker(bus), be(settings_for(d, hooks, extra), bus, broker) {
        be.start();
        be.attach();
    }
    ~env() {
        be.stop(std::chrono::milliseconds(2000));
        // What these tests wrote to the shared tables (all named with a "unit" prefix).
        admin.sql("DELETE FROM mqtt_retain WHERE topic LIKE 'unit%'");
        admin.sql("DELETE FROM mqtt_msg WHERE msgid LIKE 'unitmsg%'");
        admin.sql("DELETE FROM mqtt_acked WHERE clientid LIKE 'unit%'");
        admin.sql("DELETE FROM mqtt_sub WHERE clientid LIKE 'unit%'");
        admin.sql("DELETE FROM mqtt_client WHERE clientid LIKE 'unit%'");
    }

    // Waits until everything pushed so far has been written.
    void wait_written() {
        REQUIRE(wait_until([&] { return be.stats().pending == 0; }));
    }
    std::int64_t scalar(const std::string& q, std::initializer_list<pg::param> ps = {}) {
        auto r = admin.sql(q, ps);
        return r.rows.empty() || r.rows.is_null(0, 0) ? -1 : *r.rows.get_int(0, 0);
    }

    asio::io_context admin_io;
    pgtest::session admin;
    mqttd::hook_bus bus;
    fake_broker broker;
    mqttd::persistence::backend be;
};

const std::vector<std::string> seed_hooks = {
    R"(backend.pgsql.hook.client.connected.1    = {"action": {"function": "on_client_connected"}, "pool": "pool1"})",
    R"(backend.pgsql.hook.client.connected.2    = {"action": {"function": "on_subscribe_lookup"}, "pool": "pool1"})",
    R"(backend.pgsql.hook.client.disconnected.1 = {"action": {"function": "on_client_disconnected"}, "pool": "pool1"})",
    R"(backend.pgsql.hook.session.subscribed.1  = {"topic": "#", "action": {"function": "on_message_fetch"}, "pool": "pool1"})",
    R"(backend.pgsql.hook.session.subscribed.2  = {"topic": "#", "action": {"function": "on_retain_lookup"}, "pool": "pool1"})",
    R"(backend.pgsql.hook.message.publish.1     = {"topic": "#", "action": {"function": "on_message_publish"}, "pool": "pool1"})",
    R"(backend.pgsql.hook.message.publish.2     = {"topic": "#", "action": {"function": "on_message_retain"}, "pool": "pool1"})",
    R"(backend.pgsql.hook.message.publish.3     = {"topic": "#", "action": {"function": "on_retain_delete"}, "pool": "pool1"})",
    R"(backend.pgsql.hook.message.acked.1       = {"topic": "#", "action": {"function": "on_message_acked"}, "pool": "pool1"})",
};

}  // namespace

TEST_CASE("client state: connected, a late disconnect of an older connection, disconnected") {
    PGTEST_REQUIRE_DSN(d);
    env e(d, seed_hooks);
    const auto id = pgtest::unique("unit_client");
    const auto t0 = std::chrono::system_clock::now() - std::chrono::seconds(5);
    const auto t1 = std::chrono::system_clock::now();
    e.bus.client_connected({id, "", {}, t1});
    e.wait_written();
    CHECK(e.scalar("SELECT state FROM mqtt_client WHERE clientid = $1", {id}) == 1);
    auto r = e.admin.sql("SELECT node, offline_at IS NULL, created IS NOT NULL FROM mqtt_client WHERE clientid = $1", {id});
    CHECK(r.rows.get(0, 0) == "mqttd@unit");
    CHECK(r.rows.get(0, 1) == "t");
    CHECK(r.rows.get(0, 2) == "t");

    e.bus.client_disconnected({id, "", {}, t0});  // the taken-over connection, late
    e.wait_written();
    CHECK(e.scalar("SELECT state FROM mqtt_client WHERE clientid = $1", {id}) == 1);

    e.bus.client_disconnected({id, "", {}, t1});
    e.wait_written();
    CHECK(e.scalar("SELECT state FROM mqtt_client WHERE clientid = $1", {id}) == 0);
    CHECK(e.scalar("SELECT count(*) FROM mqtt_client WHERE clientid = $1 AND offline_at IS NOT NULL", {id}) == 1);
}

TEST_CASE("publish: QoS 1 stored and held until committed; QoS 0 and empty retained not stored") {
    PGTEST_REQUIRE_DSN(d);
    env e(d, seed_hooks);
    const auto sender = pgtest::unique("unit_pub");
    const auto topic = "unit/" + sender;
    std::atomic<bool> released{false};
    std::atomic<std::int64_t> rows_at_release{-1};
    auto m1 = make_msg(topic, std::string("bin\0\xff", 5), mqtt::qos::at_least_once, false, sender);
    {
        auto hold = std::make_shared<mqttd::publish_token>([&](mqtt::reason_code) {
            asio::io_context io2;
            pgtest::session s2(io2, d);
            rows_at_release = *s2.sql("SELECT count(*) FROM mqtt_msg WHERE msgid = $1", {m1->msgid}).rows.get_int(0, 0);
            released = true;
        });
        e.bus.message_publish({sender, "", {}, {}}, m1, hold);
    }
    REQUIRE(wait_until([&] { return released.load(); }));
    CHECK(rows_at_release.load() == 1);
    e.bus.message_publish({sender, "", {}, {}}, make_msg(topic, "q0", mqtt::qos::at_most_once, false, sender), nullptr);
    e.bus.message_publish({sender, "", {}, {}}, make_msg(topic, "", mqtt::qos::at_least_once, true, sender), nullptr);
    e.wait_written();
    CHECK(e.scalar("SELECT count(*) FROM mqtt_msg WHERE sender = $1", {sender}) == 1);
    auto r = e.admin.sql("SELECT payload, qos, retain, topic FROM mqtt_msg WHERE msgid = $1", {m1->msgid});
    CHECK(r.rows.get(0, 0) == "\\x62696e00ff");
    CHECK(r.rows.get(0, 1) == "1");
    CHECK(r.rows.get(0, 2) == "0");
}

TEST_CASE("retained messages: stored, served for wildcard filters with the retain flag, deleted") {
    PGTEST_REQUIRE_DSN(d);
    env e(d, seed_hooks);
    const auto base = "unitret/" + pgtest::unique("r");
    const client_info pub{"unit_ret_pub", "", {}, {}};
    e.bus.message_publish(pub, make_msg(base + "/a", "A", mqtt::qos::at_least_once, true, "p"), nullptr);
    e.bus.message_publish(pub, make_msg(base + "/b/c", std::string("\x80\x81", 2), mqtt::qos::at_most_once, true, "p"), nullptr);
    e.bus.message_publish(pub, make_msg(base + "/a", "A2", mqtt::qos::exactly_once, true, "p"), nullptr);
    e.wait_written();
    CHECK(e.scalar("SELECT count(*) FROM mqtt_retain WHERE topic LIKE $1", {base + "/%"}) == 2);

    const client_info sub{"unit_ret_sub", "", {}, {}};
    e.bus.session_subscribed({sub, base + "/#", mqtt::qos::at_least_once, false});
    e.wait_written();
    auto ds = e.broker.take();
    // on_message_fetch created a pointer (nothing delivered); on_retain_lookup delivered.
    REQUIRE(ds.size() == 1);
    CHECK(ds[0].retained);
    CHECK(ds[0].qos == mqtt::qos::at_least_once);
    REQUIRE(ds[0].msgs.size() == 2);
    CHECK(ds[0].msgs[0]->topic == base + "/a");
    CHECK(ds[0].msgs[0]->payload.view() == "A2");
    CHECK(ds[0].msgs[0]->qos == mqtt::qos::exactly_once);
    CHECK(ds[0].msgs[1]->topic == base + "/b/c");
    CHECK(ds[0].msgs[1]->payload.view() == std::string("\x80\x81", 2));

    e.bus.session_subscribed({sub, base + "/+", mqtt::qos::at_most_once, false});
    e.wait_written();
    ds = e.broker.take();
    REQUIRE(ds.size() == 1);
    REQUIRE(ds[0].msgs.size() == 1);
    CHECK(ds[0].msgs[0]->topic == base + "/a");

    e.bus.message_publish(pub, make_msg(base + "/a", "", mqtt::qos::at_most_once, true, "p"), nullptr);
    e.wait_written();
    CHECK(e.scalar("SELECT count(*) FROM mqtt_retain WHERE topic LIKE $1", {base + "/%"}) == 1);

    // Shared subscriptions get no retained messages.
    e.bus.session_subscribed({sub, "$share/g/" + base + "/#", mqtt::qos::at_least_once, false});
    e.wait_written();
    CHECK(e.broker.take().empty());
}

TEST_CASE("offline fetch: pointer at the newest on first subscribe, then the unread oldest first; acks move it forward over the acknowledged prefix only") {
    PGTEST_REQUIRE_DSN(d);
    env e(d, seed_hooks);
    const auto base = "unitfetch/" + pgtest::unique("f");
    const auto cid = pgtest::unique("unit_fetch_sub");
    const client_info sub{cid, "", {}, {}};
    const client_info pub{"unit_fetch_pub", "", {}, {}};
    std::vector<message_ptr> before;
    for (int i = 0; i < 3; ++i) {
        before.push_back(make_msg(base + "/x", "old" + std::to_string(i), mqtt::qos::at_least_once, false, "p"));
        e.bus.message_publish(pub, before.back(), nullptr);
    }
    e.bus.session_subscribed({sub, base + "/+", mqtt::qos::at_least_once, false});
    e.wait_written();
    CHECK(e.broker.take().empty());  // a first subscription gets no history
    const auto newest_old = e.scalar("SELECT max(id) FROM mqtt_msg WHERE msgid = $1", {before.back()->msgid});
    CHECK(e.scalar("SELECT mid FROM mqtt_acked WHERE clientid = $1 AND topic = $2", {cid, base + "/+"}) == newest_old);

    std::vector<message_ptr> unread;
    for (int i = 0; i < 5; ++i) {
        unread.push_back(make_msg(base + (i % 2 ? "/y" : "/x"), "new" + std::to_string(i), mqtt::qos::at_least_once, false, "p"));
        e.bus.message_publish(pub, unread.back(), nullptr);
    }
    e.bus.message_publish(pub, make_msg(base + "/x/deeper", "no", mqtt::qos::at_least_once, false, "p"), nullptr);
    // A new session subscribing again (existed = false): the unread ones, oldest first.
    e.bus.session_subscribed({sub, base + "/+", mqtt::qos::exactly_once, false});
    e.wait_written();
    auto ds = e.broker.take();
    REQUIRE(ds.size() == 1);
    CHECK_FALSE(ds[0].retained);
    CHECK(ds[0].qos == mqtt::qos::exactly_once);
    REQUIRE(ds[0].msgs.size() == 5);
    for (int i = 0; i < 5; ++i) {
        CHECK(ds[0].msgs[static_cast<std::size_t>(i)]->msgid == unread[static_cast<std::size_t>(i)]->msgid);
        CHECK(ds[0].msgs[static_cast<std::size_t>(i)]->payload.view() == "new" + std::to_string(i));
        CHECK(ds[0].msgs[static_cast<std::size_t>(i)]->qos == mqtt::qos::at_least_once);
    }
    // A resumed session (existed = true) is not fetched for again.
    e.bus.session_subscribed({sub, base + "/+", mqtt::qos::at_least_once, true});
    e.wait_written();
    CHECK(e.broker.take().empty());

    // Ack the third, then the first: the pointer passes the first only, the second is
    // not acknowledged.
    const auto pointer = [&] { return e.scalar("SELECT mid FROM mqtt_acked WHERE clientid = $1 AND topic = $2", {cid, base + "/+"}); };
    e.bus.message_acked({sub, ds[0].msgs[2]});
    e.bus.message_acked({sub, ds[0].msgs[0]});
    e.wait_written();
    const auto first = e.scalar("SELECT id FROM mqtt_msg WHERE msgid = $1", {unread[0]->msgid});
    CHECK(pointer() == first);

    // An ack of a live message (one without a row) fetches nothing: the session queue
    // never drops stored messages for live ones, so the second is still coming.
    e.bus.message_acked({sub, make_msg(base + "/x", "ghost", mqtt::qos::at_least_once, false, "p")});
    e.wait_written();
    CHECK(pointer() == first);
    CHECK(e.broker.take().empty());

    // A new session fetches from the pointer: the third again, as its ack came after a gap.
    // Its queue has room for two of them: the page ends there, and the other two follow
    // once those are acknowledged, in stored order.
    e.broker.stored_room = 2;
    e.bus.session_subscribed({sub, base + "/+", mqtt::qos::at_least_once, false});
    e.wait_written();
    ds = e.broker.take();
    REQUIRE(ds.size() == 1);
    REQUIRE(ds[0].msgs.size() == 2);
    for (std::size_t i = 0; i < 2; ++i) CHECK(ds[0].msgs[i]->msgid == unread[i + 1]->msgid);
    e.broker.stored_room = std::numeric_limits<std::size_t>::max();
    e.bus.message_acked({sub, ds[0].msgs[0]});
    e.bus.message_acked({sub, ds[0].msgs[1]});
    e.wait_written();
    CHECK(pointer() == e.scalar("SELECT id FROM mqtt_msg WHERE msgid = $1", {unread[2]->msgid}));
    ds = e.broker.take();
    REQUIRE(ds.size() == 1);
    REQUIRE(ds[0].msgs.size() == 2);
    for (std::size_t i = 0; i < 2; ++i) CHECK(ds[0].msgs[i]->msgid == unread[i + 3]->msgid);

    // After unsubscribing, acks no longer move this filter's pointer.
    const auto before_unsubscribe = pointer();
    e.bus.session_unsubscribed({sub, base + "/+", mqtt::qos::at_most_once, true});
    e.bus.message_acked({sub, ds[0].msgs[0]});
    e.wait_written();
    CHECK(pointer() == before_unsubscribe);
}

TEST_CASE("max_returned_count bounds a page; the next page follows once the page is acknowledged") {
    PGTEST_REQUIRE_DSN(d);
    env e(d,
          {R"(backend.pgsql.hook.session.subscribed.1 = {"action": {"function": "on_message_fetch"}, "offline_opts": {"max_returned_count": 2, "time_range": "1h"}, "pool": "pool1"})",
           R"(backend.pgsql.hook.message.publish.1 = {"action": {"function": "on_message_publish"}, "pool": "pool1"})",
           R"(backend.pgsql.hook.message.acked.1 = {"action": {"function": "on_message_acked"}, "pool": "pool1"})"});
    const auto t = "unitlimit/" + pgtest::unique("l");
    const client_info sub{pgtest::unique("unit_limit"), "", {}, {}};
    const auto pointer = [&] { return e.scalar("SELECT mid FROM mqtt_acked WHERE clientid = $1 AND topic = $2", {sub.clientid, t}); };
    e.bus.session_subscribed({sub, t, mqtt::qos::at_least_once, false});
    e.wait_written();
    std::vector<message_ptr> ms;
    for (int i = 0; i < 5; ++i) {
        ms.push_back(make_msg(t, std::to_string(i), mqtt::qos::at_least_once, false, "p"));
        e.bus.message_publish({"p", "", {}, {}}, ms.back(), nullptr);
    }
    e.bus.session_subscribed({sub, t, mqtt::qos::at_least_once, false});
    e.wait_written();
    const auto row = [&](const message_ptr& m) { return e.scalar("SELECT id FROM mqtt_msg WHERE msgid = $1", {m->msgid}); };
    const auto page = [&](std::vector<std::string> expected) {
        auto ds = e.broker.take();
        REQUIRE(ds.size() == 1);
        std::vector<std::string> got;
        for (const auto& m : ds[0].msgs) got.emplace_back(m->payload.view());
        CHECK(got == expected);
        return ds[0].msgs;
    };
    for (const auto& m : page({"0", "1"})) e.bus.message_acked({sub, m});
    // A live message (stored after the subscription) acknowledged while the next page is
    // read: the pointer does not pass the backlog for it.
    auto live = make_msg(t, "live", mqtt::qos::at_least_once, false, "p");
    e.bus.message_publish({"p", "", {}, {}}, live, nullptr);
    e.bus.message_acked({sub, live});
    e.wait_written();
    CHECK(pointer() == row(ms[1]));
    for (const auto& m : page({"2", "3"})) e.bus.message_acked({sub, m});
    e.wait_written();
    CHECK(pointer() == row(ms[3]));
    for (const auto& m : page({"4"})) e.bus.message_acked({sub, m});
    e.wait_written();
    CHECK(e.broker.take().empty());
    // The backlog is sent: the live ack counts now.
    CHECK(pointer() == row(live));
}

TEST_CASE("subscription restore: mqtt_sub rows become subscriptions, which fetch their unread messages") {
    PGTEST_REQUIRE_DSN(d);
    env e(d, seed_hooks);
    const auto cid = pgtest::unique("unit_restore");
    const auto t = "unitrestore/" + cid;
    e.admin.sql("INSERT INTO mqtt_sub (clientid, topic, qos) VALUES ($1, $2, 1), ($1, $3, 0)", {cid, t, t + "/zero"});
    e.admin.sql("INSERT INTO mqtt_acked (clientid, topic, mid) VALUES ($1, $2, (SELECT coalesce(max(id), 0) FROM mqtt_msg))",
                {cid, t});
    auto m = make_msg(t, "waiting", mqtt::qos::at_least_once, false, "p");
    e.bus.message_publish({"p", "", {}, {}}, m, nullptr);
    e.bus.client_connected({cid, "", {}, std::chrono::system_clock::now()});
    e.wait_written();
    REQUIRE(wait_until([&] { return e.broker.count() >= 1; }));
    e.wait_written();
    {
        std::lock_guard lock(e.broker.m_);
        REQUIRE(e.broker.subscribed.size() == 2);
        CHECK(std::get<1>(e.broker.subscribed[0]) == t);
        CHECK(std::get<2>(e.broker.subscribed[0]) == mqtt::qos::at_least_once);
        CHECK(std::get<2>(e.broker.subscribed[1]) == mqtt::qos::at_most_once);
    }
    auto ds = e.broker.take();
    REQUIRE(ds.size() == 1);
    REQUIRE(ds[0].msgs.size() == 1);
    CHECK(ds[0].msgs[0]->msgid == m->msgid);
}

TEST_CASE("SQL actions: parameters bound, one statement failing alone, payload raw into bytea") {
    PGTEST_REQUIRE_DSN(d);
    asio::io_context io;
    pgtest::session admin(io, d);
    const auto t = pgtest::unique("bt_action");
    admin.sql("CREATE TABLE " + t + " (id serial, clientid text, topic text, qos int, retain int, msgid text, "
              "payload_text text, payload_raw bytea, ts bigint, username text)");
    const auto ins = fmt::format(
        "insert into {}(clientid, topic, qos, retain, msgid, payload_text, payload_raw, ts, username) values "
        "(${{clientid}}, ${{topic}}, ${{qos}}, ${{retain}}, ${{msgid}}, ${{payload}}, ${{payload}}, ${{timestamp}}, ${{username}})",
        t);
    env e(d, {fmt::format(R"X(backend.pgsql.hook.message.publish.1 = {{"topic": "unitact/#", "action": {{"sql": ["{}", "insert into no_such_table values (${{clientid}})", "insert into {}(clientid) values (${{clientid}})"]}}, "pool": "pool1"}})X",
                          ins, t),
              fmt::format(R"X(backend.pgsql.hook.client.connected.1 = {{"action": {{"sql": "insert into {}(clientid, topic) values (${{clientid}}, 'connected')"}}, "pool": "pool1"}})X", t)});
    const std::string evil = "x'); DROP TABLE mqtt_msg;--";
    const std::string payload("\x00\x01\xfe\xff", 4);
    auto m = make_msg("unitact/a", payload, mqtt::qos::at_least_once, true, evil);
    e.bus.message_publish({evil, "user1", {}, {}}, m, nullptr);
    e.bus.message_publish({evil, "user1", {}, {}}, make_msg("other/a", "x", mqtt::qos::at_least_once, false, evil), nullptr);
    e.bus.client_connected({evil, "", {}, std::chrono::system_clock::now()});
    e.wait_written();
    auto r = admin.sql("SELECT clientid, topic, qos, retain, msgid, payload_text, encode(payload_raw, 'hex'), ts, username FROM " +
                       t + " WHERE msgid IS NOT NULL");
    REQUIRE(r.rows.size() == 1);
    CHECK(r.rows.get(0, 0) == evil);
    CHECK(r.rows.get(0, 1) == "unitact/a");
    CHECK(r.rows.get(0, 2) == "1");
    CHECK(r.rows.get(0, 3) == "1");
    CHECK(r.rows.get(0, 4) == m->msgid);
    CHECK(r.rows.get(0, 5) == "\\x0001feff");
    CHECK(r.rows.get(0, 6) == "0001feff");
    CHECK(r.rows.get(0, 7) == std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(m->timestamp.time_since_epoch()).count()));
    CHECK(r.rows.get(0, 8) == "user1");
    CHECK(*admin.sql("SELECT count(*) FROM " + t + " WHERE msgid IS NULL AND topic IS NULL").rows.get_int(0, 0) == 1);
    CHECK(*admin.sql("SELECT count(*) FROM " + t + " WHERE topic = 'connected'").rows.get_int(0, 0) == 1);
    CHECK(e.be.stats().failed == 1);
    CHECK(*admin.sql("SELECT count(*) FROM pg_class WHERE relname = 'mqtt_msg'").rows.get_int(0, 0) == 1);
    admin.sql("DROP TABLE " + t);
}

TEST_CASE("detach and attach at runtime") {
    PGTEST_REQUIRE_DSN(d);
    env e(d, seed_hooks);
    const auto sender = pgtest::unique("unit_detach");
    e.be.detach();
    CHECK_FALSE(e.be.attached());
    e.bus.message_publish({sender, "", {}, {}}, make_msg("unitdetach/a", "1", mqtt::qos::at_least_once, false, sender), nullptr);
    e.be.attach();
    CHECK(e.be.attached());
    e.bus.message_publish({sender, "", {}, {}}, make_msg("unitdetach/a", "2", mqtt::qos::at_least_once, false, sender), nullptr);
    e.wait_written();
    CHECK(e.scalar("SELECT count(*) FROM mqtt_msg WHERE sender = $1", {sender}) == 1);
}

TEST_CASE("a batch of message rows and acks: one statement each, in order, payloads byte-exact, pointers at the furthest ack they may pass") {
    PGTEST_REQUIRE_DSN(d);
    // A long batch delay: what is pushed together is written in one batch.
    env e(d,
          {R"(backend.pgsql.hook.session.subscribed.1 = {"action": {"function": "on_message_fetch"}, "pool": "pool1"})",
           R"(backend.pgsql.hook.message.publish.1 = {"action": {"function": "on_message_publish"}, "pool": "pool1"})",
           R"(backend.pgsql.hook.message.acked.1 = {"action": {"function": "on_message_acked"}, "pool": "pool1"})"},
          "backend.pgsql.batch_delay = 300ms\n");
    const auto base = "unitgroup/" + pgtest::unique("g");
    const client_info sub{pgtest::unique("unit_group_sub"), "", {}, {}};
    const client_info pub{"unit_group_pub", "", {}, {}};
    e.bus.session_subscribed({sub, base + "/#", mqtt::qos::at_least_once, false});
    e.wait_written();

    const std::vector<std::string> payloads = {
        "plain", "", std::string("\0\xff\x01", 3), "\\x41", "\\x", "a\"b\\c", "{1,2}", "NULL", "tab\tline\n",
        "ünïcödé ✓ 😀", std::string("\xc3", 1), std::string(10000, 'z'), "x'); DROP TABLE mqtt_msg;--"};
    std::vector<message_ptr> ms;
    for (int i = 0; i < 40; ++i) {
        ms.push_back(make_msg(base + "/" + std::to_string(i % 3), payloads[static_cast<std::size_t>(i) % payloads.size()],
                              mqtt::qos::at_least_once, false, "p"));
        e.bus.message_publish(pub, ms.back(), nullptr);
        // Acks of messages of this very batch, out of order: the pointer ends at the furthest.
        if (i == 12) e.bus.message_acked({sub, ms[12]});
        if (i == 20) e.bus.message_acked({sub, ms[20]});
        if (i == 25) e.bus.message_acked({sub, ms[15]});
    }
    e.wait_written();
    CHECK(e.be.stats().grouped == 43);
    CHECK(e.be.stats().failed == 0);
    auto r = e.admin.sql("SELECT msgid FROM mqtt_msg WHERE topic LIKE $1 ORDER BY id", {base + "/%"});
    REQUIRE(r.rows.size() == ms.size());
    for (std::size_t i = 0; i < ms.size(); ++i) CHECK(r.rows.get(i, 0) == ms[i]->msgid);
    CHECK(e.scalar("SELECT count(*) FROM mqtt_msg WHERE msgid = $1 AND payload = '\\x00ff01'", {ms[2]->msgid}) == 1);
    CHECK(e.scalar("SELECT count(*) FROM mqtt_msg WHERE msgid = $1 AND payload = 'a\"b\\c'", {ms[5]->msgid}) == 1);
    const auto twentieth = e.scalar("SELECT id FROM mqtt_msg WHERE msgid = $1", {ms[20]->msgid});
    CHECK(e.scalar("SELECT mid FROM mqtt_acked WHERE clientid = $1 AND topic = $2", {sub.clientid, base + "/#"}) ==
          twentieth);

    // A new session reads the rest back, byte for byte.
    e.bus.session_subscribed({sub, base + "/#", mqtt::qos::at_least_once, false});
    e.wait_written();
    auto ds = e.broker.take();
    REQUIRE(ds.size() == 1);
    REQUIRE(ds[0].msgs.size() == ms.size() - 21);
    for (std::size_t i = 0; i < ds[0].msgs.size(); ++i) {
        CHECK(ds[0].msgs[i]->msgid == ms[21 + i]->msgid);
        CHECK(ds[0].msgs[i]->payload.view() == ms[21 + i]->payload.view());
    }

    // Acks in a later batch, out of order: the pointer waits for the oldest of the page
    // (ms[21]), then passes all of it, with row ids the backend knows.
    e.bus.message_acked({sub, ds[0].msgs[30 - 21]});
    e.bus.message_acked({sub, make_msg(base + "/0", "o", mqtt::qos::at_least_once, false, "x")});  // no row
    e.bus.message_acked({sub, ds[0].msgs[35 - 21]});
    e.wait_written();
    CHECK(e.scalar("SELECT mid FROM mqtt_acked WHERE clientid = $1 AND topic = $2", {sub.clientid, base + "/#"}) ==
          twentieth);
    // That ack of a live message (with no row) fetched nothing: the page is still coming.
    CHECK(e.broker.take().empty());
    for (auto i = ds[0].msgs.size(); i-- > 0;) e.bus.message_acked({sub, ds[0].msgs[i]});
    e.wait_written();
    CHECK(e.scalar("SELECT mid FROM mqtt_acked WHERE clientid = $1 AND topic = $2", {sub.clientid, base + "/#"}) ==
          e.scalar("SELECT id FROM mqtt_msg WHERE msgid = $1", {ms.back()->msgid}));

    // The backlog is sent: acks move the pointer to their rows, that of one written by
    // someone else too (looked up by msgid).
    const auto other = pgtest::unique("unitmsg_other");
    e.admin.sql("INSERT INTO mqtt_msg (msgid, sender, topic, qos, retain, payload) VALUES ($1, 'x', $2, 1, 0, 'o')",
                {other, base + "/0"});
    auto other_msg = std::make_shared<message>(*ms[0]);
    other_msg->msgid = other;
    e.bus.message_acked({sub, other_msg});
    e.bus.message_acked({sub, ms[36]});
    e.wait_written();
    CHECK(e.scalar("SELECT mid FROM mqtt_acked WHERE clientid = $1 AND topic = $2", {sub.clientid, base + "/#"}) ==
          e.scalar("SELECT id FROM mqtt_msg WHERE msgid = $1", {other}));

    // A row that cannot fit is refused when it arrives, before anything is acknowledged;
    // the rows around it are written grouped as ever.
    std::vector<message_ptr> more;
    std::atomic<int> unfit_reason{-1};
    for (int i = 0; i < 10; ++i) {
        more.push_back(make_msg(i == 4 ? base + "/" + std::string(250, 'l') : base + "/more", "m", mqtt::qos::at_least_once,
                                false, "p"));
        if (i == 4) {
            auto hold = std::make_shared<mqttd::publish_token>(
                [&](mqtt::reason_code rc) { unfit_reason = static_cast<int>(rc); });
            e.bus.message_publish(pub, more.back(), hold);
            CHECK(hold->failed());  // at once: the broker neither routes nor acknowledges it
        } else {
            e.bus.message_publish(pub, more.back(), nullptr);
        }
    }
    e.wait_written();
    CHECK(unfit_reason.load() == static_cast<int>(mqtt::reason_code::topic_name_invalid));
    CHECK(e.be.stats().unfit == 1);
    CHECK(e.be.stats().failed == 0);
    CHECK(e.scalar("SELECT count(*) FROM mqtt_msg WHERE topic = $1", {base + "/more"}) == 9);
}

TEST_CASE("ack pointers are followed while the session lives: not after its end, and a late end of an earlier session spares its successor") {
    PGTEST_REQUIRE_DSN(d);
    env e(d, seed_hooks);
    const auto t = "unittrack/" + pgtest::unique("t");
    const client_info c{pgtest::unique("unit_track"), "", {}, {}};
    // Stand-ins for the broker's sessions: identities only, never followed.
    const std::array<int, 3> ids{};
    const auto* s1 = reinterpret_cast<const mqttd::session*>(&ids[0]);
    const auto* s2 = reinterpret_cast<const mqttd::session*>(&ids[1]);
    const auto* s3 = reinterpret_cast<const mqttd::session*>(&ids[2]);
    const auto pointer = [&] { return e.scalar("SELECT mid FROM mqtt_acked WHERE clientid = $1 AND topic = $2", {c.clientid, t}); };
    const auto row_id = [&](const message_ptr& m) { return e.scalar("SELECT id FROM mqtt_msg WHERE msgid = $1", {m->msgid}); };
    const auto tracked_before = e.be.stats().tracked_clients;

    e.bus.session_subscribed({c, t, mqtt::qos::at_least_once, false, 0, s1});
    CHECK(e.be.stats().tracked_clients == tracked_before + 1);
    auto m1 = make_msg(t, "1", mqtt::qos::at_least_once, false, "p");
    e.bus.message_publish({"p", "", {}, {}}, m1, nullptr);
    e.bus.message_acked({c, m1});
    e.wait_written();
    CHECK(pointer() == row_id(m1));

    // The session ended: its acks are no longer followed, and nothing is kept for it.
    e.bus.session_terminated({c.clientid, s1});
    CHECK(e.be.stats().tracked_clients == tracked_before);
    auto m2 = make_msg(t, "2", mqtt::qos::at_least_once, false, "p");
    e.bus.message_publish({"p", "", {}, {}}, m2, nullptr);
    e.bus.message_acked({c, m2});
    e.wait_written();
    CHECK(pointer() == row_id(m1));

    // s2 is taken over by s3 (clean start), and s2's end is told late.
    e.bus.session_subscribed({c, t, mqtt::qos::at_least_once, false, 0, s2});
    e.bus.session_subscribed({c, t, mqtt::qos::at_least_once, false, 0, s3});
    e.bus.session_terminated({c.clientid, s2});
    e.wait_written();
    // s3 fetched m2, stored while no session followed the pointer.
    auto ds = e.broker.take();
    REQUIRE(ds.size() == 1);
    REQUIRE(ds[0].msgs.size() == 1);
    CHECK(ds[0].msgs[0]->msgid == m2->msgid);
    e.bus.message_acked({c, ds[0].msgs[0]});
    e.wait_written();
    CHECK(pointer() == row_id(m2));
    e.bus.session_terminated({c.clientid, s3});

    // Many sessions come and go: nothing stays behind.
    for (int i = 0; i < 300; ++i) {
        const client_info other{c.clientid + "_" + std::to_string(i), "", {}, {}};
        e.bus.session_subscribed({other, t + "/+", mqtt::qos::exactly_once, false, 0, s1});
        e.bus.session_subscribed({other, t + "/#", mqtt::qos::at_least_once, false, 0, s1});
    }
    CHECK(e.be.stats().tracked_clients == tracked_before + 300);
    for (int i = 0; i < 300; ++i) e.bus.session_terminated({c.clientid + "_" + std::to_string(i), s1});
    CHECK(e.be.stats().tracked_clients == tracked_before);
    e.wait_written();
}

TEST_CASE("retain lookup honours Retain Handling: 2 never, 1 only for a new subscription") {
    PGTEST_REQUIRE_DSN(d);
    env e(d, seed_hooks);
    const auto t = "unitrh/" + pgtest::unique("rh");
    e.bus.message_publish({"p", "", {}, {}}, make_msg(t, "kept", mqtt::qos::at_least_once, true, "p"), nullptr);
    e.wait_written();
    const client_info sub{pgtest::unique("unit_rh"), "", {}, {}};
    auto retained_deliveries = [&] {
        std::size_t n = 0;
        for (const auto& dl : e.broker.take()) n += dl.retained ? dl.msgs.size() : 0;
        return n;
    };
    e.bus.session_subscribed({sub, t, mqtt::qos::at_most_once, false, 2});
    e.wait_written();
    CHECK(retained_deliveries() == 0);
    e.bus.session_subscribed({sub, t, mqtt::qos::at_most_once, true, 1});
    e.wait_written();
    CHECK(retained_deliveries() == 0);
    e.bus.session_subscribed({sub, t, mqtt::qos::at_most_once, false, 1});
    e.wait_written();
    CHECK(retained_deliveries() == 1);
    e.bus.session_subscribed({sub, t, mqtt::qos::at_most_once, true, 0});
    e.wait_written();
    CHECK(retained_deliveries() == 1);
}

TEST_CASE("server away, over the bound: what can be shed is, clients coming and going stay bounded, held rows wait") {
    PGTEST_REQUIRE_DSN(d);
    auto p = pgtest::params(d);
    std::string text = fmt::format(
        "backend.pgsql.pool1.server = 127.0.0.1:{}\nbackend.pgsql.pool1.pool_size = 1\n"
        "backend.pgsql.pool1.username = {}\nbackend.pgsql.pool1.password = {}\nbackend.pgsql.pool1.database = {}\n"
        "backend.pgsql.max_pending = 10\n",
        pgtest::closed_port(), p.user, p.password, p.database);
    for (const auto& h : seed_hooks)
        if (h.find("on_subscribe_lookup") == std::string::npos) text += h + "\n";
    mqttd::hook_bus bus;
    fake_broker broker(bus);
    mqttd::persistence::backend be(conf::parse_backend_settings(conf::parse_config(text, "unit.conf")), bus, broker);
    be.start();
    be.attach();
    const client_info pub{"unit_away_pub", "", mqtt::protocol_version::v5, std::chrono::system_clock::now()};
    std::atomic<int> failed{0};
    for (int i = 0; i < 10; ++i) {
        auto hold = std::make_shared<mqttd::publish_token>([&](mqtt::reason_code rc) { failed += rc != mqtt::reason_code::success; });
        bus.message_publish(pub, make_msg("unit_away/t", "p", mqtt::qos::at_least_once, false, pub.clientid), hold);
    }
    CHECK(be.stats().pending == 10);  // held rows are queued whatever the bound
    // Clients coming and going: their connect rows wait up to twice the bound, and the
    // disconnect of a connection whose connect row is not written is not queued either.
    auto come_and_go = [&](int from, int n) {
        for (int i = from; i < from + n; ++i) {
            const client_info c{"unit_away_" + std::to_string(i), "", mqtt::protocol_version::v311,
                                std::chrono::system_clock::now()};
            bus.client_connected(c);
            bus.client_disconnected(c);
        }
    };
    come_and_go(0, 100);
    CHECK(be.stats().pending == 20);
    come_and_go(100, 100);
    CHECK(be.stats().pending == 20);
    // Over twice the bound an offline fetch and a retain lookup are shed as well; a
    // publish that waits for its row is queued still.
    const auto refused = be.stats().refused;
    bus.session_subscribed({pub, "unit_away/#", mqtt::qos::at_least_once, false, 0, nullptr});
    CHECK(be.stats().refused == refused + 2);
    bus.message_publish(pub, make_msg("unit_away/t", "p", mqtt::qos::at_least_once, false, pub.clientid),
                        std::make_shared<mqttd::publish_token>([&](mqtt::reason_code rc) {
                            failed += rc != mqtt::reason_code::success;
                        }));
    CHECK(be.stats().pending == 21);
    be.stop(std::chrono::milliseconds(200));
    CHECK(failed.load() == 11);  // not written by the shutdown's deadline: never acknowledged as stored
}
