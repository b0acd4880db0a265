// Rows per second, one INSERT per round trip (as EMQX's backend writes) against
// pipelined batches of 1,000 in one transaction. Printed, not asserted: the numbers
// depend on the machine.
#include <doctest/doctest.h>

#include <cstdio>

#include "pg_test_env.hpp"

using namespace mqttd::pg;
using namespace pgtest;

namespace {

struct measurement {
    std::int64_t rows = 0;
    double seconds = 0;
    bool ok = true;
    double rate() const { return seconds > 0 ? static_cast<double>(rows) / seconds : 0; }
};

// Inserts for about `duration`, `per_batch` rows per run() (a transaction when > 1).
asio::awaitable<measurement> insert_for(connection& c, std::size_t per_batch, clock::duration duration) {
    measurement m;
    const auto t0 = clock::now();
    batch b;
    std::int64_t id = 0;
    while (clock::now() - t0 < duration && m.ok) {
        b.clear();
        if (per_batch > 1) b.begin();
        for (std::size_t i = 0; i < per_batch; ++i)
            b.execute("tp_ins", {fmt::format("msg-{}-{}", per_batch, id++), "sender-1", "t/1", 1, 0, "payload of a typical size, 40 bytes ok"});
        if (per_batch > 1) b.commit();
        auto r = co_await c.run(b);
        m.ok = r.ok();
        m.rows += static_cast<std::int64_t>(per_batch);
    }
    m.seconds = std::chrono::duration<double>(clock::now() - t0).count();
    co_return m;
}

}  // namespace

TEST_CASE("throughput: one INSERT per round trip vs. pipelined batches of 1,000") {
    PGTEST_REQUIRE_DSN(d);
    asio::io_context io;
    session s(io, d);
    const std::string t = unique("pgt_tp");
    s.sql("CREATE TABLE " + t + " (LIKE mqtt_msg INCLUDING ALL)");
    s.conn.prepare("tp_ins", "INSERT INTO " + t +
                                 " (msgid, sender, topic, qos, retain, payload, arrived) VALUES ($1, $2, $3, $4, $5, $6, now())");

    auto single = run(io, insert_for(s.conn, 1, 1500ms));
    auto batched = run(io, insert_for(s.conn, 1000, 1500ms));
    CHECK(single.ok);
    CHECK(batched.ok);
    CHECK(s.count(t) == single.rows + batched.rows);
    s.sql("DROP TABLE " + t);

    const std::string report = fmt::format(
        "inserts/s: one per round trip (autocommit) {:.0f}; pipelined, 1,000 per transaction {:.0f} ({:.1f}x)",
        single.rate(), batched.rate(), single.rate() > 0 ? batched.rate() / single.rate() : 0.0);
    std::printf("%s\n", report.c_str());
    MESSAGE(report);
}
