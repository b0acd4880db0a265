#include "persistence/write_stream.hpp"

#include <fmt/format.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>
#include <exception>

#include "persistence/pg_error.hpp"

namespace mqttd::persistence {

namespace asio = boost::asio;

// Where each operation's steps, and each segment's, are in a plan's batch.
struct write_stream::span {
    std::size_t op;
    std::size_t first;
    std::size_t count;  // 0 for an operation written with its group
};
struct write_stream::segment {
    std::size_t first_step, end_step;
    std::size_t first_span, end_span;
};
// The grouped operations of one group gathered since the last ungrouped operation, and
// once written, the steps [first, end) written for them.
struct write_stream::gathered {
    const op_group* group;
    std::vector<std::size_t> ops;
    std::size_t first = 0, end = 0;
};
struct write_stream::plan {
    pg::batch b;
    std::vector<span> spans;
    std::vector<segment> segs;
    std::vector<gathered> group_steps;
};
// A batch sent behind the ones before it, its results not yet received.
struct write_stream::sent_batch {
    std::vector<op_ptr> ops;
    std::size_t left = 0;
    plan p;
};

write_stream::write_stream(pg::pool& pool, stream_params params, log_function log)
    : pool_(pool),
      params_(std::move(params)),
      log_(std::move(log)),
      timer_(pool.get_executor()),
      deadline_timer_(pool.get_executor()) {
    params_.batch_size = std::max<std::size_t>(params_.batch_size, 1);
    if (!log_) log_ = [](pg::log_level, std::string_view) {};
}

write_stream::~write_stream() = default;

void write_stream::start() {
    asio::co_spawn(pool_.get_executor(), run(), [](std::exception_ptr e) {
        if (e) std::rethrow_exception(e);  // only programming errors throw
    });
}

bool write_stream::over_bound(unsigned factor) const noexcept {
    return pending_.load(std::memory_order_relaxed) >= factor * params_.max_pending ||
           pending_bytes_.load(std::memory_order_relaxed) >= factor * params_.max_pending_bytes;
}

bool write_stream::push(op_ptr op) {
    bool wake = false;
    {
        std::lock_guard lock(mutex_);
        if (finished_.load() || abandoning()) {
            ++abandoned_;
            return false;
        }
        if ((op->when_over == shed::over_bound && over_bound()) ||
            (op->when_over == shed::over_twice && over_bound(2))) {
            const auto n = refused_.fetch_add(1);
            if (n < 10 || n % 10000 == 0)
                log_(pg::log_level::warning,
                     fmt::format("{}: {} pending operations (bound {}): refusing those that can be shed, such as {} "
                                 "({} refused so far)",
                                 params_.name, pending_.load(), params_.max_pending, op->describe(), n + 1));
            return false;
        }
        op->queued_at = clock::now();
        pending_.fetch_add(1, std::memory_order_relaxed);
        pending_bytes_.fetch_add(op->bytes, std::memory_order_relaxed);
        queue_.push_back(std::move(op));
        if (sleeping_ && (queue_.size() == 1 || queue_.size() >= params_.batch_size || stopping_)) {
            sleeping_ = false;
            wake = true;
        }
    }
    if (wake) asio::post(timer_.get_executor(), [this] { timer_.cancel(); });
    return true;
}

void write_stream::hold_back(publish_hold hold) {
    if (!hold) return;
    std::lock_guard lock(mutex_);
    if (finished_.load()) return;  // released at once
    held_back_.push_back(std::move(hold));
}

void write_stream::release_held_back_if_under() {
    std::vector<publish_hold> released;
    {
        std::lock_guard lock(mutex_);
        if (held_back_.empty() || (over_bound() && !finished_.load())) return;
        released.swap(held_back_);
    }
    // Destroyed here, outside the lock: the broker acknowledges those publishes.
}

void write_stream::stop(clock::time_point deadline) {
    {
        std::lock_guard lock(mutex_);
        stopping_ = true;
    }
    asio::post(timer_.get_executor(), [this, deadline] {
        timer_.cancel();
        if (finished_.load()) return;
        deadline_timer_.expires_at(deadline);
        deadline_timer_.async_wait([this](const boost::system::error_code& ec) {
            if (ec || finished_.load()) return;
            abandon_ = true;
            timer_.cancel();
            pool_.close();  // a batch waiting for the server ends now
        });
    });
}

bool write_stream::wait_stopped(clock::time_point until) {
    std::unique_lock lock(finished_mutex_);
    return finished_cv_.wait_until(lock, until, [this] { return finished_.load(); });
}

stream_stats write_stream::stats() const {
    stream_stats s;
    s.committed = committed_.load();
    s.failed = failed_.load();
    s.refused = refused_.load();
    s.abandoned = abandoned_.load();
    s.batches = batches_.load();
    s.rounds_after_error = rounds_after_error_.load();
    s.connection_retries = connection_retries_.load();
    s.grouped = grouped_.load();
    s.chained = chained_.load();
    s.pending = pending_.load();
    s.pending_bytes = pending_bytes_.load();
    return s;
}

write_stream::clock::duration write_stream::backoff(unsigned attempt) const {
    auto d = params_.retry_min;
    for (unsigned i = 0; i < attempt && d < params_.retry_max; ++i) d *= 2;
    return std::min(d, params_.retry_max);
}

asio::awaitable<void> write_stream::pause(clock::duration d) {
    timer_.expires_after(d);
    co_await timer_.async_wait(asio::as_tuple(asio::use_awaitable));
}

void write_stream::complete(op_ptr& op) {
    pending_.fetch_sub(1, std::memory_order_relaxed);
    pending_bytes_.fetch_sub(op->bytes, std::memory_order_relaxed);
    op.reset();  // releases its hold
}

void write_stream::fail(op_ptr& op, const pg::step_result& r) {
    op->failed(r);
    // A publisher waiting for this row is not told it was stored.
    if (op->hold) op->hold->fail(mqtt::reason_code::unspecified_error);
    complete(op);
}

void write_stream::report(const stream_op& op, const pg::step_result& r) {
    const auto now = clock::now();
    if (now - log_window_ >= std::chrono::seconds(10)) {
        if (log_suppressed_ > 0)
            log_(pg::log_level::warning,
                 fmt::format("{}: {} more failed rows were not logged", params_.name, log_suppressed_));
        log_window_ = now;
        log_count_ = 0;
        log_suppressed_ = 0;
    }
    if (++log_count_ > 20) {
        ++log_suppressed_;
        return;
    }
    const auto state = pg::sqlstate_of(r.ec);
    log_(pg::log_level::error, fmt::format("{}: {} failed: {}{}{}", params_.name, op.describe(),
                                           state.empty() ? r.ec.message() : "SQLSTATE " + state,
                                           r.message.empty() ? "" : ": ", r.message));
}

asio::awaitable<void> write_stream::run() {
    if (setup_) {
        for (unsigned attempt = 0; !abandoning(); ++attempt) {
            {
                std::lock_guard lock(mutex_);
                if (stopping_ && queue_.empty()) break;  // nothing to write: no need to wait for the server
            }
            const auto ec = co_await setup_();
            if (!ec || !pg::is_connection_error(ec)) break;
            co_await pause(backoff(attempt));
        }
    }

    std::vector<op_ptr> ops;
    for (;;) {
        bool done = false, wait = false, receive_first = false;
        clock::time_point wake_at = clock::time_point::max();
        {
            std::lock_guard lock(mutex_);
            if (!sent_batches_.empty() &&
                (abandoning() || queue_.empty() || sent_batches_.size() >= max_sent_batches)) {
                receive_first = true;
            } else if (abandoning()) {
                done = true;
            } else if (queue_.empty()) {
                done = stopping_;
                wait = !stopping_;
            } else {
                const auto due = queue_.front()->queued_at + params_.batch_delay;
                if (stopping_ || queue_.size() >= params_.batch_size || clock::now() >= due) {
                    std::size_t bytes = 0;
                    while (!queue_.empty() && ops.size() < params_.batch_size) {
                        bytes += queue_.front()->bytes;
                        if (!ops.empty() && bytes > params_.batch_bytes) break;
                        ops.push_back(std::move(queue_.front()));
                        queue_.pop_front();
                    }
                } else if (!sent_batches_.empty() && due - clock::now() > max_wait_for_sent) {
                    receive_first = true;  // a long batch_delay does not delay the results of the batch sent
                } else {
                    wake_at = due;
                    wait = true;
                }
            }
            if (wait) sleeping_ = true;
        }
        if (done) break;
        if (receive_first) {
            co_await receive_oldest();
            release_held_back_if_under();
            continue;
        }
        if (wait) {
            if (sent_batches_.empty()) chain_.reset();  // idle: the connection goes back to the pool
            timer_.expires_at(wake_at);
            co_await timer_.async_wait(asio::as_tuple(asio::use_awaitable));
            std::lock_guard lock(mutex_);
            sleeping_ = false;
            continue;
        }
        if (sent_batches_.empty() && !chain_ && pool_.stats().idle > 0) {  // never waits for a connection here
            auto [ec, c] = co_await pool_.acquire();
            if (!ec) chain_ = std::move(c);
        }
        if (!send_chained(ops)) {
            while (!sent_batches_.empty()) co_await receive_oldest();
            chain_.reset();
            co_await execute(ops, ops.size(), {});
        }
        ops.clear();
        release_held_back_if_under();
    }
    chain_.reset();

    // Whatever is left was not written: shutdown passed its deadline.
    std::deque<op_ptr> left;
    {
        std::lock_guard lock(mutex_);
        left.swap(queue_);
        finished_ = true;
    }
    if (!left.empty()) {
        log_(pg::log_level::error,
             fmt::format("{}: shutting down with {} operations not written (the server was not reachable in time)",
                         params_.name, left.size()));
        pg::step_result r;
        r.ec = pg::errc::closed;
        r.message = "shutdown";
        for (auto& op : left) {
            ++abandoned_;
            fail(op, r);
        }
    }
    deadline_timer_.cancel();
    release_held_back_if_under();
    {
        std::lock_guard lock(finished_mutex_);
    }
    finished_cv_.notify_all();
}

void write_stream::build(std::vector<op_ptr>& ops, plan& p, const round_state& st, std::size_t& left) {
    auto& b = p.b;
    b.clear();
    p.spans.clear();
    p.segs.clear();
    p.group_steps.clear();
    std::vector<gathered> gather;
    std::vector<const stream_op*> members;
    bool tx_open = false, after_tx = false;
    // Each group's share as one statement (one operation alone: its own steps).
    auto write_gathered = [&] {
        for (auto& g : gather) {
            const auto first = b.size();
            if (g.ops.size() == 1) {
                ops[g.ops.front()]->build(b);
                p.spans.push_back({g.ops.front(), first, b.size() - first});
                continue;
            }
            members.clear();
            for (auto i : g.ops) members.push_back(ops[i].get());
            g.group->build(b, members);
            g.first = first;
            g.end = b.size();
            for (auto i : g.ops) p.spans.push_back({i, first, 0});
            p.group_steps.push_back(std::move(g));
        }
        gather.clear();
    };
    auto close_tx = [&] {
        if (!tx_open) return;
        write_gathered();
        b.commit();
        b.sync();
        p.segs.back().end_step = b.size();
        p.segs.back().end_span = p.spans.size();
        tx_open = false;
        after_tx = true;
    };
    // A transaction that failed stays open, aborted, past its Sync and would fail
    // every later segment: each segment after one starts by ending it (a ROLLBACK
    // with no transaction open is only a warning). Its result belongs to no segment.
    auto start_segment = [&] {
        if (!after_tx) return;
        b.rollback();
        b.sync();
        after_tx = false;
    };
    // An operation that found it has nothing to write is complete.
    auto wrote_nothing = [&](std::size_t i, std::size_t first) {
        if (b.size() != first) return false;
        ops[i]->done({});
        ++committed_;
        complete(ops[i]);
        --left;
        return true;
    };
    for (std::size_t i = 0; i < ops.size(); ++i) {
        if (!ops[i]) continue;
        if (ops[i]->own_segment) {
            close_tx();
            start_segment();
            const auto first = b.size();
            ops[i]->build(b);
            if (wrote_nothing(i, first)) continue;
            b.sync();
            p.segs.push_back({first, b.size(), p.spans.size(), p.spans.size() + 1});
            p.spans.push_back({i, first, b.size() - first});
            continue;
        }
        // Isolated, an operation still gets a transaction of its own: a failure at
        // COMMIT (a deferred constraint) is then its failure, not a neighbour's.
        if (st.isolate) close_tx();
        if (!tx_open) {
            start_segment();
            p.segs.push_back({b.size(), 0, p.spans.size(), 0});
            b.begin();
            tx_open = true;
        }
        if (ops[i]->group && st.grouping && !st.isolate) {
            auto g = std::find_if(gather.begin(), gather.end(),
                                  [&](const gathered& x) { return x.group == ops[i]->group; });
            if (g == gather.end())
                gather.push_back({ops[i]->group, {i}});
            else
                g->ops.push_back(i);
            continue;
        }
        write_gathered();
        const auto first = b.size();
        ops[i]->build(b);
        if (!wrote_nothing(i, first)) p.spans.push_back({i, first, b.size() - first});
        if (st.isolate) close_tx();
    }
    close_tx();
}

write_stream::outcome write_stream::analyze(std::vector<op_ptr>& ops, plan& p, pg::batch_result& r, round_state& st,
                                            std::size_t& left) {
    outcome out;
    std::vector<const stream_op*> members;
    for (const auto& sg : p.segs) {
        std::size_t bad = sg.end_step;
        bool aborted = false;
        for (std::size_t s = sg.first_step; s < sg.end_step; ++s) {
            const auto& ec = r.steps[s].ec;
            if (!ec) continue;
            if (ec == pg::errc::pipeline_aborted) {
                aborted = true;
                continue;
            }
            bad = s;
            break;
        }
        if (bad == sg.end_step) {
            if (aborted) {  // aborted without a cause in this segment: write it again
                out.aborted = true;
                continue;
            }
            for (const auto& g : p.group_steps) {
                if (g.first < sg.first_step || g.first >= sg.end_step) continue;
                members.clear();
                for (auto i : g.ops) members.push_back(ops[i].get());
                g.group->done(members, r.steps[g.first]);
            }
            for (std::size_t k = sg.first_span; k < sg.end_span; ++k) {
                auto& sp = p.spans[k];
                ops[sp.op]->done(std::span<pg::step_result>(r.steps.data() + sp.first, sp.count));
                ++committed_;
                if (sp.count == 0) ++grouped_;
                complete(ops[sp.op]);
                --left;
            }
            continue;
        }
        if (!pg::is_statement_error(r.steps[bad].ec)) {
            // Not the row's fault (the connection, a serialization failure, a full
            // disk, an error without a SQLSTATE): nothing of the segment is completed,
            // it is written again after a pause. Only a row the server rejects for
            // what it is may be dropped, or an acknowledged message could be lost.
            if (!pg::is_connection_error(r.steps[bad].ec))
                log_(pg::log_level::warning,
                     fmt::format("{}: a batch failed ({}{}{}); writing it again", params_.name,
                                 pg::sqlstate_of(r.steps[bad].ec).empty()
                                     ? r.steps[bad].ec.message()
                                     : "SQLSTATE " + pg::sqlstate_of(r.steps[bad].ec),
                                 r.steps[bad].message.empty() ? "" : ": ", r.steps[bad].message));
            out.connection_error = true;
            continue;
        }
        if (std::any_of(p.group_steps.begin(), p.group_steps.end(),
                        [bad](const gathered& g) { return bad >= g.first && bad < g.end; })) {
            // One of the group's operations is at fault, but which? Written again one
            // statement per operation, the culprit fails alone.
            log_(pg::log_level::debug,
                 fmt::format("{}: a statement for several operations failed ({}); writing them one by one",
                             params_.name, r.steps[bad].message));
            st.grouping = false;
            out.group_error = true;
            continue;
        }
        const auto first = p.spans.begin() + static_cast<std::ptrdiff_t>(sg.first_span);
        const auto end = p.spans.begin() + static_cast<std::ptrdiff_t>(sg.end_span);
        auto owner = std::find_if(first, end, [bad](const span& sp) { return bad >= sp.first && bad < sp.first + sp.count; });
        if (owner == end && sg.end_span - sg.first_span == 1) {
            owner = first;  // BEGIN/COMMIT of its own transaction
        } else if (owner == end) {
            // BEGIN or COMMIT failed (a deferred constraint, a serialization failure):
            // find the culprit by writing each operation on its own.
            log_(pg::log_level::warning,
                 fmt::format("{}: a batch transaction failed at {}: {}; writing its rows one by one",
                             params_.name, bad == sg.first_step ? "BEGIN" : "COMMIT", r.steps[bad].message));
            st.isolate = true;
            out.row_error = true;
            continue;
        }
        out.row_error = true;
        auto& op = ops[owner->op];
        report(*op, r.steps[bad]);
        ++failed_;
        fail(op, r.steps[bad]);
        --left;
    }
    return out;
}

asio::awaitable<void> write_stream::execute(std::vector<op_ptr>& ops, std::size_t left, round_state st) {
    plan p;
    unsigned attempt = 0;
    while (left > 0) {
        build(ops, p, st, left);
        if (p.spans.empty()) break;

        auto r = co_await pool_.run(p.b);
        ++batches_;
        const auto o = analyze(ops, p, r, st, left);
        if (left == 0) break;
        if (o.connection_error || o.aborted) {
            ++connection_retries_;
            if (abandoning()) break;
            log_(pg::log_level::debug,
                 fmt::format("{}: {} operations kept, to be written again once connected", params_.name, left));
            co_await pause(backoff(attempt++));
            if (abandoning()) break;
        } else if (o.row_error || o.group_error) {
            ++rounds_after_error_;
            if (o.row_error && ++st.rounds >= params_.max_transaction_rounds) st.isolate = true;
        }
    }
    if (left > 0) abandon(ops);
}

// The operations of a batch not written before the shutdown's deadline.
void write_stream::abandon(std::vector<op_ptr>& ops) {
    pg::step_result r;
    r.ec = pg::errc::closed;
    r.message = "shutdown";
    std::size_t n = 0;
    for (auto& op : ops) {
        if (!op) continue;
        ++n;
        ++abandoned_;
        fail(op, r);
    }
    if (n > 0)
        log_(pg::log_level::error,
             fmt::format("{}: shutting down with {} operations of a batch not written", params_.name, n));
}

// Sends a batch of operations that form one transaction behind the batches sent before,
// chained: it commits only if they all did. False when it cannot be (then nothing was
// sent and `ops` are untouched).
bool write_stream::send_chained(std::vector<op_ptr>& ops) {
    if (std::any_of(ops.begin(), ops.end(), [](const op_ptr& op) { return op->own_segment; })) return false;
    if (!chain_ || !chain_->usable()) return false;
    auto f = std::make_unique<sent_batch>();
    f->left = ops.size();
    f->ops = std::move(ops);
    build(f->ops, f->p, {}, f->left);
    if (f->p.segs.size() != 1 || !chain_->send(f->p.b, true)) {
        ops = std::move(f->ops);
        return false;
    }
    if (!sent_batches_.empty()) ++chained_;
    sent_batches_.push_back(std::move(f));
    return true;
}

// Receives the results of the oldest batch sent. If any of its operations is not
// written, the batches chained behind it did not run: they are received too, and all of
// them written again, in order, one batch after the other.
asio::awaitable<void> write_stream::receive_oldest() {
    auto f = std::move(sent_batches_.front());
    sent_batches_.pop_front();
    auto r = co_await chain_->receive(pool_.run_timeout());
    ++batches_;
    round_state st;
    const auto o = analyze(f->ops, f->p, r, st, f->left);
    if (f->left == 0) co_return;
    std::vector<std::unique_ptr<sent_batch>> behind;
    while (!sent_batches_.empty()) {
        auto next = std::move(sent_batches_.front());
        sent_batches_.pop_front();
        auto rn = co_await chain_->receive(pool_.run_timeout());
        round_state stn;
        analyze(next->ops, next->p, rn, stn, next->left);  // skipped by the server: normally completes nothing
        behind.push_back(std::move(next));
    }
    chain_.reset();
    if (o.connection_error || o.aborted) {
        ++connection_retries_;
        if (!abandoning()) co_await pause(backoff(0));
    } else {
        ++rounds_after_error_;
        if (o.row_error && ++st.rounds >= params_.max_transaction_rounds) st.isolate = true;
    }
    co_await execute(f->ops, f->left, st);
    for (auto& next : behind) co_await execute(next->ops, next->left, {});
}

}  // namespace mqttd::persistence
