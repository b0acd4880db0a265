#pragma once
// A pool of connections to one PostgreSQL server. Each connection is a small state
// machine run by its own coroutine:
//
//   connecting --ok--> idle <--release-- busy
//       ^   \            |  \--acquire--> busy
//       |    \--fail--> broken <--lost / failed health check / released unusable
//       |                 | wait: 100 ms, doubling to 5 s, with jitter
//       +-----------------+
//
// It keeps retrying forever; an unreachable server is logged once when the outage
// begins, then every 30 s, and once more when it ends.
//
// Threading: the pool and all its connections live on one executor (an io_context run
// by one thread, or a strand). Call every member, and destroy pooled_connection handles,
// on that executor. Other threads hand work over by posting to get_executor(), e.g.
//   co_spawn(pool.get_executor(),
//            [&pool, b = std::move(b)]() -> awaitable<void> { auto r = co_await pool.run(b); ... },
//            detached);
// (co_spawn keeps the lambda, and so the batch, alive until the coroutine ends).
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <system_error>
#include <tuple>
#include <vector>

#include "persistence/pg_batch.hpp"
#include "persistence/pg_connection.hpp"
#include "persistence/pg_conninfo.hpp"
#include "persistence/pg_result.hpp"

namespace mqttd::pg {

enum class log_level { debug, info, warning, error };
using log_function = std::function<void(log_level, std::string_view)>;

struct pool_params {
    // The server: a host name, an IP address (v6 without brackets), or a Unix-socket
    // directory (starting with '/').
    std::string host = "127.0.0.1";
    std::uint16_t port = 5432;
    std::string user;
    std::string password;
    std::string database;

    // TLS, mapped onto libpq's sslmode:
    //   ssl = false                     -> sslmode=disable (certificate keys unused)
    //   ssl = true,  ssl_verify = false -> sslmode=require: encrypted, the server's
    //        certificate is not checked (libpq still checks its chain when
    //        ssl_rootcert is given, as with verify-ca)
    //   ssl = true,  ssl_verify = true  -> sslmode=verify-full: the chain must lead to
    //        ssl_rootcert and the certificate must name `host` (EMQX's verify_peer)
    // ssl_rootcert / ssl_cert / ssl_key become sslrootcert / sslcert / sslkey.
    bool ssl = false;
    bool ssl_verify = false;
    std::string ssl_rootcert;
    std::string ssl_cert;
    std::string ssl_key;

    std::string application_name = "mqttd";

    std::size_t pool_size = 8;
    std::chrono::milliseconds connect_timeout{5000};
    // How long acquire() waits for a connection before failing.
    std::chrono::milliseconds acquire_timeout{5000};
    // How long one run() may take before its connection is dropped; 0: no limit.
    std::chrono::milliseconds query_timeout{60000};
    // SELECT 1 on connections idle this long; 0: never.
    std::chrono::milliseconds health_check_interval{30000};
    // The pause before a reconnect: reconnect_min, doubling after each failed attempt up
    // to reconnect_max; the actual pause is drawn from [pause/2, pause].
    std::chrono::milliseconds reconnect_min{100};
    std::chrono::milliseconds reconnect_max{5000};
    // acquire() calls allowed to wait at once; more fail with errc::too_many_waiters.
    std::size_t max_waiters = 100000;

    // Where the pool's log lines go; empty: standard error, without debug lines. The
    // broker wires this to its own log (e.g. mqttd::log::error for log_level::error).
    log_function log;
};

// The libpq parameters for `p` (see the TLS mapping above).
conninfo to_conninfo(const pool_params& p);

struct pool_stats {
    std::size_t size = 0;       // connections the pool keeps
    std::size_t connected = 0;  // idle + busy
    std::size_t idle = 0;
    std::size_t busy = 0;       // lent out, or running a health check
    std::size_t waiting = 0;    // acquire() calls waiting for a connection
    std::uint64_t reconnects = 0;        // sessions opened again after one broke or failed
    std::uint64_t connect_failures = 0;  // failed connection attempts
    std::uint64_t health_checks = 0;
    std::uint64_t health_check_failures = 0;
};

namespace detail {
struct pool_impl;
struct pool_node;
}  // namespace detail

// A connection lent by the pool; given back when the handle is destroyed or reset().
// A connection given back unusable, or inside a transaction, is reconnected.
class pooled_connection {
public:
    pooled_connection() noexcept = default;
    pooled_connection(pooled_connection&&) noexcept = default;
    pooled_connection& operator=(pooled_connection&& other) noexcept;
    ~pooled_connection();

    explicit operator bool() const noexcept { return node_ != nullptr; }
    connection& operator*() const noexcept;
    connection* operator->() const noexcept;
    void reset() noexcept;

private:
    friend class pool;
    pooled_connection(std::shared_ptr<detail::pool_impl> p, std::shared_ptr<detail::pool_node> n) noexcept
        : pool_(std::move(p)), node_(std::move(n)) {}

    std::shared_ptr<detail::pool_impl> pool_;
    std::shared_ptr<detail::pool_node> node_;
};

class pool {
public:
    using executor_type = boost::asio::any_io_executor;

    // Starts connecting at once (as soon as the executor runs).
    pool(executor_type ex, pool_params params);
    ~pool();
    pool(const pool&) = delete;
    pool& operator=(const pool&) = delete;

    executor_type get_executor() const noexcept;

    // Registers a statement on every connection (see connection::prepare).
    void prepare(std::string name, std::string sql, std::vector<oid> param_types = {});

    // An idle connection, waiting up to acquire_timeout for one. Errors: errc::timeout
    // (all busy), errc::not_connected (none connected; last_error() says why),
    // errc::too_many_waiters, errc::closed.
    boost::asio::awaitable<std::tuple<std::error_code, pooled_connection>> acquire();

    // acquire() + connection::run(b, query_timeout) + give back. When no connection can
    // be had, every step reports acquire()'s error.
    boost::asio::awaitable<batch_result> run(const batch& b);
    // The limit run() puts on one batch, for callers that use an acquired connection.
    connection::clock::duration run_timeout() const noexcept;

    // Closes every connection: pending operations finish with errc::closed, waiting
    // acquires with errc::closed, and the connections' coroutines end. Idempotent.
    void close();

    pool_stats stats() const;
    // The reason of the last failed connection attempt or lost connection.
    std::string last_error() const;

private:
    std::shared_ptr<detail::pool_impl> impl_;
};

}  // namespace mqttd::pg
