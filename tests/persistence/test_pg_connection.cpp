// One connection against a real PostgreSQL: connect, prepared statements, parameters,
// pipelined batches, failing steps, lost connections, timeouts and close.
#include <doctest/doctest.h>

#include <boost/asio/steady_timer.hpp>

#include <string>

#include "pg_test_env.hpp"

using namespace mqttd::pg;
using namespace pgtest;

namespace {

// A table for one test, dropped at the end.
struct table {
    table(session& s, std::string_view prefix) : s(s), name(unique(prefix)) {
        s.sql("CREATE TABLE " + name +
              " (id serial PRIMARY KEY, k varchar(100) UNIQUE, v text, n bigint, b bytea)");
    }
    ~table() {
        batch b;
        b.query("DROP TABLE IF EXISTS " + name);
        if (s.conn.usable()) s.exec(b);
    }
    session& s;
    std::string name;
};

std::string all_bytes() {
    std::string out;
    for (int i = 0; i < 256; ++i) out.push_back(static_cast<char>(i));
    return out;
}

}  // namespace

TEST_CASE("connect, query, and see the session's parameters") {
    PGTEST_REQUIRE_DSN(d);
    asio::io_context io;
    session s(io, d);
    CHECK(s.conn.usable());
    CHECK(s.conn.backend_pid() > 0);
    CHECK_FALSE(s.conn.in_transaction());

    auto r = s.sql("SELECT 1 AS one, 'x' AS x, NULL::text AS nothing, current_setting('application_name') AS app");
    REQUIRE(r.rows.size() == 1);
    REQUIRE(r.rows.columns() == 4);
    CHECK(r.rows.get(0, 0) == "1");
    CHECK(r.rows.get_int(0, 0) == 1);
    CHECK(r.rows.get(0, 1) == "x");
    CHECK(r.rows.is_null(0, 2));
    CHECK(r.rows.get(0, 2).empty());
    CHECK(r.rows.column("x") == 1u);
    CHECK_FALSE(r.rows.column("y"));
    CHECK(r.rows.column_name(0) == "one");
    CHECK(r.affected == 1);
    CHECK_THROWS_AS(r.rows.get(1, 0), std::out_of_range);
}

TEST_CASE("a second operation while one is pending is a programming error") {
    PGTEST_REQUIRE_DSN(d);
    asio::io_context io;
    session s(io, d);
    batch slow;
    slow.query("SELECT pg_sleep(0.2)");
    std::optional<batch_result> first;
    asio::co_spawn(io, s.conn.run(slow), [&](std::exception_ptr, batch_result r) { first = std::move(r); });
    step(io);  // the first operation is now waiting on the socket
    batch b;
    b.query("SELECT 1");
    CHECK_THROWS_AS(run(io, s.conn.run(b)), std::logic_error);
    REQUIRE(run_until(io, [&] { return first.has_value(); }));
    CHECK(first->ok());
}

TEST_CASE("prepared insert and select: NULL, quotes and SQL in values are stored literally") {
    PGTEST_REQUIRE_DSN(d);
    asio::io_context io;
    session s(io, d);
    table t(s, "pgt_literal");
    s.conn.prepare("lit_ins", "INSERT INTO " + t.name + " (k, v, n) VALUES ($1, $2, $3)");
    s.conn.prepare("lit_sel", "SELECT v, n FROM " + t.name + " WHERE k = $1");

    const std::string quoted = "it's \"quoted\" \\ back\\slash";
    const std::string injection = "'); DROP TABLE " + t.name + ";--";
    const std::string unicode = "gr\xC3\xBC\xC3\x9F dich \xE2\x9C\x93";
    batch ins;
    ins.execute("lit_ins", {"null", std::nullopt, std::nullopt});
    ins.execute("lit_ins", {"quoted", quoted, -42});
    ins.execute("lit_ins", {"injection", injection, std::uint64_t{9'000'000'000}});
    ins.execute("lit_ins", {"unicode", std::optional<std::string_view>(unicode), true});
    ins.execute("lit_ins", {"empty", "", 0});
    auto r = s.exec(ins);
    REQUIRE_MESSAGE(r.ok(), r.steps[r.first_error() < r.steps.size() ? r.first_error() : 0].message);
    for (const auto& st : r.steps) CHECK(st.affected == 1);

    batch sel;
    for (const char* k : {"null", "quoted", "injection", "unicode", "empty", "absent"}) sel.execute("lit_sel", {k});
    r = s.exec(sel);
    REQUIRE(r.ok());
    CHECK(r.steps[0].rows.is_null(0, 0));
    CHECK(r.steps[0].rows.get_int(0, 1) == std::nullopt);
    CHECK(r.steps[1].rows.get(0, 0) == quoted);
    CHECK(r.steps[1].rows.get_int(0, 1) == -42);
    CHECK(r.steps[2].rows.get(0, 0) == injection);
    CHECK(r.steps[2].rows.get_int(0, 1) == 9'000'000'000);
    CHECK(r.steps[3].rows.get(0, 0) == unicode);
    CHECK(r.steps[3].rows.get_int(0, 1) == 1);
    CHECK_FALSE(r.steps[4].rows.is_null(0, 0));
    CHECK(r.steps[4].rows.get(0, 0).empty());
    CHECK(r.steps[5].rows.size() == 0);
    CHECK(s.count(t.name) == 5);  // the table is still there
}

TEST_CASE("bytea round-trips all 256 byte values, in text and binary results") {
    PGTEST_REQUIRE_DSN(d);
    asio::io_context io;
    session s(io, d);
    table t(s, "pgt_bytea");
    const std::string bytes = all_bytes();
    s.conn.prepare("bytea_ins", "INSERT INTO " + t.name + " (k, b) VALUES ($1, $2)", {oids::text, oids::bytea});
    s.conn.prepare("bytea_sel", "SELECT b FROM " + t.name + " WHERE k = $1");

    batch b;
    b.execute("bytea_ins", {"all", param::binary(bytes)});
    b.execute("bytea_ins", {"empty", param::binary(std::string_view())});
    b.query("INSERT INTO " + t.name + " (k, b) VALUES ($1, $2)", {"adhoc", param::binary(bytes)});  // declared bytea
    b.execute("bytea_sel", {"all"}, format::text);
    b.execute("bytea_sel", {"all"}, format::binary);
    b.execute("bytea_sel", {"adhoc"}, format::binary);
    b.execute("bytea_sel", {"empty"}, format::binary);
    b.query("SELECT length($1), $1", {param::binary(bytes)}, format::binary);
    auto r = s.exec(b);
    REQUIRE(r.ok());
    CHECK(r.steps[3].rows.get(0, 0).substr(0, 4) == "\\x00");  // text format: hex
    CHECK(r.steps[3].rows.get_bytes(0, 0) == bytes);
    CHECK(r.steps[4].rows.get(0, 0) == bytes);  // binary format: raw
    CHECK(r.steps[4].rows.get_bytes(0, 0) == bytes);
    CHECK(r.steps[5].rows.get_bytes(0, 0) == bytes);
    CHECK_FALSE(r.steps[6].rows.is_null(0, 0));
    CHECK(r.steps[6].rows.get_bytes(0, 0).empty());
    CHECK(r.steps[7].rows.get_int(0, 0) == 256);  // binary int4
    CHECK(r.steps[7].rows.get_bytes(0, 1) == bytes);
}

TEST_CASE("a text parameter with a NUL inside is refused, never truncated") {
    PGTEST_REQUIRE_DSN(d);
    asio::io_context io;
    session s(io, d);
    batch b;
    b.query("SELECT $1::text", {std::string_view("ab\0cd", 5)});
    auto r = s.exec(b);
    REQUIRE(r.steps.size() == 1);
    CHECK(r.steps[0].ec);
    CHECK_FALSE(is_connection_error(r.steps[0].ec));
    CHECK(s.conn.usable());
}

TEST_CASE("10,000 inserts in one pipeline and one transaction") {
    PGTEST_REQUIRE_DSN(d);
    asio::io_context io;
    session s(io, d);
    table t(s, "pgt_bulk");
    s.conn.prepare("bulk_ins", "INSERT INTO " + t.name + " (k, v, n) VALUES ($1, $2, $3)");
    batch b;
    b.begin();
    for (int i = 0; i < 10'000; ++i) b.execute("bulk_ins", {fmt::format("key-{}", i), "payload", i});
    b.commit();
    const auto t0 = clock::now();
    auto r = s.exec(b);
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(clock::now() - t0).count();
    MESSAGE("10,000 pipelined inserts in one transaction: ", ms, " ms");
    REQUIRE(r.steps.size() == 10'002);
    CHECK(r.ok());
    CHECK(s.count(t.name) == 10'000);
    CHECK_FALSE(s.conn.in_transaction());
}

TEST_CASE("a failing step is named with its SQLSTATE; the rest of its transaction is aborted") {
    PGTEST_REQUIRE_DSN(d);
    asio::io_context io;
    session s(io, d);
    table t(s, "pgt_fail");
    s.conn.prepare("fail_ins", "INSERT INTO " + t.name + " (k) VALUES ($1)");

    SUBCASE("unique violation inside BEGIN/COMMIT") {
        batch b;
        b.begin();
        b.execute("fail_ins", {"a"});
        b.execute("fail_ins", {"b"});
        b.execute("fail_ins", {"a"});  // step 3: duplicate
        b.execute("fail_ins", {"c"});
        b.commit();
        auto r = s.exec(b);
        REQUIRE(r.steps.size() == 6);
        CHECK(r.first_error() == 3);
        CHECK(r.error() == sqlstate::unique_violation);
        CHECK(sqlstate_of(r.steps[3].ec) == "23505");
        CHECK(r.steps[3].message.find("duplicate key") != std::string::npos);
        for (int i : {0, 1, 2}) CHECK(r.steps[static_cast<std::size_t>(i)].ok());
        CHECK(r.steps[4].ec == errc::pipeline_aborted);
        CHECK(r.steps[5].ec == errc::pipeline_aborted);
        CHECK(s.count(t.name) == 0);  // all rolled back
        // The failed transaction was rolled back: the session is clean for its next user.
        CHECK_FALSE(s.conn.in_transaction());
        CHECK(s.conn.usable());
    }
    SUBCASE("value too long, with a sync point isolating each row") {
        batch b;
        b.execute("fail_ins", {"ok1"}).sync();
        b.execute("fail_ins", {std::string(101, 'x')});  // step 1: varchar(100)
        b.execute("fail_ins", {"ok2"}).sync();             // same segment: aborted
        b.execute("fail_ins", {"ok3"});
        auto r = s.exec(b);
        REQUIRE(r.steps.size() == 4);
        CHECK(r.first_error() == 1);
        CHECK(r.steps[1].ec == sqlstate::string_data_right_truncation);
        CHECK(r.steps[2].ec == errc::pipeline_aborted);
        CHECK(r.steps[0].ok());
        CHECK(r.steps[3].ok());
        CHECK(s.count(t.name) == 2);
    }
    // Either way the next batch works.
    batch ok;
    ok.execute("fail_ins", {"after"});
    CHECK(s.exec(ok).ok());
}

TEST_CASE("chained batches: each runs only if the one before it succeeded; the session ends clean") {
    PGTEST_REQUIRE_DSN(d);
    asio::io_context io;
    session s(io, d);
    table t(s, "pgt_chain");
    s.conn.prepare("chain_ins", "INSERT INTO " + t.name + " (k) VALUES ($1)");
    auto tx = [](std::initializer_list<const char*> keys) {
        batch b;
        b.begin();
        for (const char* k : keys) b.execute("chain_ins", {k});
        b.commit();
        return b;
    };
    const auto timeout = connection::no_timeout;

    SUBCASE("all succeed: results in order, every batch committed") {
        const batch a = tx({"a1", "a2"}), b = tx({"b1"});
        REQUIRE(s.conn.send(a, true));
        REQUIRE(s.conn.send(b, true));
        CHECK(s.conn.in_flight() == 2);
        CHECK(run(io, s.conn.receive(timeout)).ok());
        CHECK(run(io, s.conn.receive(timeout)).ok());
        CHECK(s.conn.in_flight() == 0);
        CHECK(s.count(t.name) == 3);
    }
    SUBCASE("a failing step: the batches behind are skipped, even one ending with a Sync") {
        const batch a = tx({"a1", "dup", "dup"}), b = tx({"b1"});
        batch c;
        c.execute("chain_ins", {"c1"});
        REQUIRE(s.conn.send(a, true));
        REQUIRE(s.conn.send(b, true));
        REQUIRE(s.conn.send(c, false));
        auto ra = run(io, s.conn.receive(timeout));
        CHECK(ra.error() == sqlstate::unique_violation);
        auto rb = run(io, s.conn.receive(timeout));
        for (const auto& st : rb.steps) CHECK(st.ec == errc::pipeline_aborted);
        auto rc = run(io, s.conn.receive(timeout));
        CHECK(rc.steps[0].ec == errc::pipeline_aborted);
        CHECK(s.count(t.name) == 0);
    }
    SUBCASE("a failure at COMMIT (deferred constraint) also skips what is chained behind") {
        s.sql("ALTER TABLE " + t.name + " ADD CONSTRAINT " + t.name + "_n UNIQUE (n) DEFERRABLE INITIALLY DEFERRED");
        s.conn.prepare("chain_n", "INSERT INTO " + t.name + " (k, n) VALUES ($1, $2)");
        batch a;
        a.begin().execute("chain_n", {"a1", 1}).execute("chain_n", {"a2", 1}).commit();
        const batch b = tx({"b1"});
        REQUIRE(s.conn.send(a, true));
        REQUIRE(s.conn.send(b, true));
        auto ra = run(io, s.conn.receive(timeout));
        CHECK(ra.error() == sqlstate::unique_violation);
        auto rb = run(io, s.conn.receive(timeout));
        CHECK(rb.steps[0].ec == errc::pipeline_aborted);
        CHECK(s.count(t.name) == 0);
    }
    // The pipeline was ended and nothing is left open: the session serves its next user.
    CHECK_FALSE(s.conn.in_transaction());
    CHECK(s.conn.usable());
    batch ok;
    ok.execute("chain_ins", {"after"});
    CHECK(s.exec(ok).ok());
    CHECK(s.count(t.name) >= 1);
}

TEST_CASE("batches sent and then closed: receive() reports them lost, and the connection can reconnect") {
    PGTEST_REQUIRE_DSN(d);
    asio::io_context io;
    session s(io, d);
    batch a, b;
    a.query("SELECT 1");
    b.query("SELECT 2");
    REQUIRE(s.conn.send(a, true));
    REQUIRE(s.conn.send(b, true));
    s.conn.close();  // nothing pending: closes at once
    for (int i = 0; i < 2; ++i) {
        auto r = run(io, s.conn.receive(connection::no_timeout));
        REQUIRE(r.steps.size() == 1);
        CHECK(is_connection_error(r.steps[0].ec));
    }
    CHECK(s.conn.in_flight() == 0);
    CHECK_FALSE(s.conn.send(a, true));  // not connected
    REQUIRE_FALSE(run(io, s.conn.connect(info(d), 5s)));
    CHECK(s.exec(a).ok());
}

TEST_CASE("a statement the server refuses to prepare fails its steps with the reason") {
    PGTEST_REQUIRE_DSN(d);
    asio::io_context io;
    session s(io, d);
    s.conn.prepare("bad_stmt", "INSERT INTO no_such_table_here (x) VALUES ($1)");
    s.conn.prepare("good_stmt", "SELECT $1::int + 1");
    batch b;
    b.execute("bad_stmt", {1}).sync();
    b.execute("good_stmt", {1});
    auto r = s.exec(b);
    REQUIRE(r.steps.size() == 2);
    CHECK(r.steps[0].ec == sqlstate::undefined_table);
    CHECK(r.steps[0].message.find("bad_stmt") != std::string::npos);
    CHECK(r.steps[1].rows.get_int(0, 0) == 2);
    REQUIRE(s.conn.failed_statements().size() == 1);
    CHECK(s.conn.failed_statements()[0].name == "bad_stmt");
    CHECK_THROWS_AS(s.conn.prepare("good_stmt", "SELECT 2"), std::invalid_argument);
    CHECK_NOTHROW(s.conn.prepare("good_stmt", "SELECT $1::int + 1"));
}

TEST_CASE("statements are prepared again after a reconnect") {
    PGTEST_REQUIRE_DSN(d);
    asio::io_context io;
    session s(io, d);
    s.conn.prepare("again", "SELECT $1::int * 2");
    batch b;
    b.execute("again", {21});
    CHECK(s.exec(b).steps[0].rows.get_int(0, 0) == 42);
    const int pid = s.conn.backend_pid();
    REQUIRE_FALSE(run(io, s.conn.connect(info(d), 5s)));
    CHECK(s.conn.backend_pid() != pid);
    auto r = s.exec(b);
    REQUIRE(r.ok());
    CHECK(r.steps[0].rows.get_int(0, 0) == 42);
}

TEST_CASE("a connection terminated mid-batch reports connection errors for every step left") {
    PGTEST_REQUIRE_DSN(d);
    asio::io_context io;
    session victim(io, d);
    session admin(io, d);
    batch b;
    b.query("SELECT 1");
    b.query("SELECT pg_sleep(10)");
    b.query("SELECT 2");
    b.query("SELECT 3");
    std::optional<batch_result> r;
    asio::co_spawn(io, victim.conn.run(b), [&](std::exception_ptr, batch_result x) { r = std::move(x); });
    run_for(io, 300ms);
    REQUIRE_FALSE(r);
    admin.sql("SELECT pg_terminate_backend($1)", {victim.conn.backend_pid()});
    REQUIRE(run_until(io, [&] { return r.has_value(); }, 5s));
    REQUIRE(r->steps.size() == 4);
    CHECK(r->steps[0].ok());  // answered before the kill
    for (std::size_t i = 1; i < 4; ++i) CHECK_MESSAGE(is_connection_error(r->steps[i].ec), r->steps[i].ec.message());
    CHECK(r->steps[1].ec == sqlstate::admin_shutdown);
    CHECK_FALSE(victim.conn.usable());
    CHECK_FALSE(victim.conn.last_error().empty());
    // A broken connection refuses work at once.
    batch more;
    more.query("SELECT 1");
    auto r2 = victim.exec(more);
    CHECK(r2.steps[0].ec == errc::not_connected);
}

TEST_CASE("check_alive notices a session the server ended while it was idle") {
    PGTEST_REQUIRE_DSN(d);
    asio::io_context io;
    session victim(io, d);
    session admin(io, d);
    CHECK(victim.conn.check_alive());
    admin.sql("SELECT pg_terminate_backend($1)", {victim.conn.backend_pid()});
    run_for(io, 200ms);
    CHECK_FALSE(victim.conn.check_alive());
    CHECK_FALSE(victim.conn.usable());
}

TEST_CASE("a query that outlives its timeout drops the session") {
    PGTEST_REQUIRE_DSN(d);
    asio::io_context io;
    session s(io, d);
    batch b;
    b.query("SELECT pg_sleep(3)");
    const auto t0 = clock::now();
    auto r = run(io, s.conn.run(b, 200ms));
    CHECK(clock::now() - t0 < 2s);
    CHECK(r.steps[0].ec == errc::timeout);
    CHECK_FALSE(s.conn.usable());
}

TEST_CASE("close() with a batch pending completes it with errc::closed, and the connection can reconnect") {
    PGTEST_REQUIRE_DSN(d);
    asio::io_context io;
    session s(io, d);
    batch b;
    b.query("SELECT pg_sleep(2)");
    b.query("SELECT 1");
    std::optional<batch_result> r;
    asio::co_spawn(io, s.conn.run(b), [&](std::exception_ptr, batch_result x) { r = std::move(x); });
    run_for(io, 100ms);
    const auto t0 = clock::now();
    s.conn.close();
    CHECK(s.conn.busy());  // still unwinding: the descriptor is released only after the waits completed
    REQUIRE(run_until(io, [&] { return r.has_value(); }, 2s));
    CHECK(clock::now() - t0 < 1s);
    CHECK_FALSE(s.conn.busy());
    CHECK(r->steps[0].ec == errc::closed);
    CHECK(r->steps[1].ec == errc::closed);
    CHECK_FALSE(s.conn.usable());
    CHECK(s.conn.backend_pid() == 0);
    s.conn.close();  // idempotent

    REQUIRE_FALSE(run(io, s.conn.connect(info(d), 5s)));
    CHECK(s.sql("SELECT 1").rows.get_int(0, 0) == 1);
}

TEST_CASE("connecting to a closed port fails with a clear error") {
    asio::io_context io;
    connection c(io.get_executor());
    conninfo ci;
    ci.set("host", "127.0.0.1").set("port", std::to_string(closed_port())).set("user", "root").set("dbname", "mqtt");
    const auto t0 = clock::now();
    auto ec = run(io, c.connect(ci, 3s));
    CHECK(clock::now() - t0 < 2s);
    CHECK(ec == errc::connect_failed);
    CHECK(is_connection_error(ec));
    CHECK(c.last_error().find("127.0.0.1") != std::string::npos);
    CHECK(c.last_error().find("refused") != std::string::npos);
    CHECK_FALSE(c.usable());
}

TEST_CASE("a server that accepts but never answers: connect times out; close() ends a pending connect") {
    asio::io_context io;
    // The kernel completes the TCP handshake for the listening socket; nobody answers.
    asio::ip::tcp::acceptor silent(io, {asio::ip::make_address("127.0.0.1"), 0});
    conninfo ci;
    ci.set("host", "localhost")  // resolved asynchronously
        .set("port", std::to_string(silent.local_endpoint().port()))
        .set("user", "root")
        .set("dbname", "mqtt")
        .set("sslmode", "disable");
    connection c(io.get_executor());

    SUBCASE("timeout") {
        const auto t0 = clock::now();
        auto ec = run(io, c.connect(ci, 300ms));
        const auto took = clock::now() - t0;
        CHECK(ec == errc::timeout);
        CHECK(took >= 250ms);
        CHECK(took < 2s);
        CHECK(c.last_error().find("timed out") != std::string::npos);
    }
    SUBCASE("close") {
        std::optional<std::error_code> ec;
        asio::co_spawn(io, c.connect(ci, 10s), [&](std::exception_ptr, std::error_code e) { ec = e; });
        run_for(io, 200ms);
        REQUIRE_FALSE(ec);
        c.close();
        REQUIRE(run_until(io, [&] { return ec.has_value(); }, 2s));
        CHECK(*ec == errc::closed);
    }
    CHECK_FALSE(c.usable());
}
