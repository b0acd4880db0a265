#pragma once
// The ordered stream of one pool: every write (message rows, retained rows, client
// state, acks, SQL actions) and every read that must see earlier writes (offline fetch,
// retain lookup, subscription lookup) goes through it, in the order it was pushed.
//
// Batching: operations are gathered from every thread and written when batch_size of
// them are queued or batch_delay after the oldest arrived (what arrives while a batch is
// written forms the next one: group commit), at most batch_size operations and
// batch_bytes of them in a batch. A batch is
//     BEGIN; op steps...; COMMIT; sync
// in one round trip (pipeline, prepared statements); an operation marked own_segment (a
// SQL action statement) gets its own sync segment instead, outside the transaction.
//
// Two batches sent at once: a batch that is one transaction is sent while the one before
// it still runs, chained to it on the same connection (no Sync between them), so the
// server runs it only once the one before committed; the stream meanwhile completes the
// operations of the first. When a batch fails, the one chained behind it has not run, and
// both are written again in order. Other batches wait until every batch sent is answered.
// The operations of an op_group (message rows and acks) between two other operations
// are written as one statement for all of them (see op_group).
//
// Failures: when a step fails with an error that is not about the connection, the
// transaction is rolled back, that operation is logged (once, with its SQLSTATE),
// counted and completed as failed, and the batch is written again without it: one bad
// row never fails the rows batched with it. (When the step of a group fails, the batch
// is written again with one statement per operation, which finds the culprit; after
// several rounds with failing rows the remaining operations are written each in its own
// transaction.) On a connection error the
// unfinished part of the batch is kept and written again, in order, once the pool has
// reconnected (the pool prepares its statements again). Nothing queued is dropped,
// except at shutdown when the flush deadline passes.
//
// Threading: push(), over_bound(), hold_back(), stats() and stop() may be called from any
// thread; the stream's work runs on the pool's executor. Completion callbacks run on
// that executor, without any lock of the stream held.
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <system_error>
#include <vector>

#include "broker/hooks.hpp"
#include "persistence/pg_batch.hpp"
#include "persistence/pg_pool.hpp"
#include "persistence/pg_result.hpp"

namespace mqttd::persistence {

class stream_op;

// Operations that can be written together, as one statement instead of one each (message
// rows: one INSERT ... SELECT FROM unnest(arrays)). In a transaction, the stream gathers
// the grouped operations that come between two ungrouped ones and writes each group's
// share as one step, in the order the groups' first operations came, before the next
// ungrouped operation. So operations of different groups must not depend on one another,
// and the step of a group must do what its operations, one after another, would do.
// Every operation of a group must also be writable alone, by its build().
class op_group {
public:
    virtual ~op_group() = default;
    // Adds one step that writes what the build() of each of `ops` would (two or more,
    // all of this group, in the order they were pushed).
    virtual void build(pg::batch& b, std::span<const stream_op* const> ops) const = 0;
    // After that step committed, before the operations' done(): its result.
    virtual void done(std::span<const stream_op* const> ops, const pg::step_result& result) const {
        (void)ops;
        (void)result;
    }
};

// Which operations the stream refuses, rather than queue, while it is over its bounds
// (max_pending rows, max_pending_bytes): the order in which they are shed.
enum class shed : std::uint8_t {
    never,       // a publish whose acknowledgement waits for it; a client's disconnect row
    over_bound,  // over the bounds: rows nothing waits for, ack pointer moves, retain lookups
    over_twice,  // over twice the bounds: offline fetches, subscription lookups, connect rows
};

// One unit of work: the steps it adds to a batch, and what happens once they committed.
class stream_op {
public:
    virtual ~stream_op() = default;

    // Adds the operation's steps. Called again when the batch is written again.
    virtual void build(pg::batch& b) const = 0;
    // After the steps committed (results: one per step added by build(); none when the
    // operation was written with its group).
    virtual void done(std::span<pg::step_result> results) { (void)results; }
    // After the operation failed for good (already logged and counted by the stream).
    virtual void failed(const pg::step_result& r) { (void)r; }
    // For log lines: "on_message_publish (topic a/b)".
    virtual std::string describe() const = 0;

    // Released when the operation completes; failed first when it is not written.
    publish_hold hold;
    std::size_t bytes = 64;      // its share of max_pending_bytes
    bool own_segment = false;    // a sync segment of its own, outside the transaction
    shed when_over = shed::never;
    const op_group* group = nullptr;  // may be written with the other operations of its group
    std::chrono::steady_clock::time_point queued_at{};
};
using op_ptr = std::unique_ptr<stream_op>;

struct stream_params {
    std::string name = "pool";  // for log lines
    std::size_t batch_size = 1000;
    // A batch takes no more operations once their bytes would pass this (one at least):
    // the batch, payloads and all, is built in memory.
    std::size_t batch_bytes = 32u << 20;
    std::chrono::milliseconds batch_delay{2};
    std::uint64_t max_pending = 100'000;        // rows queued or being written
    std::uint64_t max_pending_bytes = 256ull << 20;
    // The pause before writing a batch again after a connection error.
    std::chrono::milliseconds retry_min{50};
    std::chrono::milliseconds retry_max{2000};
    // Transaction rounds with a failing operation before the rest of the batch is
    // written one operation per transaction.
    unsigned max_transaction_rounds = 4;
};

struct stream_stats {
    std::uint64_t committed = 0;        // operations completed successfully
    std::uint64_t failed = 0;           // operations that failed (logged)
    std::uint64_t refused = 0;          // operations refused over the bounds (see shed)
    std::uint64_t abandoned = 0;        // operations given up at shutdown
    std::uint64_t batches = 0;          // round trips
    std::uint64_t rounds_after_error = 0;    // batches written again after a failing row
    std::uint64_t grouped = 0;          // operations written with their group, in one statement
    std::uint64_t connection_retries = 0;    // batches written again after a connection error
    std::uint64_t chained = 0;          // batches sent while another awaited its results
    std::uint64_t pending = 0;          // queued or being written
    std::uint64_t pending_bytes = 0;
};

class write_stream {
public:
    using log_function = std::function<void(pg::log_level, std::string_view)>;
    // Runs once before the first batch (on the executor), again after a connection error;
    // returns a connection error to be retried, anything else to go on.
    using setup_function = std::function<boost::asio::awaitable<std::error_code>()>;

    write_stream(pg::pool& pool, stream_params params, log_function log = {});
    ~write_stream();
    write_stream(const write_stream&) = delete;
    write_stream& operator=(const write_stream&) = delete;

    void set_setup(setup_function f) { setup_ = std::move(f); }

    // Starts the stream's coroutine on the pool's executor. Call once.
    void start();

    // Any thread. Queues `op` (false, and the op destroyed, when refused).
    bool push(op_ptr op);
    // More rows or bytes pending than the bounds allow (`factor` times them).
    bool over_bound(unsigned factor = 1) const noexcept;
    // Keeps `hold` until the stream is back under its bounds (publish_ack = async).
    void hold_back(publish_hold hold);

    // Any thread: write what is queued without waiting for batch_delay, and end once the
    // queue is empty (operations pushed meanwhile are still taken). At `deadline`
    // whatever is left is abandoned (logged, holds released) and the pool is closed.
    void stop(std::chrono::steady_clock::time_point deadline);
    // Blocks (not on the executor!) until the stream ended or `until`; true if it ended.
    bool wait_stopped(std::chrono::steady_clock::time_point until);
    bool stopped() const noexcept { return finished_.load(); }

    stream_stats stats() const;
    const stream_params& params() const noexcept { return params_; }

private:
    using clock = std::chrono::steady_clock;
    struct span;
    struct segment;
    struct gathered;
    struct plan;
    struct sent_batch;
    // How the rounds of one batch are written after failures.
    struct round_state {
        bool isolate = false;   // one transaction per operation
        bool grouping = true;   // grouped operations as one statement
        unsigned rounds = 0;    // rounds with a failing operation so far
    };
    struct outcome {
        bool connection_error = false;  // or another error that is not the row's: written again after a pause
        bool aborted = false;           // skipped by the server because of an earlier failure
        bool row_error = false;
        bool group_error = false;
    };
    static constexpr std::size_t max_sent_batches = 2;
    // How long the next batch may fill while one sent awaits its results before the stream
    // reads them (completing its operations, releasing its PUBACKs).
    static constexpr std::chrono::milliseconds max_wait_for_sent{5};

    boost::asio::awaitable<void> run();
    void build(std::vector<op_ptr>& ops, plan& p, const round_state& st, std::size_t& left);
    outcome analyze(std::vector<op_ptr>& ops, plan& p, pg::batch_result& r, round_state& st, std::size_t& left);
    boost::asio::awaitable<void> execute(std::vector<op_ptr>& ops, std::size_t left, round_state st);
    void abandon(std::vector<op_ptr>& ops);
    bool send_chained(std::vector<op_ptr>& ops);
    boost::asio::awaitable<void> receive_oldest();
    boost::asio::awaitable<void> pause(clock::duration d);
    clock::duration backoff(unsigned attempt) const;
    void report(const stream_op& op, const pg::step_result& r);
    void complete(op_ptr& op);  // bookkeeping once an op is done or failed
    void fail(op_ptr& op, const pg::step_result& r);  // an op that will not be written, completed
    void release_held_back_if_under();
    bool abandoning() const noexcept { return abandon_.load(); }

    pg::pool& pool_;
    stream_params params_;
    log_function log_;
    setup_function setup_;
    boost::asio::steady_timer timer_;
    boost::asio::steady_timer deadline_timer_;

    mutable std::mutex mutex_;
    std::deque<op_ptr> queue_;
    bool sleeping_ = false;  // the coroutine waits for rows (a push should wake it)
    bool stopping_ = false;
    std::vector<publish_hold> held_back_;

    // Batches sent on chain_ whose results have not been received (executor only).
    std::deque<std::unique_ptr<sent_batch>> sent_batches_;
    pg::pooled_connection chain_;

    std::atomic<std::uint64_t> pending_{0};
    std::atomic<std::uint64_t> pending_bytes_{0};
    std::atomic<bool> abandon_{false};
    std::atomic<bool> finished_{false};
    std::mutex finished_mutex_;
    std::condition_variable finished_cv_;

    // Counters (written on the executor, read anywhere).
    std::atomic<std::uint64_t> committed_{0}, failed_{0}, refused_{0}, abandoned_{0}, batches_{0},
        rounds_after_error_{0}, connection_retries_{0}, grouped_{0}, chained_{0};

    // Log rate limit for failing operations (executor only).
    clock::time_point log_window_{};
    unsigned log_count_ = 0;
    std::uint64_t log_suppressed_ = 0;
};

}  // namespace mqttd::persistence
