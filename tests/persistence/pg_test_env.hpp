#pragma once
// Shared by the persistence tests: where the test server is, and running coroutines to
// completion on an io_context.
//
// Tests that need PostgreSQL read MQTTD_PG_DSN (a libpq conninfo string). Without it
// they are skipped with a message, except under CI=true, where they fail.
#include <doctest/doctest.h>

#include <ostream>  // doctest prints std::error_code with it
#include <fmt/format.h>
#include <unistd.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <exception>
#include <optional>
#include <string>
#include <thread>
#include <utility>

#include "persistence/pg_connection.hpp"
#include "persistence/pg_pool.hpp"

namespace pgtest {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using clock = std::chrono::steady_clock;

inline std::optional<std::string> dsn() {
    const char* d = std::getenv("MQTTD_PG_DSN");
    if (d && *d) return std::string(d);
    const char* ci = std::getenv("CI");
    if (ci && std::string_view(ci) == "true") FAIL("MQTTD_PG_DSN is not set, and CI=true: PostgreSQL tests must run");
    MESSAGE("skipped: MQTTD_PG_DSN is not set (scripts/test.sh sets it)");
    return std::nullopt;
}

// Makes `var` the DSN, or returns from the test case when there is none.
#define PGTEST_REQUIRE_DSN(var)            \
    auto var##_opt = ::pgtest::dsn();      \
    if (!var##_opt) return;                \
    const std::string& var = *var##_opt

inline mqttd::pg::conninfo info(const std::string& dsn) {
    std::string err;
    auto ci = mqttd::pg::conninfo::parse(dsn, err);
    REQUIRE_MESSAGE(ci, err);
    return *ci;
}

// pool_params pointing at the server of `dsn`, with quick timings for tests.
inline mqttd::pg::pool_params params(const std::string& dsn) {
    auto ci = info(dsn);
    mqttd::pg::pool_params p;
    if (!ci.get("host").empty()) p.host = ci.get("host");
    if (!ci.get("port").empty()) p.port = static_cast<std::uint16_t>(std::stoi(std::string(ci.get("port"))));
    p.user = ci.get("user");
    p.password = ci.get("password");
    p.database = ci.get("dbname");
    p.pool_size = 2;
    p.connect_timeout = 3s;
    p.acquire_timeout = 3s;
    p.reconnect_min = 50ms;
    p.reconnect_max = 500ms;
    p.log = [](mqttd::pg::log_level, std::string_view) {};
    return p;
}

// A name unique to this process and call, for tables and application names.
inline std::string unique(std::string_view prefix) {
    static std::atomic<int> n{0};
    return fmt::format("{}_{}_{}", prefix, ::getpid(), n++);
}

// One turn of `io`, waiting up to `d` for something to do. An io_context that ran out
// of work stops; restart it, since the next test step brings more.
inline void turn(asio::io_context& io, clock::duration d) {
    if (io.stopped()) io.restart();
    io.run_one_for(d);
}

// Runs one ready handler (e.g. the start of a coroutine just spawned).
inline void step(asio::io_context& io) {
    if (io.stopped()) io.restart();
    io.run_one();
}

// Runs `a` on `io` until it completes (failing the test after `limit`), and returns
// its value. Other work on `io` (pool coroutines) keeps running meanwhile.
template <class T>
T run(asio::io_context& io, asio::awaitable<T> a, clock::duration limit = 30s) {
    std::optional<T> out;
    std::exception_ptr err;
    asio::co_spawn(io, std::move(a), [&](std::exception_ptr e, T v) {
        err = e;
        out.emplace(std::move(v));
    });
    const auto deadline = clock::now() + limit;
    while (!out && clock::now() < deadline) turn(io, 50ms);
    if (err) std::rethrow_exception(err);
    REQUIRE_MESSAGE(out.has_value(), "operation did not complete in time");
    return std::move(*out);
}

// Runs `io` for `d`, whatever is pending.
inline void run_for(asio::io_context& io, clock::duration d) {
    const auto deadline = clock::now() + d;
    while (clock::now() < deadline) {
        turn(io, deadline - clock::now());
        // Nothing left to run: just let the time pass.
        if (io.stopped()) std::this_thread::sleep_until(deadline);
    }
}

// Runs `io` until `pred()` holds; false if `limit` passed first.
template <class Pred>
bool run_until(asio::io_context& io, Pred pred, clock::duration limit = 10s) {
    const auto deadline = clock::now() + limit;
    while (!pred()) {
        if (clock::now() >= deadline) return false;
        turn(io, 20ms);
    }
    return true;
}

// A TCP port on 127.0.0.1 that nothing listens on (bound, then released).
inline unsigned short closed_port() {
    asio::io_context io;
    asio::ip::tcp::acceptor a(io, {asio::ip::make_address("127.0.0.1"), 0});
    return a.local_endpoint().port();
}

// A connected connection for a test, with a helper to run SQL on it.
struct session {
    explicit session(asio::io_context& io, const std::string& dsn) : io(io), conn(io.get_executor()) {
        auto ec = run(io, conn.connect(info(dsn), 5s));
        REQUIRE_MESSAGE(!ec, conn.last_error());
    }
    ~session() { conn.close(); }

    mqttd::pg::batch_result exec(const mqttd::pg::batch& b) { return run(io, conn.run(b)); }
    // One statement that must succeed.
    mqttd::pg::step_result sql(std::string_view text, std::initializer_list<mqttd::pg::param> ps = {}) {
        mqttd::pg::batch b;
        b.query(text, ps);
        auto r = exec(b);
        REQUIRE(r.steps.size() == 1);
        REQUIRE_MESSAGE(r.ok(), text, ": ", r.steps[0].message);
        return std::move(r.steps[0]);
    }
    std::int64_t count(const std::string& table) {
        auto r = sql("SELECT count(*) FROM " + table);
        return *r.rows.get_int(0, 0);
    }

    asio::io_context& io;
    mqttd::pg::connection conn;
};

}  // namespace pgtest
