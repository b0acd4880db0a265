#include "persistence/pg_pool.hpp"

#include <fmt/format.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>
#include <cstdio>
#include <exception>
#include <list>
#include <random>
#include <set>

namespace mqttd::pg {

namespace asio = boost::asio;
using clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

conninfo to_conninfo(const pool_params& p) {
    conninfo ci;
    ci.set("host", p.host)
        .set("port", std::to_string(p.port))
        .set("user", p.user)
        .set("password", p.password)
        .set("dbname", p.database)
        .set("application_name", p.application_name)
        .set("sslmode", !p.ssl ? "disable" : p.ssl_verify ? "verify-full" : "require");
    if (p.ssl) ci.set("sslrootcert", p.ssl_rootcert).set("sslcert", p.ssl_cert).set("sslkey", p.ssl_key);
    return ci;
}

namespace detail {

enum class node_state { connecting, idle, busy, broken };

struct pool_node {
    explicit pool_node(const asio::any_io_executor& ex) : conn(ex), wake(ex) {}

    connection conn;
    node_state state = node_state::connecting;
    // The node's coroutine sleeps on this timer; cancel() wakes it to look at `state`.
    asio::steady_timer wake;
    unsigned failures = 0;  // consecutive failed attempts, for the backoff
    bool ever_connected = false;
    clock::time_point idle_since;
};

struct waiter {
    explicit waiter(const asio::any_io_executor& ex) : timer(ex) {}
    asio::steady_timer timer;
    std::shared_ptr<pool_node> node;  // set when a connection is handed over
    bool queued = true;               // still in pool_impl::waiters
};

struct pool_impl : std::enable_shared_from_this<pool_impl> {
    pool_impl(asio::any_io_executor e, pool_params p)
        : ex(std::move(e)), params(std::move(p)), info(to_conninfo(params)), where(info.describe()),
          rng(std::random_device{}()) {}

    asio::any_io_executor ex;
    pool_params params;
    conninfo info;
    std::string where;
    std::vector<std::shared_ptr<pool_node>> nodes;
    // Acquirers waiting, oldest first; a waiter removes itself when it wakes.
    std::list<waiter*> waiters;
    bool closed = false;
    pool_stats counters;  // only the cumulative fields are kept here
    std::string last_error;
    std::set<std::string> reported_statements;
    std::minstd_rand rng;
    // The outage being reported: since when, and when it was last logged.
    bool outage = false;
    clock::time_point outage_logged;
    std::uint64_t outage_failures = 0;

    void log(log_level l, const std::string& text) const {
        if (params.log) {
            params.log(l, text);
            return;
        }
        if (l == log_level::debug) return;  // every retry: only for a logger that asks for it
        static constexpr const char* names[] = {"debug", "info", "warning", "error"};
        std::fprintf(stderr, "[%s] pgsql: %s\n", names[static_cast<int>(l)], text.c_str());
    }

    // reconnect_min after a working connection broke or after the first failed attempt,
    // then doubling with each further failure.
    clock::duration backoff(unsigned failures) {
        auto pause = params.reconnect_min;
        for (unsigned i = 1; i < failures && pause < params.reconnect_max; ++i) pause *= 2;
        pause = std::clamp(pause, milliseconds(1), std::max(params.reconnect_max, milliseconds(1)));
        // Jitter keeps the connections of many pools from knocking all at once.
        std::uniform_int_distribution<milliseconds::rep> d(pause.count() / 2, pause.count());
        return milliseconds(d(rng));
    }

    // Gives an idle node to the oldest waiter, if any; true when it did.
    bool hand_over(const std::shared_ptr<pool_node>& n) {
        if (waiters.empty()) return false;
        waiter* w = waiters.front();
        waiters.pop_front();
        w->queued = false;
        n->state = node_state::busy;
        w->node = n;
        w->timer.cancel();
        return true;
    }

    void become_idle(const std::shared_ptr<pool_node>& n) {
        n->state = node_state::idle;
        n->idle_since = clock::now();
        hand_over(n);
    }

    std::shared_ptr<pool_node> take_idle() {
        for (auto& n : nodes) {
            if (n->state != node_state::idle) continue;
            // Free of charge: notices a session the server has already ended.
            if (!n->conn.check_alive()) {
                lost(*n, "connection");
                continue;
            }
            n->state = node_state::busy;
            return n;
        }
        return nullptr;
    }

    void lost(pool_node& n, const char* what) {
        last_error = n.conn.last_error();
        log(log_level::warning, fmt::format("lost {} to {}: {}; reconnecting", what, where, last_error));
        n.state = node_state::broken;
        n.wake.cancel();
    }

    void release(const std::shared_ptr<pool_node>& n) {
        if (closed) {
            n->conn.close();
        } else if (!n->conn.usable()) {
            last_error = n->conn.last_error();
            log(log_level::warning, fmt::format("lost connection to {}: {}; reconnecting", where, last_error));
            n->state = node_state::broken;
        } else if (n->conn.in_transaction() || n->conn.in_flight() > 0) {
            // A transaction left open would leak into the next user: start afresh.
            log(log_level::warning, "a connection was given back inside a transaction; reconnecting it");
            n->state = node_state::broken;
        } else {
            become_idle(n);
        }
        n->wake.cancel();
    }

    void connect_failed(pool_node& n) {
        ++counters.connect_failures;
        ++n.failures;
        last_error = n.conn.last_error();
        ++outage_failures;
        auto now = clock::now();
        if (!outage) {
            outage = true;
            outage_failures = 1;
            outage_logged = now;
            log(log_level::error, fmt::format("{}; retrying (pause {} ms, growing to {} ms)", last_error,
                                              params.reconnect_min.count(), params.reconnect_max.count()));
        } else if (now - outage_logged >= std::chrono::seconds(30)) {
            outage_logged = now;
            log(log_level::error, fmt::format("still failing after {} attempts: {}", outage_failures, last_error));
        } else {
            log(log_level::debug, last_error);
        }
    }

    void connected(const std::shared_ptr<pool_node>& n) {
        if (n->ever_connected) ++counters.reconnects;
        n->ever_connected = true;
        n->failures = 0;
        if (outage) {
            outage = false;
            log(log_level::info, fmt::format("connected to {} again after {} failed attempts", where, outage_failures));
        }
        for (const auto& s : n->conn.failed_statements())
            if (reported_statements.insert(s.name).second)
                log(log_level::error, fmt::format("cannot prepare statement {}: {}: {}", s.name, s.ec.message(), s.message));
        become_idle(n);
    }

    asio::awaitable<void> sleep(pool_node& n, clock::time_point until) {
        n.wake.expires_at(until);
        co_await n.wake.async_wait(asio::as_tuple(asio::use_awaitable));
    }

    asio::awaitable<void> health_check(std::shared_ptr<pool_node> n) {
        n->state = node_state::busy;
        ++counters.health_checks;
        batch b;
        b.query("SELECT 1");
        auto r = co_await n->conn.run(b, params.connect_timeout);
        if (closed) co_return;
        if (r.ok() && n->conn.usable()) {
            become_idle(n);
            co_return;
        }
        ++counters.health_check_failures;
        if (n->conn.last_error().empty()) last_error = r.steps.front().message;
        lost(*n, "connection (health check)");
    }

    // The life of one connection of the pool.
    static asio::awaitable<void> run_node(std::shared_ptr<pool_impl> self, std::shared_ptr<pool_node> n) {
        while (!self->closed) {
            switch (n->state) {
            case node_state::connecting: {
                auto ec = co_await n->conn.connect(self->info, self->params.connect_timeout);
                if (self->closed) break;
                if (ec) {
                    self->connect_failed(*n);
                    n->state = node_state::broken;
                } else {
                    self->connected(n);
                }
                break;
            }
            case node_state::idle: {
                const auto every = self->params.health_check_interval;
                const auto due = every.count() > 0 ? n->idle_since + every : clock::time_point::max();
                if (clock::now() < due) {
                    co_await self->sleep(*n, due);
                } else {
                    co_await self->health_check(n);
                }
                break;
            }
            case node_state::busy: co_await self->sleep(*n, clock::time_point::max()); break;
            case node_state::broken:
                n->conn.close();
                co_await self->sleep(*n, clock::now() + self->backoff(n->failures));
                if (!self->closed && n->state == node_state::broken) n->state = node_state::connecting;
                break;
            }
        }
        n->conn.close();
    }
};

}  // namespace detail

using detail::node_state;
using detail::pool_impl;
using detail::pool_node;

pooled_connection& pooled_connection::operator=(pooled_connection&& other) noexcept {
    if (this != &other) {
        reset();
        pool_ = std::move(other.pool_);
        node_ = std::move(other.node_);
    }
    return *this;
}

pooled_connection::~pooled_connection() { reset(); }

connection& pooled_connection::operator*() const noexcept { return node_->conn; }
connection* pooled_connection::operator->() const noexcept { return &node_->conn; }

void pooled_connection::reset() noexcept {
    if (!node_) return;
    pool_->release(node_);
    node_.reset();
    pool_.reset();
}

pool::pool(executor_type ex, pool_params params) : impl_(std::make_shared<pool_impl>(ex, std::move(params))) {
    const std::size_t size = std::max<std::size_t>(impl_->params.pool_size, 1);
    for (std::size_t i = 0; i < size; ++i) {
        auto n = std::make_shared<pool_node>(ex);
        impl_->nodes.push_back(n);
        asio::co_spawn(ex, pool_impl::run_node(impl_, n), [](std::exception_ptr e) {
            if (e) std::rethrow_exception(e);  // only programming errors throw
        });
    }
}

pool::~pool() { close(); }

pool::executor_type pool::get_executor() const noexcept { return impl_->ex; }

void pool::prepare(std::string name, std::string sql, std::vector<oid> param_types) {
    for (auto& n : impl_->nodes) n->conn.prepare(name, sql, param_types);
}

asio::awaitable<std::tuple<std::error_code, pooled_connection>> pool::acquire() {
    auto self = impl_;  // keeps the pool's state alive while this waits
    if (self->closed) co_return std::tuple{std::error_code(errc::closed), pooled_connection()};
    if (auto n = self->take_idle()) co_return std::tuple{std::error_code(), pooled_connection(self, std::move(n))};
    if (self->waiters.size() >= self->params.max_waiters)
        co_return std::tuple{std::error_code(errc::too_many_waiters), pooled_connection()};

    detail::waiter w(self->ex);
    w.timer.expires_after(self->params.acquire_timeout);
    auto pos = self->waiters.insert(self->waiters.end(), &w);
    // Removes the waiter from the queue however this coroutine ends, even when its frame
    // is destroyed without resuming (io_context destroyed at shutdown).
    struct unlink {
        pool_impl& p;
        std::list<detail::waiter*>::iterator pos;
        detail::waiter& w;
        ~unlink() {
            if (w.queued) p.waiters.erase(pos);
        }
    } guard{*self, pos, w};
    co_await w.timer.async_wait(asio::as_tuple(asio::use_awaitable));
    if (w.node) co_return std::tuple{std::error_code(), pooled_connection(self, std::move(w.node))};
    if (self->closed) co_return std::tuple{std::error_code(errc::closed), pooled_connection()};
    bool any = std::any_of(self->nodes.begin(), self->nodes.end(), [](const auto& n) {
        return n->state == node_state::idle || n->state == node_state::busy;
    });
    co_return std::tuple{std::error_code(any ? errc::timeout : errc::not_connected), pooled_connection()};
}

asio::awaitable<batch_result> pool::run(const batch& b) {
    auto self = impl_;
    auto [ec, conn] = co_await acquire();
    if (ec) {
        batch_result r;
        r.steps.resize(b.size());
        for (auto& s : r.steps) {
            s.ec = ec;
            s.message = ec == errc::not_connected ? self->last_error : ec.message();
        }
        co_return r;
    }
    co_return co_await conn->run(b, run_timeout());
}

connection::clock::duration pool::run_timeout() const noexcept {
    const auto t = impl_->params.query_timeout;
    return t.count() > 0 ? connection::clock::duration(t) : connection::no_timeout;
}

void pool::close() {
    auto& p = *impl_;
    if (p.closed) return;
    p.closed = true;
    for (auto& n : p.nodes) {
        n->conn.close();
        n->wake.cancel();
    }
    for (auto* w : p.waiters) w->timer.cancel();
}

pool_stats pool::stats() const {
    pool_stats s = impl_->counters;
    s.size = impl_->nodes.size();
    for (const auto& n : impl_->nodes) {
        if (n->state == node_state::idle) ++s.idle;
        if (n->state == node_state::busy) ++s.busy;
    }
    s.connected = s.idle + s.busy;
    s.waiting = impl_->waiters.size();
    return s;
}

std::string pool::last_error() const { return impl_->last_error; }

}  // namespace mqttd::pg
