// The ordered batching stream against a real PostgreSQL: batching, order, a failing row
// that fails alone, connections killed mid-stream (nothing lost, nothing twice, order
// kept), holds released after commit, the bound, shutdown with the server away, and
// grouped operations (many rows in one statement) keeping all of that.
#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <vector>

#include "backend_test_env.hpp"
#include "persistence/pg_array.hpp"
#include "persistence/write_stream.hpp"

using namespace mqttd::persistence;
using namespace betest;
namespace pg = mqttd::pg;

namespace {

// INSERT (seq, v) into a test table; idempotent on seq, like message rows on msgid.
class row_op final : public stream_op {
public:
    row_op(std::string table, int seq, int v, std::atomic<int>* done_count = nullptr,
           std::atomic<int>* failed_count = nullptr)
        : table_(std::move(table)), seq_(seq), v_(v), done_(done_count), failed_(failed_count) {}
    void build(pg::batch& b) const override {
        b.query("INSERT INTO " + table_ + " (seq, v) VALUES ($1, $2) ON CONFLICT (seq) DO NOTHING", {seq_, v_});
    }
    void done(std::span<pg::step_result>) override {
        if (done_) ++*done_;
    }
    void failed(const pg::step_result& r) override {
        last_state = pg::sqlstate_of(r.ec);
        if (failed_) ++*failed_;
    }
    std::string describe() const override { return "row " + std::to_string(seq_); }
    const std::string& table() const { return table_; }
    int seq() const { return seq_; }
    int v() const { return v_; }
    std::string last_state;

private:
    std::string table_;
    int seq_, v_;
    std::atomic<int>* done_;
    std::atomic<int>* failed_;
};

// row_op's rows in one statement, as the backend writes message rows.
class rows_group final : public op_group {
public:
    void build(pg::batch& b, std::span<const stream_op* const> ops) const override {
        pg::array_literal seqs, vs;
        for (const auto* op : ops) {
            const auto& r = static_cast<const row_op&>(*op);
            seqs.add(std::int64_t{r.seq()});
            vs.add(std::int64_t{r.v()});
        }
        b.query("INSERT INTO " + static_cast<const row_op&>(*ops.front()).table() +
                    " (seq, v) SELECT s, v FROM unnest($1::integer[], $2::integer[]) WITH ORDINALITY AS t(s, v, n) "
                    "ORDER BY n ON CONFLICT (seq) DO NOTHING",
                {seqs.str(), vs.str()});
    }
};
const rows_group rows;

std::unique_ptr<row_op> grouped_row(const std::string& table, int seq, int v, std::atomic<int>* done = nullptr,
                                    std::atomic<int>* failed = nullptr) {
    auto op = std::make_unique<row_op>(table, seq, v, done, failed);
    op->group = &rows;
    return op;
}

struct fixture {
    explicit fixture(const std::string& dsn, std::size_t batch_size = 100, std::chrono::milliseconds delay = 2ms)
        : admin_io(), admin(admin_io, dsn), table(pgtest::unique("bt_ws")), app(pgtest::unique("bt_ws_app")) {
        admin.sql("CREATE TABLE " + table + " (id serial primary key, seq integer UNIQUE, v integer CHECK (v >= 0))");
        auto p = pgtest::params(dsn);
        p.application_name = app;
        p.pool_size = 2;
        pool = std::make_unique<pg::pool>(io.io.get_executor(), p);
        stream_params sp;
        sp.name = "test";
        sp.batch_size = batch_size;
        sp.batch_delay = delay;
        sp.retry_min = 20ms;
        sp.retry_max = 200ms;
        stream = std::make_unique<write_stream>(*pool, sp, [this](pg::log_level l, std::string_view t) {
            std::lock_guard lock(log_mutex);
            logs.emplace_back(l, std::string(t));
        });
    }
    ~fixture() {
        if (!stream->stopped()) {
            stream->stop(std::chrono::steady_clock::now() + 1s);
            stream->wait_stopped(std::chrono::steady_clock::now() + 3s);
        }
        io.sync([&] { pool->close(); });
        io.stop();
        stream.reset();
        pool.reset();
        admin.sql("DROP TABLE IF EXISTS " + table);
    }
    std::vector<std::int64_t> seqs_in_id_order() {
        auto r = admin.sql("SELECT seq FROM " + table + " ORDER BY id");
        std::vector<std::int64_t> out;
        for (std::size_t i = 0; i < r.rows.size(); ++i) out.push_back(*r.rows.get_int(i, 0));
        return out;
    }
    std::int64_t terminate() {
        auto r = admin.sql(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = $1", {app});
        return *r.rows.get_int(0, 0);
    }
    std::size_t error_logs() {
        std::lock_guard lock(log_mutex);
        return static_cast<std::size_t>(std::count_if(logs.begin(), logs.end(), [](const auto& l) {
            return l.first == pg::log_level::error;
        }));
    }

    asio::io_context admin_io;
    pgtest::session admin;
    std::string table, app;
    io_thread io;
    std::unique_ptr<pg::pool> pool;
    std::unique_ptr<write_stream> stream;
    std::mutex log_mutex;
    std::vector<std::pair<pg::log_level, std::string>> logs;
};

std::vector<std::int64_t> iota(int n) {
    std::vector<std::int64_t> v(static_cast<std::size_t>(n));
    for (int i = 0; i < n; ++i) v[static_cast<std::size_t>(i)] = i;
    return v;
}

}  // namespace

TEST_CASE("rows are written in order, many per round trip") {
    PGTEST_REQUIRE_DSN(d);
    fixture f(d, 200, 5ms);
    f.stream->start();
    std::atomic<int> done{0};
    const int n = 3000;
    for (int i = 0; i < n; ++i) CHECK(f.stream->push(std::make_unique<row_op>(f.table, i, i, &done)));
    REQUIRE(wait_until([&] { return done.load() == n; }));
    CHECK(f.seqs_in_id_order() == iota(n));
    const auto st = f.stream->stats();
    CHECK(st.committed == static_cast<std::uint64_t>(n));
    CHECK(st.pending == 0);
    CHECK(st.batches >= static_cast<std::uint64_t>(n / 200));
    CHECK(st.batches < static_cast<std::uint64_t>(n / 10));
    MESSAGE(n << " rows in " << st.batches << " round trips");
}

TEST_CASE("a failing row fails alone: logged once with its SQLSTATE, the others committed in order") {
    PGTEST_REQUIRE_DSN(d);
    bool grouped = false;
    SUBCASE("one statement per row") {}
    SUBCASE("grouped rows") { grouped = true; }
    // A long delay: the rows go in one batch, however slowly they are pushed.
    fixture f(d, 1000, 300ms);
    f.stream->start();
    std::atomic<int> done{0}, failed{0};
    const int n = 100;
    auto row = [&](int i, int v) {
        return grouped ? grouped_row(f.table, i, v, &done, &failed) : std::make_unique<row_op>(f.table, i, v, &done, &failed);
    };
    for (int i = 0; i < n; ++i) f.stream->push(row(i, i == 50 ? -1 : i));
    REQUIRE(wait_until([&] { return done.load() + failed.load() == n; }));
    CHECK(done.load() == n - 1);
    CHECK(failed.load() == 1);
    auto want = iota(n);
    want.erase(want.begin() + 50);
    CHECK(f.seqs_in_id_order() == want);
    CHECK(f.stream->stats().failed == 1);
    CHECK(f.stream->stats().grouped == 0);  // that batch was written row by row
    CHECK(f.error_logs() == 1);
    {
        std::lock_guard lock(f.log_mutex);
        bool found = false;
        for (const auto& [l, t] : f.logs) found |= t.find("row 50") != std::string::npos && t.find("23514") != std::string::npos;
        CHECK(found);
    }
    if (grouped) {  // the next batch is grouped again
        for (int i = n; i < 2 * n; ++i) f.stream->push(row(i, i));
        REQUIRE(wait_until([&] { return done.load() + failed.load() == 2 * n; }));
        CHECK(f.stream->stats().grouped == static_cast<std::uint64_t>(n));
    }
}

TEST_CASE("batches chained behind a failing one run only after it is written again: order kept") {
    PGTEST_REQUIRE_DSN(d);
    bool grouped = false;
    SUBCASE("one statement per row") {}
    SUBCASE("grouped rows") { grouped = true; }
    // Small batches pushed at once: each is sent while the one before still awaits its results.
    fixture f(d, 10, 1ms);
    f.stream->start();
    std::atomic<int> done{0}, failed{0};
    const int n = 400;
    const std::vector<int> bad{55, 56, 155, 307};
    for (int i = 0; i < n; ++i) {
        const int v = std::find(bad.begin(), bad.end(), i) != bad.end() ? -1 : i;
        f.stream->push(grouped ? grouped_row(f.table, i, v, &done, &failed)
                               : std::make_unique<row_op>(f.table, i, v, &done, &failed));
    }
    REQUIRE(wait_until([&] { return done.load() + failed.load() == n; }));
    CHECK(failed.load() == static_cast<int>(bad.size()));
    auto want = iota(n);
    for (auto it = bad.rbegin(); it != bad.rend(); ++it) want.erase(want.begin() + *it);
    CHECK(f.seqs_in_id_order() == want);
    const auto st = f.stream->stats();
    CHECK(st.chained > 0);
    CHECK(st.failed == bad.size());
    CHECK(st.pending == 0);
    MESSAGE(st.batches << " round trips, " << st.chained << " sent behind another");
}

TEST_CASE("many failing rows: the batch ends up written row by row, every good row committed") {
    PGTEST_REQUIRE_DSN(d);
    bool grouped = false;
    SUBCASE("one statement per row") {}
    SUBCASE("grouped rows") { grouped = true; }
    fixture f(d, 1000, 20ms);
    f.stream->start();
    std::atomic<int> done{0}, failed{0};
    const int n = 200;
    for (int i = 0; i < n; ++i) {
        const int v = i % 10 == 3 ? -1 : i;
        f.stream->push(grouped ? grouped_row(f.table, i, v, &done, &failed)
                               : std::make_unique<row_op>(f.table, i, v, &done, &failed));
    }
    REQUIRE(wait_until([&] { return done.load() + failed.load() == n; }));
    CHECK(failed.load() == 20);
    CHECK(done.load() == 180);
    auto got = f.seqs_in_id_order();
    CHECK(got.size() == 180);
    CHECK(std::is_sorted(got.begin(), got.end()));
}

TEST_CASE("connections killed mid-stream: nothing lost, nothing twice, order kept") {
    PGTEST_REQUIRE_DSN(d);
    bool grouped = false;
    SUBCASE("one statement per row") {}
    SUBCASE("grouped rows") { grouped = true; }
    fixture f(d, 50, 1ms);
    f.stream->start();
    std::atomic<int> done{0};
    const int n = 4000;
    std::atomic<bool> pushing{true};
    std::thread producer([&] {
        for (int i = 0; i < n; ++i) {
            f.stream->push(grouped ? grouped_row(f.table, i, i, &done) : std::make_unique<row_op>(f.table, i, i, &done));
            if (i % 10 == 0) std::this_thread::sleep_for(1ms);
        }
        pushing = false;
    });
    std::int64_t killed = 0;
    while (pushing) {
        std::this_thread::sleep_for(20ms);
        killed += f.terminate();
    }
    producer.join();
    REQUIRE(wait_until([&] { return done.load() == n; }, 30s));
    CHECK(killed >= 5);
    CHECK(f.seqs_in_id_order() == iota(n));
    if (grouped) CHECK(f.stream->stats().grouped > 0);
    MESSAGE("terminated " << killed << " sessions; " << f.stream->stats().connection_retries << " batches written again");
}

TEST_CASE("holds are released only once their row has committed") {
    PGTEST_REQUIRE_DSN(d);
    fixture f(d, 100, 2ms);
    f.stream->start();
    std::atomic<int> released{0}, visible_at_release{0};
    const int n = 20;
    for (int i = 0; i < n; ++i) {
        auto op = std::make_unique<row_op>(f.table, i, i);
        op->hold = std::make_shared<mqttd::publish_token>([&, i](mqtt::reason_code) {
            // The row must already be visible to another session.
            asio::io_context io2;
            pgtest::session s2(io2, d);
            auto r = s2.sql("SELECT count(*) FROM " + f.table + " WHERE seq = $1", {i});
            visible_at_release += *r.rows.get_int(0, 0) == 1;
            ++released;
        });
        f.stream->push(std::move(op));
    }
    REQUIRE(wait_until([&] { return released.load() == n; }));
    CHECK(visible_at_release.load() == n);
}

TEST_CASE("the hold of a row that fails is released with a failure, never as stored") {
    PGTEST_REQUIRE_DSN(d);
    fixture f(d, 100, 20ms);
    f.stream->start();
    std::mutex m;
    std::map<int, mqtt::reason_code> outcome;
    const int n = 10;
    for (int i = 0; i < n; ++i) {
        auto op = std::make_unique<row_op>(f.table, i, i == 4 ? -1 : i);  // v < 0 breaks the CHECK
        op->hold = std::make_shared<mqttd::publish_token>([&, i](mqtt::reason_code rc) {
            std::lock_guard lock(m);
            outcome[i] = rc;
        });
        f.stream->push(std::move(op));
    }
    REQUIRE(wait_until([&] {
        std::lock_guard lock(m);
        return outcome.size() == n;
    }));
    std::lock_guard lock(m);
    for (int i = 0; i < n; ++i)
        CHECK(outcome[i] == (i == 4 ? mqtt::reason_code::unspecified_error : mqtt::reason_code::success));
}

TEST_CASE("over the bound: rows that cannot wait are refused, the others queued; held-back holds wait") {
    PGTEST_REQUIRE_DSN(d);
    asio::io_context admin_io;
    pgtest::session admin(admin_io, d);
    const std::string table = pgtest::unique("bt_ws_bound");
    admin.sql("CREATE TABLE " + table + " (id serial primary key, seq integer UNIQUE, v integer)");
    io_thread io;
    auto p = pgtest::params(d);
    p.port = pgtest::closed_port();  // nothing listens: everything stays queued
    pg::pool pool(io.io.get_executor(), p);
    stream_params sp;
    sp.max_pending = 10;
    write_stream s(pool, sp);
    s.start();
    for (int i = 0; i < 10; ++i) CHECK(s.push(std::make_unique<row_op>(table, i, i)));
    CHECK(s.over_bound());
    auto refusable = std::make_unique<row_op>(table, 100, 0);
    refusable->when_over = shed::over_bound;
    CHECK_FALSE(s.push(std::move(refusable)));
    CHECK(s.push(std::make_unique<row_op>(table, 11, 11)));  // a held row is always queued
    CHECK(s.stats().refused == 1);
    CHECK(s.stats().pending == 11);
    // What can wait longer (a fetch, a connect row) is queued up to twice the bound.
    for (int i = 0; i < 9; ++i) {
        auto later = std::make_unique<row_op>(table, 200 + i, 0);
        later->when_over = shed::over_twice;
        CHECK(s.push(std::move(later)));
    }
    auto later = std::make_unique<row_op>(table, 300, 0);
    later->when_over = shed::over_twice;
    CHECK_FALSE(s.push(std::move(later)));
    CHECK(s.stats().refused == 2);
    CHECK(s.stats().pending == 20);

    std::atomic<bool> held_back_released{false};
    s.hold_back(std::make_shared<mqttd::publish_token>([&](mqtt::reason_code) { held_back_released = true; }));
    std::this_thread::sleep_for(100ms);
    CHECK_FALSE(held_back_released.load());

    // Shutdown with the server away: the rows are abandoned (logged), holds released.
    s.stop(std::chrono::steady_clock::now() + 300ms);
    CHECK(s.wait_stopped(std::chrono::steady_clock::now() + 5s));
    CHECK(s.stats().abandoned == 20);
    CHECK(s.stats().pending == 0);
    CHECK(held_back_released.load());
    io.sync([&] { pool.close(); });
    admin.sql("DROP TABLE " + table);
}

TEST_CASE("rows queued while the server is down are written in order once it is reachable") {
    PGTEST_REQUIRE_DSN(d);
    // A pool that cannot log in at first (wrong password), then can: the stream waits.
    fixture f(d, 100, 2ms);
    std::atomic<int> done{0};
    std::atomic<int> setup_calls{0};
    std::atomic<bool> allow{false};
    f.stream->set_setup([&]() -> asio::awaitable<std::error_code> {
        ++setup_calls;
        co_return allow ? std::error_code() : std::error_code(pg::errc::not_connected);
    });
    f.stream->start();
    for (int i = 0; i < 500; ++i) f.stream->push(std::make_unique<row_op>(f.table, i, i, &done));
    std::this_thread::sleep_for(200ms);
    CHECK(done.load() == 0);
    CHECK(setup_calls.load() >= 2);
    allow = true;
    REQUIRE(wait_until([&] { return done.load() == 500; }));
    CHECK(f.seqs_in_id_order() == iota(500));
}

namespace {
// A plain INSERT (no ON CONFLICT), for a table whose constraint is checked at COMMIT.
class plain_op final : public stream_op {
public:
    plain_op(std::string table, int v, std::atomic<int>& done, std::atomic<int>& failed)
        : table_(std::move(table)), v_(v), done_(done), failed_(failed) {}
    void build(pg::batch& b) const override { b.query("INSERT INTO " + table_ + " (v) VALUES ($1)", {v_}); }
    void done(std::span<pg::step_result>) override { ++done_; }
    void failed(const pg::step_result&) override { ++failed_; }
    std::string describe() const override { return "value " + std::to_string(v_); }
    const std::string& table() const { return table_; }
    int v() const { return v_; }

private:
    std::string table_;
    int v_;
    std::atomic<int>& done_;
    std::atomic<int>& failed_;
};

class plain_group final : public op_group {
public:
    void build(pg::batch& b, std::span<const stream_op* const> ops) const override {
        pg::array_literal vs;
        for (const auto* op : ops) vs.add(std::int64_t{static_cast<const plain_op&>(*op).v()});
        b.query("INSERT INTO " + static_cast<const plain_op&>(*ops.front()).table() +
                    " (v) SELECT v FROM unnest($1::integer[]) WITH ORDINALITY AS t(v, n) ORDER BY n",
                {vs.str()});
    }
};
const plain_group plains;
}  // namespace

TEST_CASE("a failure at COMMIT (deferred constraint): the rows are written one by one, the culprit fails alone") {
    PGTEST_REQUIRE_DSN(d);
    fixture f(d, 1000, 20ms);
    const auto t = pgtest::unique("bt_ws_deferred");
    f.admin.sql("CREATE TABLE " + t + " (id serial, v integer, CONSTRAINT " + t +
                "_v UNIQUE (v) DEFERRABLE INITIALLY DEFERRED)");
    bool grouped = false;
    SUBCASE("one statement per row") {}
    SUBCASE("grouped rows") { grouped = true; }
    f.stream->start();
    std::atomic<int> done{0}, failed{0};
    for (int v : {1, 2, 3, 2, 4}) {
        auto op = std::make_unique<plain_op>(t, v, done, failed);
        if (grouped) op->group = &plains;
        f.stream->push(std::move(op));
    }
    REQUIRE(wait_until([&] { return done.load() + failed.load() == 5; }));
    CHECK(done.load() == 4);
    CHECK(failed.load() == 1);
    auto r = f.admin.sql("SELECT string_agg(v::text, ',' ORDER BY id) FROM " + t);
    CHECK(r.rows.get(0, 0) == "1,2,3,4");
    f.admin.sql("DROP TABLE " + t);
}

TEST_CASE("a long batch_delay does not delay the results of the batch sent") {
    PGTEST_REQUIRE_DSN(d);
    // A full batch goes out at once; one more row waits for batch_delay (10 s). The full
    // batch's rows complete meanwhile, not after the next batch's delay.
    fixture f(d, 10, 10s);
    f.stream->start();
    std::atomic<int> done{0};
    for (int i = 0; i < 11; ++i) f.stream->push(std::make_unique<row_op>(f.table, i, i, &done));
    CHECK(wait_until([&] { return done.load() >= 10; }, 5s));
    CHECK(done.load() == 10);  // the eleventh still waits for its delay
}

TEST_CASE("a batch failing at COMMIT: the batches chained behind it run after it is written again") {
    PGTEST_REQUIRE_DSN(d);
    // Small batches pushed at once, each sent while the one before awaits its results. A failure
    // at COMMIT ends the transaction (no aborted block protects what follows): only the
    // chain keeps the next batches from committing first.
    fixture f(d, 5, 1ms);
    const auto t = pgtest::unique("bt_ws_chain_deferred");
    f.admin.sql("CREATE TABLE " + t + " (id serial, v integer, CONSTRAINT " + t +
                "_v UNIQUE (v) DEFERRABLE INITIALLY DEFERRED)");
    f.stream->start();
    std::atomic<int> done{0}, failed{0};
    const int n = 60;
    std::string want;
    for (int i = 0; i < n; ++i) {
        const int v = i == 23 ? 21 : i;  // fails the COMMIT of its batch
        f.stream->push(std::make_unique<plain_op>(t, v, done, failed));
        if (i != 23) want += (want.empty() ? "" : ",") + std::to_string(v);
    }
    REQUIRE(wait_until([&] { return done.load() + failed.load() == n; }));
    CHECK(failed.load() == 1);
    auto r = f.admin.sql("SELECT string_agg(v::text, ',' ORDER BY id) FROM " + t);
    CHECK(r.rows.get(0, 0) == want);
    CHECK(f.stream->stats().chained > 0);
    f.admin.sql("DROP TABLE " + t);
}

TEST_CASE("own-segment operations after a failed transaction in the same batch are written, not failed") {
    PGTEST_REQUIRE_DSN(d);
    fixture f(d, 1000, 20ms);
    f.stream->start();
    std::atomic<int> done{0}, failed{0};
    // Rows 0..9 share a transaction (row 5 fails), rows 10..19 are each a segment of their
    // own behind it, as SQL actions are: the aborted transaction must not take them down.
    for (int i = 0; i < 20; ++i) {
        auto op = std::make_unique<row_op>(f.table, i, i == 5 ? -1 : i, &done, &failed);
        op->own_segment = i >= 10;
        f.stream->push(std::move(op));
    }
    REQUIRE(wait_until([&] { return done.load() + failed.load() == 20; }));
    CHECK(failed.load() == 1);
    CHECK(done.load() == 19);
    auto want = iota(20);
    want.erase(want.begin() + 5);
    auto got = f.seqs_in_id_order();
    std::sort(got.begin(), got.end());
    CHECK(got == want);
}

TEST_CASE("a transient error (serialization failure) is retried, not counted against the row") {
    PGTEST_REQUIRE_DSN(d);
    fixture f(d, 1000, 20ms);
    // A trigger refuses the first two attempts at row 7 with SQLSTATE 40001, as a
    // conflicting transaction would: every row must end up committed and reported done.
    // The attempts are counted in a sequence, which the rollbacks do not undo.
    const auto fn = pgtest::unique("bt_ws_flaky");
    const auto seq = pgtest::unique("bt_ws_seq");
    f.admin.sql("CREATE SEQUENCE " + seq);
    f.admin.sql("CREATE FUNCTION " + fn + "() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                "IF NEW.seq = 7 AND nextval('" + seq + "') <= 2 THEN "
                "  RAISE EXCEPTION 'conflict' USING ERRCODE = 'serialization_failure'; "
                "END IF; RETURN NEW; END $$");
    f.admin.sql("CREATE TRIGGER flaky BEFORE INSERT ON " + f.table + " FOR EACH ROW EXECUTE FUNCTION " + fn + "()");
    f.stream->start();
    std::atomic<int> done{0}, failed{0};
    for (int i = 0; i < 20; ++i) f.stream->push(std::make_unique<row_op>(f.table, i, i, &done, &failed));
    REQUIRE(wait_until([&] { return done.load() + failed.load() == 20; }));
    CHECK(failed.load() == 0);
    CHECK(done.load() == 20);
    CHECK(f.seqs_in_id_order() == iota(20));
    CHECK(f.stream->stats().connection_retries >= 2);
    f.admin.sql("DROP TRIGGER flaky ON " + f.table);
    f.admin.sql("DROP FUNCTION " + fn + "()");
    f.admin.sql("DROP SEQUENCE " + seq);
}

namespace {
// Counts the rows of the table when it runs: an ungrouped operation between grouped ones.
class count_op final : public stream_op {
public:
    count_op(std::string table, std::atomic<std::int64_t>& seen) : table_(std::move(table)), seen_(seen) {}
    void build(pg::batch& b) const override { b.query("SELECT count(*) FROM " + table_); }
    void done(std::span<pg::step_result> r) override { seen_ = *r[0].rows.get_int(0, 0); }
    std::string describe() const override { return "count"; }

private:
    std::string table_;
    std::atomic<std::int64_t>& seen_;
};

}  // namespace

TEST_CASE("grouped operations: one statement per group for many rows, in order, around the ungrouped ones") {
    PGTEST_REQUIRE_DSN(d);
    // A long delay: every operation goes in one batch, however slowly they are pushed.
    fixture f(d, 1000, 300ms);
    const auto other = pgtest::unique("bt_ws_other");
    f.admin.sql("CREATE TABLE " + other + " (id serial, v integer)");
    f.stream->start();
    std::atomic<int> done{0}, failed{0};
    std::atomic<std::int64_t> seen_between{-1};
    // rows 0..99, a count, rows 100..199; each row followed by a row of another group.
    for (int i = 0; i < 200; ++i) {
        if (i == 100) f.stream->push(std::make_unique<count_op>(f.table, seen_between));
        f.stream->push(grouped_row(f.table, i, i, &done));
        auto o = std::make_unique<plain_op>(other, i, done, failed);
        o->group = &plains;
        f.stream->push(std::move(o));
    }
    REQUIRE(wait_until([&] { return done.load() == 400 && f.stream->stats().pending == 0; }));
    CHECK(f.seqs_in_id_order() == iota(200));
    auto r = f.admin.sql("SELECT string_agg(v::text, ',' ORDER BY id) = string_agg(v::text, ',' ORDER BY v) FROM " + other);
    CHECK(r.rows.get(0, 0) == "t");
    // The count ran after the rows before it and before the rows after it.
    CHECK(seen_between.load() == 100);
    const auto st = f.stream->stats();
    CHECK(st.committed == 401);
    CHECK(st.grouped == 400);
    CHECK(st.batches == 1);
    f.admin.sql("DROP TABLE " + other);
}

TEST_CASE("a batch takes no more operations than batch_bytes allow, one at least") {
    PGTEST_REQUIRE_DSN(d);
    fixture f(d, 1000, 300ms);
    f.stream->start();
    std::atomic<int> done{0};
    // Each counts for 12 MiB: two fit in the default 32 MiB, a third does not.
    for (int i = 0; i < 10; ++i) {
        auto op = grouped_row(f.table, i, i, &done);
        op->bytes = 12u << 20;
        f.stream->push(std::move(op));
    }
    auto big = std::make_unique<row_op>(f.table, 10, 10, &done);
    big->bytes = 100u << 20;  // more than a batch may hold: a batch of its own
    f.stream->push(std::move(big));
    REQUIRE(wait_until([&] { return done.load() == 11; }));
    CHECK(f.seqs_in_id_order() == iota(11));
    CHECK(f.stream->stats().batches == 6);
}
