#pragma once
// One libpq connection driven by Asio: non-blocking connect, pipeline mode, prepared
// statements that survive reconnects.
//
// Threading: a connection lives on one executor (one io_context thread, or a strand).
// Every member function must be called from that executor, and at most one operation
// (connect or run) may be pending at a time; a second one is a programming error and
// throws std::logic_error. Other threads hand work over with boost::asio::post or
// co_spawn on get_executor().
//
// Lifetime: the object must outlive its pending operation. close() makes a pending
// operation finish at the next turn of the executor (with errc::closed); the object may
// be destroyed once it has, or after its io_context has been destroyed.
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>

#include <chrono>
#include <cstdint>
#include <deque>
#include <string>
#include <system_error>
#include <vector>

#include "persistence/pg_batch.hpp"
#include "persistence/pg_conninfo.hpp"
#include "persistence/pg_error.hpp"
#include "persistence/pg_result.hpp"

struct pg_conn;  // libpq's PGconn

namespace mqttd::pg {

class connection {
public:
    using executor_type = boost::asio::any_io_executor;
    using clock = std::chrono::steady_clock;
    static constexpr clock::duration no_timeout = clock::duration::max();

    explicit connection(executor_type ex);
    ~connection();
    connection(const connection&) = delete;
    connection& operator=(const connection&) = delete;

    executor_type get_executor() const noexcept { return ex_; }

    // Opens a session (closing any previous one), enters pipeline mode and prepares every
    // registered statement. Fails with errc::connect_failed (libpq's reason in
    // last_error()), errc::timeout, or errc::closed. A host name is resolved
    // asynchronously, so the executor never blocks on DNS.
    boost::asio::awaitable<std::error_code> connect(const conninfo& info, clock::duration timeout);

    // Registers a statement for batch::execute(name, ...). It is prepared at the start of
    // the next run() (in the same round trip) and again after every reconnect. Registering
    // the same name again with the same SQL is a no-op; with other SQL it throws
    // std::invalid_argument. A statement the server rejects makes the steps that use it
    // fail with the rejection's SQLSTATE and message.
    void prepare(std::string name, std::string sql, std::vector<oid> param_types = {});

    // Sends every step of `b` in one pipeline and returns one result per step. `b` must
    // stay alive until the operation completes. When the connection is lost (or the
    // timeout passes, after which the session is dropped), every step without a result
    // reports a code for which is_connection_error() holds. A transaction the batch left
    // failed is rolled back before this returns, so the session is clean for the next
    // user; one it left open (BEGIN without COMMIT) stays open: see in_transaction().
    boost::asio::awaitable<batch_result> run(const batch& b, clock::duration timeout = no_timeout);

    // Pipelined use, for a caller that keeps the server busy while it prepares what comes
    // next: send() queues the steps of `b` behind those already sent, and receive()
    // returns the results of the oldest batch sent and not yet received (as run() would).
    // A batch sent with `chain` ends with a flush request instead of a Sync, so the
    // batches sent after it run only if every one of its steps succeeds: after a failure
    // the server skips whatever follows up to the next Sync (errc::pipeline_aborted), and
    // the receive() that empties the pipeline sends that Sync and rolls back a failed
    // transaction. `b` must stay alive until received. send() is not an operation (it
    // does not wait) but may not be called while one is pending; false when the session
    // is not usable or broke while sending (then `b` counts as not sent; the batches sent
    // before it report the lost connection).
    bool send(const batch& b, bool chain);
    boost::asio::awaitable<batch_result> receive(clock::duration timeout = no_timeout);
    // Batches sent and not yet received.
    std::size_t in_flight() const noexcept { return sent_.size(); }

    // Without waiting: reads whatever the server sent while the session was idle (for
    // example the FATAL notice that precedes pg_terminate_backend's hang-up) and says
    // whether the session is still usable. Lets a pool skip a dead connection before
    // sending anything on it.
    bool check_alive();

    // Ends the session. Pending waits are cancelled and have completed before the socket
    // is taken back from Asio (release(), so Asio never closes libpq's descriptor) and
    // PQfinish closes it. Idempotent.
    void close();

    // Connected, not broken, no close requested.
    bool usable() const noexcept;
    bool busy() const noexcept { return busy_; }
    // A transaction is open (or failed) on the session after the last run().
    bool in_transaction() const noexcept;
    // The server process serving this session (for pg_terminate_backend), or 0.
    int backend_pid() const noexcept;
    // libpq's or the server's text for the last connection-level failure.
    const std::string& last_error() const noexcept { return last_error_; }

    struct statement_error {
        std::string name;
        std::error_code ec;
        std::string message;
    };
    // Registered statements that the current session failed to prepare.
    std::vector<statement_error> failed_statements() const;

private:
    enum class state { disconnected, connecting, ready, broken };
    enum class wait_for { read, write, read_or_write };
    enum class wake { ready, timeout, closed, failed };

    struct statement {
        std::string name;
        std::string sql;
        std::vector<oid> types;
        bool sent = false;  // prepared (or being prepared) on the current session
        std::error_code ec;
        std::string message;
    };

    // One result that the pipeline owes us, in the order the requests were sent.
    struct pending {
        enum class kind : std::uint8_t { step, prepare, sync } what;
        std::uint32_t index;  // into the results (step) or statements_ (prepare)
    };

    struct exchange_outcome {
        std::error_code ec;     // connection-level failure, or empty
        std::size_t done = 0;   // how many pending entries were answered
    };

    class op_guard;

    struct sent_batch {
        const batch* b;
        std::vector<pending> q;
    };

    boost::asio::awaitable<std::error_code> resolve(conninfo& info, clock::time_point deadline);
    boost::asio::awaitable<wake> wait_socket(wait_for what, clock::time_point deadline);
    void attach_socket();
    bool send_prepares(std::vector<pending>& q, bool sync_each);
    bool send_steps(const batch& b, std::vector<pending>& q, bool chain = false);
    boost::asio::awaitable<void> end_pipeline(clock::time_point deadline);
    boost::asio::awaitable<exchange_outcome> exchange(const std::vector<pending>& q, std::vector<step_result>& out,
                                                      clock::time_point deadline);
    void store(const pending& p, ::pg_result* r, std::vector<step_result>& out);
    std::error_code error_of(const ::pg_result* r) const;
    void fail_connect(std::string why);
    void finish() noexcept;
    static void on_notice(void* self, const ::pg_result* r);

    executor_type ex_;
    boost::asio::posix::stream_descriptor socket_;
    boost::asio::steady_timer timer_;
    boost::asio::ip::tcp::resolver resolver_;
    pg_conn* conn_ = nullptr;
    state state_ = state::disconnected;
    bool busy_ = false;
    bool closing_ = false;  // close() came while an operation was pending
    std::string last_error_;
    std::vector<statement> statements_;
    std::deque<sent_batch> sent_;
    // Reused between steps so that sending a large batch does not allocate per step.
    std::vector<const char*> values_;
    std::vector<int> lengths_, formats_;
    std::vector<oid> types_;
};

}  // namespace mqttd::pg
