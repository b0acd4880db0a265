// Rows per second through the backend (printed, not asserted): QoS 1 messages handed to
// the message.publish hook with a hold each (after_commit), written by the pool's
// ordered stream in pipelined batches, against EMQX's way over the same pool size: one
// INSERT per message per round trip, pool_size connections at once.
#include <doctest/doctest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>

#include <atomic>
#include <cstdio>

#include "backend_test_env.hpp"
#include "broker/hooks.hpp"
#include "conf/backend_settings.hpp"
#include "conf/config_file.hpp"
#include "persistence/backend.hpp"

using namespace betest;
namespace pg = mqttd::pg;

namespace {

class null_broker final : public mqttd::broker_api {
public:
    bool subscribe(const std::string&, const std::vector<mqtt::subscription>&) override { return true; }
    bool deliver(const std::string&, const std::vector<mqttd::message_ptr>&, mqtt::qos, bool) override { return true; }
    std::size_t deliver_stored(const std::string&, const std::vector<mqttd::message_ptr>& msgs, mqtt::qos) override {
        return msgs.size();
    }
    const std::string& node_name() const override { return node_; }

private:
    std::string node_ = "mqttd@bench";
};

}  // namespace

TEST_CASE("throughput: batched after_commit rows vs one INSERT per message on 8 connections") {
    PGTEST_REQUIRE_DSN(d);
    const auto p = pgtest::params(d);
    const auto sender = pgtest::unique("tp_sender");

    // The backend, as main wires it, with the seed's on_message_publish hook.
    double batched_rate = 0;
    std::uint64_t batches = 0;
    std::size_t n = 100'000;
    {
        const auto text = fmt::format(
            "backend.pgsql.pool1.server = {}:{}\nbackend.pgsql.pool1.pool_size = 8\n"
            "backend.pgsql.pool1.username = {}\nbackend.pgsql.pool1.password = {}\nbackend.pgsql.pool1.database = {}\n"
            "backend.pgsql.hook.message.publish.1 = {{\"topic\": \"#\", \"action\": {{\"function\": "
            "\"on_message_publish\"}}, \"pool\": \"pool1\"}}\n",
            p.host, p.port, p.user, p.password, p.database);
        mqttd::hook_bus bus;
        null_broker broker;
        mqttd::persistence::backend be(conf::parse_backend_settings(conf::parse_config(text, "bench.conf")), bus, broker);
        be.start();
        be.attach();
        std::atomic<std::size_t> released{0};
        const mqttd::client_info who{sender, "", {}, {}};
        const auto t0 = std::chrono::steady_clock::now();
        std::vector<std::thread> producers;
        for (int t = 0; t < 2; ++t)
            producers.emplace_back([&, t] {
                for (std::size_t i = static_cast<std::size_t>(t); i < n; i += 2) {
                    auto m = std::make_shared<mqttd::message>();
                    m->topic = "bench/topic";
                    m->payload = mqtt::shared_payload(std::string(40, 'x'));
                    m->qos = mqtt::qos::at_least_once;
                    m->msgid = sender + "_" + std::to_string(i);
                    m->sender = sender;
                    m->timestamp = std::chrono::system_clock::now();
                    auto hold = std::make_shared<mqttd::publish_token>([&](mqtt::reason_code) { ++released; });
                    bus.message_publish(who, m, hold);
                }
            });
        for (auto& t : producers) t.join();
        REQUIRE(wait_until([&] { return released.load() == n; }, 120s));
        const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        batched_rate = static_cast<double>(n) / secs;
        batches = be.stats().batches;
        be.stop();
    }

    // EMQX's way: one INSERT per message, autocommit, 8 connections at once.
    double single_rate = 0;
    {
        io_thread io;
        auto pp = p;
        pp.pool_size = 8;
        pg::pool pool(io.io.get_executor(), pp);
        io.sync([&] {
            pool.prepare("tp_single", "INSERT INTO mqtt_msg (msgid, sender, topic, qos, retain, payload, arrived) "
                                      "VALUES ($1, $2, $3, 1, 0, $4, now())");
        });
        std::atomic<std::size_t> done{0};
        std::atomic<bool> stop{false};
        std::atomic<int> running{8};
        const auto t0 = std::chrono::steady_clock::now();
        io.sync([&] {
            for (int w = 0; w < 8; ++w)
                asio::co_spawn(io.io, [&, w]() -> asio::awaitable<void> {
                    for (std::size_t i = 0; !stop; ++i) {
                        pg::batch b;
                        b.execute("tp_single", {fmt::format("{}_s{}_{}", sender, w, i), sender, "bench/single",
                                                std::string(40, 'x')});
                        auto r = co_await pool.run(b);
                        if (r.ok()) ++done;
                    }
                    --running;
                }, asio::detached);
        });
        std::this_thread::sleep_for(3s);
        stop = true;
        REQUIRE(wait_until([&] { return running.load() == 0; }));
        const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        single_rate = static_cast<double>(done.load()) / secs;
        io.sync([&] { pool.close(); });
    }

    asio::io_context admin_io;
    pgtest::session admin(admin_io, d);
    CHECK(*admin.sql("SELECT count(*) FROM mqtt_msg WHERE sender = $1 AND topic = 'bench/topic'", {sender}).rows.get_int(0, 0) ==
          static_cast<std::int64_t>(n));
    admin.sql("DELETE FROM mqtt_msg WHERE sender = $1", {sender});

    const auto report = fmt::format(
        "QoS 1 rows/s: backend stream, after_commit, batched {:.0f} ({} rows in {} round trips); one INSERT per "
        "message on 8 connections {:.0f} ({:.1f}x)",
        batched_rate, n, batches, single_rate, single_rate > 0 ? batched_rate / single_rate : 0.0);
    std::printf("%s\n", report.c_str());
    MESSAGE(report);
}
