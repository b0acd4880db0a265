// The connection pool: lending, waiting, reconnecting with backoff, health checks, an
// unreachable server, and shutdown with work pending.
#include <doctest/doctest.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/write.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <memory>
#include <functional>
#include <vector>

#include "pg_test_env.hpp"

using namespace mqttd::pg;
using namespace pgtest;

namespace {

// Terminates every session of `app` (the pool's application_name) from `admin`.
std::int64_t terminate_sessions(session& admin, const std::string& app) {
    auto r = admin.sql(
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = $1 AND pid <> "
        "pg_backend_pid()",
        {app});
    return *r.rows.get_int(0, 0);
}

struct log_capture {
    struct line {
        log_level level;
        std::string text;
        clock::time_point when;
    };
    std::vector<line> lines;
    log_function fn() {
        return [this](log_level l, std::string_view t) { lines.push_back({l, std::string(t), clock::now()}); };
    }
    std::size_t count(log_level l) const {
        std::size_t n = 0;
        for (const auto& x : lines) n += x.level == l;
        return n;
    }
};

// A TCP proxy to the server that the test can take down (every connection cut without
// a word, new ones refused) and bring back, as a server restart or a network outage.
struct proxy {
    using tcp = asio::ip::tcp;
    proxy(asio::io_context& io, unsigned short target) : io(io), target(target) {}
    ~proxy() { down(); }

    void up() {
        acceptor.emplace(io);
        acceptor->open(tcp::v4());
        acceptor->set_option(tcp::acceptor::reuse_address(true));
        acceptor->bind({asio::ip::make_address("127.0.0.1"), port});
        acceptor->listen();
        port = acceptor->local_endpoint().port();
        asio::co_spawn(io, accept_loop(), asio::detached);
    }
    void down() {
        boost::system::error_code ignored;
        if (acceptor) acceptor->close(ignored);
        for (auto& w : sockets)
            if (auto s = w.lock()) s->close(ignored);
        sockets.clear();
    }

    asio::awaitable<void> accept_loop() {
        for (;;) {
            auto [ec, s] = co_await acceptor->async_accept(asio::as_tuple(asio::use_awaitable));
            if (ec) co_return;
            auto client = std::make_shared<tcp::socket>(std::move(s));
            auto server = std::make_shared<tcp::socket>(io);
            auto [cec] = co_await server->async_connect({asio::ip::make_address("127.0.0.1"), target},
                                                         asio::as_tuple(asio::use_awaitable));
            if (cec) continue;
            sockets.push_back(client);
            sockets.push_back(server);
            asio::co_spawn(io, pump(client, server), asio::detached);
            asio::co_spawn(io, pump(server, client), asio::detached);
        }
    }
    static asio::awaitable<void> pump(std::shared_ptr<tcp::socket> from, std::shared_ptr<tcp::socket> to) {
        std::vector<char> buf(16384);
        for (;;) {
            auto [ec, n] = co_await from->async_read_some(asio::buffer(buf), asio::as_tuple(asio::use_awaitable));
            if (ec) break;
            auto [wec, m] = co_await asio::async_write(*to, asio::buffer(buf, n), asio::as_tuple(asio::use_awaitable));
            if (wec) break;
        }
        boost::system::error_code ignored;
        to->close(ignored);
        from->close(ignored);
    }

    asio::io_context& io;
    unsigned short target;
    unsigned short port = 0;
    std::optional<tcp::acceptor> acceptor;
    std::vector<std::weak_ptr<tcp::socket>> sockets;
};

}  // namespace

TEST_CASE("the pool rides out an outage: cut connections, refused reconnects, then recovery") {
    PGTEST_REQUIRE_DSN(d);
    asio::io_context io;
    proxy px(io, static_cast<unsigned short>(std::stoi(std::string(info(d).get("port")))));
    px.up();
    auto p = params(d);
    p.host = "127.0.0.1";
    p.port = px.port;
    p.pool_size = 2;
    p.acquire_timeout = 300ms;
    p.reconnect_min = 50ms;
    p.reconnect_max = 200ms;
    log_capture logs;
    p.log = logs.fn();
    pool pl(io.get_executor(), p);
    pl.prepare("outage_echo", "SELECT $1::text");
    REQUIRE(run_until(io, [&] { return pl.stats().connected == 2; }));
    batch b;
    b.execute("outage_echo", {"before"});
    REQUIRE(run(io, pl.run(b)).ok());

    px.down();
    run_for(io, 50ms);
    auto during = run(io, pl.run(b));
    REQUIRE_FALSE(during.ok());
    CHECK_MESSAGE(is_connection_error(during.error()), during.error().message());
    run_for(io, 500ms);
    CHECK(pl.stats().connected == 0);
    CHECK(pl.stats().connect_failures >= 2);
    CHECK(pl.last_error().find("refused") != std::string::npos);

    px.up();
    REQUIRE(run_until(io, [&] { return pl.stats().connected == 2; }, 5s));
    batch after;
    after.execute("outage_echo", {"after"});
    auto r = run(io, pl.run(after));
    REQUIRE_MESSAGE(r.ok(), r.steps[0].message);
    CHECK(r.steps[0].rows.get(0, 0) == "after");  // prepared again on the new sessions
    CHECK(pl.stats().reconnects == 2);
    CHECK(logs.count(log_level::error) == 1);  // the outage, once
    bool recovered = false;
    for (const auto& l : logs.lines) recovered |= l.level == log_level::info && l.text.find("again") != std::string::npos;
    CHECK(recovered);
    px.down();
}

TEST_CASE("the pool opens pool_size connections and serves concurrent batches") {
    PGTEST_REQUIRE_DSN(d);
    asio::io_context io;
    auto p = params(d);
    p.pool_size = 3;
    pool pl(io.get_executor(), p);
    REQUIRE(run_until(io, [&] { return pl.stats().connected == 3; }));
    CHECK(pl.stats().idle == 3);
    pl.prepare("pool_echo", "SELECT $1::int");

    int done = 0, ok = 0;
    std::size_t peak_busy = 0;
    for (int i = 0; i < 20; ++i) {
        asio::co_spawn(io, [&, i]() -> asio::awaitable<void> {
            batch b;
            b.execute("pool_echo", {i});
            b.query("SELECT pg_sleep(0.02)");
            auto r = co_await pl.run(b);
            peak_busy = std::max(peak_busy, pl.stats().busy);
            ok += r.ok() && r.steps[0].rows.get_int(0, 0) == i;
            ++done;
        }, asio::detached);
    }
    REQUIRE(run_until(io, [&] { return done == 20; }));
    CHECK(ok == 20);
    CHECK(peak_busy == 3);
    CHECK(pl.stats().idle == 3);
    CHECK(pl.stats().reconnects == 0);
}

TEST_CASE("acquire waits for a connection, bounded by its timeout and by max_waiters") {
    PGTEST_REQUIRE_DSN(d);
    asio::io_context io;
    auto p = params(d);
    p.pool_size = 1;
    p.acquire_timeout = 200ms;
    p.max_waiters = 1;
    pool pl(io.get_executor(), p);
    REQUIRE(run_until(io, [&] { return pl.stats().connected == 1; }));

    auto [ec, held] = run(io, pl.acquire());
    REQUIRE_FALSE(ec);
    REQUIRE(held);
    CHECK(pl.stats().busy == 1);

    // One waiter times out; a second, beyond max_waiters, is refused at once.
    std::optional<std::error_code> first;
    asio::co_spawn(io, pl.acquire(), [&](std::exception_ptr, std::tuple<std::error_code, pooled_connection> t) {
        first = std::get<0>(t);
    });
    step(io);
    CHECK(pl.stats().waiting == 1);
    auto [ec2, none] = run(io, pl.acquire());
    CHECK(ec2 == errc::too_many_waiters);
    const auto t0 = clock::now();
    REQUIRE(run_until(io, [&] { return first.has_value(); }));
    CHECK(*first == errc::timeout);
    CHECK(clock::now() - t0 >= 150ms);

    // A waiter is handed the connection as soon as it is given back.
    std::optional<std::error_code> second;
    pooled_connection got;
    asio::co_spawn(io, pl.acquire(), [&](std::exception_ptr, std::tuple<std::error_code, pooled_connection> t) {
        second = std::get<0>(t);
        got = std::move(std::get<1>(t));
    });
    step(io);
    held.reset();
    REQUIRE(run_until(io, [&] { return second.has_value(); }));
    CHECK_FALSE(*second);
    CHECK(got);
    got.reset();
    CHECK(pl.stats().idle == 1);
}

TEST_CASE("after pg_terminate_backend the pool reconnects, prepares again, and later batches succeed") {
    PGTEST_REQUIRE_DSN(d);
    asio::io_context io;
    session admin(io, d);
    auto p = params(d);
    p.application_name = unique("mqttd_restart");
    p.pool_size = 2;
    log_capture logs;
    p.log = logs.fn();
    pool pl(io.get_executor(), p);
    pl.prepare("restart_twice", "SELECT $1::int * 2");
    REQUIRE(run_until(io, [&] { return pl.stats().connected == 2; }));
    batch b;
    b.execute("restart_twice", {21});
    REQUIRE(run(io, pl.run(b)).ok());

    CHECK(terminate_sessions(admin, p.application_name) == 2);
    run_for(io, 100ms);

    // The first batch after the kill may meet a dead session; if it does, it says so.
    auto r = run(io, pl.run(b));
    if (!r.ok()) CHECK_MESSAGE(is_connection_error(r.error()), r.error().message());
    REQUIRE(run_until(io, [&] { return pl.stats().connected == 2 && pl.stats().reconnects >= 2; }));
    for (int i = 0; i < 4; ++i) {
        auto again = run(io, pl.run(b));
        REQUIRE_MESSAGE(again.ok(), again.steps[0].message);
        CHECK(again.steps[0].rows.get_int(0, 0) == 42);  // the statement was prepared again
    }
    CHECK(logs.count(log_level::warning) >= 1);
}

TEST_CASE("a health check finds and replaces a dead idle connection on its own") {
    PGTEST_REQUIRE_DSN(d);
    asio::io_context io;
    session admin(io, d);
    auto p = params(d);
    p.application_name = unique("mqttd_health");
    p.pool_size = 1;
    p.health_check_interval = 200ms;
    pool pl(io.get_executor(), p);
    REQUIRE(run_until(io, [&] { return pl.stats().connected == 1; }));
    REQUIRE(run_until(io, [&] { return pl.stats().health_checks >= 1; }, 3s));
    CHECK(pl.stats().health_check_failures == 0);

    REQUIRE(terminate_sessions(admin, p.application_name) == 1);
    // Nobody uses the pool; the health check must notice and reconnect.
    REQUIRE(run_until(io, [&] { return pl.stats().reconnects >= 1 && pl.stats().connected == 1; }, 5s));
    CHECK(pl.stats().health_check_failures >= 1);
    batch b;
    b.query("SELECT 1");
    CHECK(run(io, pl.run(b)).ok());
}

TEST_CASE("a connection given back inside a transaction is reconnected, not lent again") {
    PGTEST_REQUIRE_DSN(d);
    asio::io_context io;
    auto p = params(d);
    p.pool_size = 1;
    pool pl(io.get_executor(), p);
    REQUIRE(run_until(io, [&] { return pl.stats().connected == 1; }));
    int pid = 0;
    {
        auto [ec, c] = run(io, pl.acquire());
        REQUIRE_FALSE(ec);
        batch b;
        b.begin();
        REQUIRE(run(io, c->run(b)).ok());
        CHECK(c->in_transaction());
        pid = c->backend_pid();
    }
    REQUIRE(run_until(io, [&] { return pl.stats().reconnects == 1 && pl.stats().connected == 1; }));
    auto [ec, c] = run(io, pl.acquire());
    REQUIRE_FALSE(ec);
    CHECK(c->backend_pid() != pid);
    CHECK_FALSE(c->in_transaction());
}

TEST_CASE("an unreachable server: clear error, retries with growing pauses, the io_context keeps running") {
    asio::io_context io;
    pool_params p;
    p.host = "127.0.0.1";
    p.port = closed_port();
    p.user = "root";
    p.database = "mqtt";
    p.pool_size = 1;
    p.connect_timeout = 1s;
    p.acquire_timeout = 300ms;
    p.reconnect_min = 40ms;
    p.reconnect_max = 320ms;
    log_capture logs;
    p.log = logs.fn();
    pool pl(io.get_executor(), p);

    // A timer on the same io_context keeps firing while the pool retries.
    int ticks = 0;
    asio::steady_timer tick(io);
    std::function<void()> arm = [&] {
        tick.expires_after(10ms);
        tick.async_wait([&](boost::system::error_code ec) {
            if (ec) return;
            ++ticks;
            arm();
        });
    };
    arm();

    const auto t0 = clock::now();
    auto [ec, c] = run(io, pl.acquire());
    CHECK(ec == errc::not_connected);
    CHECK(clock::now() - t0 < 1s);
    CHECK(pl.last_error().find("refused") != std::string::npos);
    batch b;
    b.query("SELECT 1");
    auto r = run(io, pl.run(b));
    CHECK(r.steps[0].ec == errc::not_connected);
    CHECK(r.steps[0].message.find("refused") != std::string::npos);

    run_for(io, 1500ms);
    tick.cancel();
    const auto s = pl.stats();
    CHECK(s.connected == 0);
    CHECK(s.connect_failures >= 5);  // it keeps trying
    CHECK(ticks >= 50);              // about 2 s of 10 ms ticks (some lost to a loaded machine): never blocked
    // One clear error line for the outage, the retries only at debug level.
    REQUIRE(logs.count(log_level::error) == 1);
    for (const auto& l : logs.lines)
        if (l.level == log_level::error) CHECK(l.text.find("cannot connect to root@127.0.0.1:") != std::string::npos);

    // The pauses between attempts grow from reconnect_min to reconnect_max (with jitter
    // drawn from [pause/2, pause]).
    std::vector<clock::time_point> attempts;
    for (const auto& l : logs.lines) attempts.push_back(l.when);
    REQUIRE(attempts.size() >= 5);
    for (std::size_t i = 1; i < attempts.size(); ++i) {
        const auto pause = std::min(40ms * (1 << std::min<std::size_t>(i - 1, 8)), 320ms);
        const auto gap = attempts[i] - attempts[i - 1];
        CHECK(gap >= pause / 2 - 5ms);
        CHECK(gap <= pause + 500ms);
    }
}

TEST_CASE("closing the pool with work pending ends every operation with errc::closed") {
    PGTEST_REQUIRE_DSN(d);
    asio::io_context io;
    auto p = params(d);
    p.pool_size = 2;
    p.acquire_timeout = 10s;
    auto pl = std::make_unique<pool>(io.get_executor(), p);
    REQUIRE(run_until(io, [&] { return pl->stats().connected == 2; }));

    std::vector<std::optional<batch_result>> results(5);
    for (auto& slot : results) {
        asio::co_spawn(io, [&pl, &slot]() -> asio::awaitable<void> {
            batch b;
            b.query("SELECT pg_sleep(3)");
            slot = co_await pl->run(b);
        }, asio::detached);
    }
    run_for(io, 200ms);
    CHECK(pl->stats().busy == 2);
    CHECK(pl->stats().waiting == 3);
    const auto t0 = clock::now();
    pl.reset();  // closes
    // Every coroutine of the pool ends: run() returns because no work is left.
    io.run_for(5s);
    CHECK(io.stopped());
    CHECK(clock::now() - t0 < 1s);
    for (auto& r : results) {
        REQUIRE(r);
        CHECK(r->steps[0].ec == errc::closed);
        CHECK(is_connection_error(r->steps[0].ec));
    }
}

TEST_CASE("destroying the io_context with pool work pending is clean") {
    PGTEST_REQUIRE_DSN(d);
    auto io = std::make_unique<asio::io_context>();
    auto p = params(d);
    p.pool_size = 2;
    p.health_check_interval = 50ms;
    auto pl = std::make_unique<pool>(io->get_executor(), p);
    REQUIRE(run_until(*io, [&] { return pl->stats().connected == 2; }));
    int finished = 0;
    for (int i = 0; i < 4; ++i) {
        asio::co_spawn(*io, [&pl, &finished]() -> asio::awaitable<void> {
            batch b;
            b.query("SELECT pg_sleep(3)");
            co_await pl->run(b);
            ++finished;
        }, asio::detached);
    }
    run_for(*io, 200ms);
    // The pool goes first (as any Asio object before its io_context), then the
    // io_context destroys the suspended coroutines without resuming them.
    pl.reset();
    io.reset();
    CHECK(finished == 0);
}
