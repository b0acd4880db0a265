#include "persistence/pg_connection.hpp"

#include <libpq-fe.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/deferred.hpp>
#include <boost/asio/experimental/parallel_group.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <cassert>
#include <charconv>
#include <cstring>
#include <stdexcept>
#include <type_traits>

namespace mqttd::pg {

namespace asio = boost::asio;
using asio::experimental::make_parallel_group;
using asio::experimental::wait_for_one;
using descriptor_base = asio::posix::descriptor_base;

static_assert(std::is_same_v<oid, Oid>);

namespace {

connection::clock::time_point deadline_after(connection::clock::duration d) {
    auto now = connection::clock::now();
    if (d >= connection::clock::time_point::max() - now) return connection::clock::time_point::max();
    return now + d;
}

// libpq's messages span lines ("...failed: Connection refused\n\tIs the server
// running..."): make them one line for logs.
std::string one_line(const char* s) {
    std::string out;
    bool newline = false;
    for (const char* p = s ? s : ""; *p; ++p) {
        if (*p == '\n') {
            newline = true;
        } else if (*p != '\t') {
            if (newline && !out.empty()) out += "; ";
            newline = false;
            out.push_back(*p);
        }
    }
    return out;
}

bool is_fatal(const PGresult* r) {
    const char* sev = PQresultErrorField(r, PG_DIAG_SEVERITY_NONLOCALIZED);
    return sev && (std::strcmp(sev, "FATAL") == 0 || std::strcmp(sev, "PANIC") == 0);
}

std::string message_of(const PGresult* r) {
    const char* primary = PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY);
    if (!primary) return one_line(PQresultErrorMessage(r));
    std::string m = primary;
    if (const char* detail = PQresultErrorField(r, PG_DIAG_MESSAGE_DETAIL)) m.append(" (").append(detail).append(")");
    return m;
}

std::uint64_t affected_rows(PGresult* r) {
    const char* s = PQcmdTuples(r);
    std::uint64_t n = 0;
    std::from_chars(s, s + std::strlen(s), n);
    return n;
}

}  // namespace

// Marks the connection busy for one operation; when close() came meanwhile, ends the
// session once the operation's waits have all completed.
class connection::op_guard {
public:
    explicit op_guard(connection& c) : c_(c) {
        if (c_.busy_) throw std::logic_error("pg::connection: an operation is already pending");
        c_.busy_ = true;
    }
    ~op_guard() {
        c_.busy_ = false;
        if (c_.closing_) c_.finish();
    }
    op_guard(const op_guard&) = delete;
    op_guard& operator=(const op_guard&) = delete;

private:
    connection& c_;
};

connection::connection(executor_type ex) : ex_(ex), socket_(ex), timer_(ex), resolver_(ex) {}

connection::~connection() {
    // A pending operation's coroutine still refers to this object; see the header.
    assert(!busy_ && "pg::connection destroyed with an operation pending");
    finish();
}

void connection::finish() noexcept {
    timer_.cancel();
    resolver_.cancel();
    // Take the descriptor back from Asio first: it is libpq's to close.
    if (socket_.is_open()) socket_.release();
    if (conn_) PQfinish(conn_);
    conn_ = nullptr;
    state_ = state::disconnected;
    closing_ = false;
}

void connection::close() {
    if (!busy_) {
        finish();
        return;
    }
    // The pending operation wakes with operation_aborted, sees closing_, and op_guard
    // calls finish() once it has unwound: no wait is left pending on the descriptor.
    closing_ = true;
    boost::system::error_code ignored;
    socket_.cancel(ignored);
    timer_.cancel();
    resolver_.cancel();
}

bool connection::usable() const noexcept {
    return conn_ && state_ == state::ready && !closing_ && PQstatus(conn_) == CONNECTION_OK;
}

bool connection::in_transaction() const noexcept {
    if (!conn_) return false;
    auto s = PQtransactionStatus(conn_);
    return s == PQTRANS_INTRANS || s == PQTRANS_INERROR;
}

int connection::backend_pid() const noexcept { return conn_ ? PQbackendPID(conn_) : 0; }

std::vector<connection::statement_error> connection::failed_statements() const {
    std::vector<statement_error> out;
    for (const auto& s : statements_)
        if (s.ec) out.push_back({s.name, s.ec, s.message});
    return out;
}

void connection::prepare(std::string name, std::string sql, std::vector<oid> param_types) {
    for (const auto& s : statements_) {
        if (s.name != name) continue;
        if (s.sql != sql || s.types != param_types)
            throw std::invalid_argument("pg::connection::prepare: '" + name + "' is registered with other SQL");
        return;
    }
    statements_.push_back({std::move(name), std::move(sql), std::move(param_types)});
}

void connection::on_notice(void* self, const PGresult* r) {
    // libpq reports an error that arrives while no query is running (the FATAL sent
    // before the server hangs up, e.g. on pg_terminate_backend) as a notice. Ordinary
    // notices and warnings are dropped rather than printed on stderr, libpq's default.
    if (!is_fatal(r)) return;
    auto* c = static_cast<connection*>(self);
    if (c->state_ == state::ready) c->state_ = state::broken;
    c->last_error_ = message_of(r);
}

void connection::attach_socket() {
    if (socket_.is_open()) socket_.release();
    int fd = PQsocket(conn_);
    if (fd < 0) return;
    boost::system::error_code ec;
    // On failure the socket stays closed and the next wait reports bad_descriptor.
    socket_.assign(fd, ec);
}

asio::awaitable<connection::wake> connection::wait_socket(wait_for what, clock::time_point deadline) {
    timer_.expires_at(deadline);
    std::size_t winner = 0, timer_index = 0;
    boost::system::error_code ec;
    if (what == wait_for::read_or_write) {
        auto [order, read_ec, write_ec, timer_ec] =
            co_await make_parallel_group(socket_.async_wait(descriptor_base::wait_read, asio::deferred),
                                         socket_.async_wait(descriptor_base::wait_write, asio::deferred),
                                         timer_.async_wait(asio::deferred))
                .async_wait(wait_for_one(), asio::use_awaitable);
        winner = order[0];
        timer_index = 2;
        ec = winner == 0 ? read_ec : winner == 1 ? write_ec : timer_ec;
    } else {
        auto type = what == wait_for::read ? descriptor_base::wait_read : descriptor_base::wait_write;
        auto [order, socket_ec, timer_ec] =
            co_await make_parallel_group(socket_.async_wait(type, asio::deferred), timer_.async_wait(asio::deferred))
                .async_wait(wait_for_one(), asio::use_awaitable);
        winner = order[0];
        timer_index = 1;
        ec = winner == 0 ? socket_ec : timer_ec;
    }
    if (closing_) co_return wake::closed;
    if (winner == timer_index) co_return wake::timeout;  // expired, or cancelled from outside: give up either way
    if (ec == asio::error::operation_aborted) co_return wake::timeout;
    co_return ec ? wake::failed : wake::ready;
}

asio::awaitable<std::error_code> connection::resolve(conninfo& info, clock::time_point deadline) {
    std::string host(info.get("host"));
    // Unix sockets, explicit addresses and multi-host lists are left to libpq.
    if (host.empty() || !info.get("hostaddr").empty() || host.front() == '/' || host.front() == '@' ||
        host.find(',') != std::string::npos)
        co_return std::error_code{};
    boost::system::error_code ec;
    asio::ip::make_address(host, ec);
    if (!ec) co_return std::error_code{};  // already numeric: libpq does not look it up

    std::string port(info.get("port"));
    if (port.empty()) port = "5432";
    // getaddrinfo runs on Asio's resolver thread, never on this executor. It cannot be
    // interrupted; the system resolver's own timeouts bound it.
    auto [rec, results] = co_await resolver_.async_resolve(host, port, asio::as_tuple(asio::use_awaitable));
    if (closing_) co_return errc::closed;
    if (clock::now() >= deadline) co_return errc::timeout;
    if (rec || results.empty()) {
        last_error_ = "cannot resolve " + host + ": " + (rec ? rec.message() : "no address");
        co_return errc::connect_failed;
    }
    // libpq tries hostaddr entries in order; host (repeated, one per address) stays for
    // certificate name checks and the password file.
    std::string hosts, addrs;
    for (const auto& e : results) {
        std::string a = e.endpoint().address().to_string();
        if (("," + addrs + ",").find("," + a + ",") != std::string::npos) continue;
        if (!addrs.empty()) {
            hosts += ',';
            addrs += ',';
        }
        hosts += host;
        addrs += a;
    }
    info.set("host", hosts).set("hostaddr", addrs);
    co_return std::error_code{};
}

void connection::fail_connect(std::string why) {
    last_error_ = std::move(why);
    finish();
}

asio::awaitable<std::error_code> connection::connect(const conninfo& info, clock::duration timeout) {
    op_guard guard(*this);
    finish();
    sent_.clear();  // kept through a close, so that receive() reports what was lost
    state_ = state::connecting;
    last_error_.clear();
    const auto deadline = deadline_after(timeout);
    const std::string where = info.describe();
    auto timed_out = [&] {
        last_error_ = "connection to " + where + " timed out after " +
                      std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(timeout).count()) + " ms";
        finish();
        return std::error_code(errc::timeout);
    };

    conninfo resolved = info;
    if (auto ec = co_await resolve(resolved, deadline)) {
        if (ec == errc::closed) co_return ec;
        if (ec == errc::timeout) co_return timed_out();
        fail_connect("cannot connect to " + where + ": " + last_error_);
        co_return ec;
    }
    std::vector<const char*> keys, values;
    for (const auto& [k, v] : resolved.entries()) {
        keys.push_back(k.c_str());
        values.push_back(v.c_str());
    }
    keys.push_back(nullptr);
    values.push_back(nullptr);

    conn_ = PQconnectStartParams(keys.data(), values.data(), 0);
    if (!conn_) {
        fail_connect("cannot connect to " + where + ": out of memory");
        co_return errc::connect_failed;
    }
    PQsetNoticeReceiver(conn_, &connection::on_notice, this);
    // libpq's connect_timeout applies only to its blocking calls; the deadline here is ours.
    PostgresPollingStatusType poll = PQstatus(conn_) == CONNECTION_BAD ? PGRES_POLLING_FAILED : PGRES_POLLING_WRITING;
    for (;;) {
        // Each poll may close libpq's socket and open another (next address, SSL or GSS
        // fallback), possibly under the same number: register whatever it has now.
        attach_socket();
        if (poll == PGRES_POLLING_OK) break;
        if (poll == PGRES_POLLING_FAILED) {
            fail_connect("cannot connect to " + where + ": " + one_line(PQerrorMessage(conn_)));
            co_return errc::connect_failed;
        }
        wake w = co_await wait_socket(poll == PGRES_POLLING_READING ? wait_for::read : wait_for::write, deadline);
        if (w == wake::closed) co_return errc::closed;
        if (w == wake::timeout) co_return timed_out();
        if (w == wake::failed) {
            fail_connect("cannot connect to " + where + ": socket error");
            co_return errc::connect_failed;
        }
        poll = PQconnectPoll(conn_);
    }
    if (PQsetnonblocking(conn_, 1) != 0 || PQenterPipelineMode(conn_) != 1) {
        fail_connect("cannot set up the session with " + where + ": " + one_line(PQerrorMessage(conn_)));
        co_return errc::connect_failed;
    }
    state_ = state::ready;

    // Prepare every registered statement before anyone can use the session.
    for (auto& s : statements_) {
        s.sent = false;
        s.ec.clear();
        s.message.clear();
    }
    std::vector<pending> q;
    std::vector<step_result> no_steps;
    if (!send_prepares(q, true)) {
        fail_connect("cannot prepare statements on " + where + ": " + one_line(PQerrorMessage(conn_)));
        co_return errc::connection_lost;
    }
    if (!q.empty()) {
        auto out = co_await exchange(q, no_steps, deadline);
        if (out.ec == errc::closed) co_return out.ec;
        if (out.ec == errc::timeout) co_return timed_out();
        if (out.ec) {
            fail_connect("lost " + where + " while preparing statements: " + last_error_);
            co_return out.ec;
        }
    }
    if (!usable()) {
        fail_connect("lost " + where + " while preparing statements: " + last_error_);
        co_return errc::connection_lost;
    }
    co_return std::error_code{};
}

bool connection::send_prepares(std::vector<pending>& q, bool sync_each) {
    for (std::size_t i = 0; i < statements_.size(); ++i) {
        statement& s = statements_[i];
        if (s.sent) continue;
        if (!PQsendPrepare(conn_, s.name.c_str(), s.sql.c_str(), static_cast<int>(s.types.size()),
                           s.types.empty() ? nullptr : s.types.data()))
            return false;
        s.sent = true;
        q.push_back({pending::kind::prepare, static_cast<std::uint32_t>(i)});
        // A sync after each: one bad statement must not abort the preparation of the others
        // (except behind a chained batch, whose condition a Sync would end).
        if (!sync_each) continue;
        if (!PQpipelineSync(conn_)) return false;
        q.push_back({pending::kind::sync, 0});
    }
    return true;
}

bool connection::send_steps(const batch& b, std::vector<pending>& q, bool chain) {
    const char* arena = b.arena_.data();
    for (std::size_t i = 0; i < b.steps_.size(); ++i) {
        const batch::step& st = b.steps_[i];
        values_.clear();
        lengths_.clear();
        formats_.clear();
        types_.clear();
        for (std::uint32_t k = 0; k < st.param_count; ++k) {
            const batch::slot& sl = b.slots_[st.first_param + k];
            values_.push_back(sl.null ? nullptr : arena + sl.offset);
            lengths_.push_back(static_cast<int>(sl.length));
            formats_.push_back(sl.binary ? 1 : 0);
            types_.push_back(sl.bytea ? oids::bytea : oids::unspecified);
        }
        const char* text = arena + st.text_offset;
        const int n = static_cast<int>(st.param_count);
        const int result_format = static_cast<int>(st.result);
        int sent = st.prepared ? PQsendQueryPrepared(conn_, text, n, values_.data(), lengths_.data(), formats_.data(),
                                                     result_format)
                               : PQsendQueryParams(conn_, text, n, types_.data(), values_.data(), lengths_.data(),
                                                   formats_.data(), result_format);
        if (!sent) return false;
        q.push_back({pending::kind::step, static_cast<std::uint32_t>(i)});
        // Every segment ends with a Sync, which also makes the server flush its output; a
        // chained batch ends with a flush request alone.
        const bool last = i + 1 == b.steps_.size();
        if (last && chain) {
            if (!PQsendFlushRequest(conn_)) return false;
        } else if (st.sync_after || last) {
            if (!PQpipelineSync(conn_)) return false;
            q.push_back({pending::kind::sync, 0});
        }
    }
    return true;
}

std::error_code connection::error_of(const PGresult* r) const {
    const char* code = PQresultErrorField(r, PG_DIAG_SQLSTATE);
    if (code && pack_sqlstate(code) >= 0) return sqlstate_error(code);
    if (!conn_ || PQstatus(conn_) == CONNECTION_BAD || is_fatal(r)) return errc::connection_lost;
    return errc::client_error;
}

void connection::store(const pending& p, PGresult* r, std::vector<step_result>& out) {
    const ExecStatusType st = PQresultStatus(r);
    const bool good = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK;
    std::error_code ec;
    std::string msg;
    if (st == PGRES_PIPELINE_ABORTED) {
        ec = errc::pipeline_aborted;
    } else if (!good) {
        ec = error_of(r);
        msg = message_of(r);
        if (is_connection_error(ec) || is_fatal(r)) {
            if (state_ == state::ready) state_ = state::broken;
            last_error_ = msg;
        }
    }
    if (p.what == pending::kind::prepare) {
        statements_[p.index].ec = ec;
        statements_[p.index].message = std::move(msg);
        PQclear(r);
        return;
    }
    step_result& s = out[p.index];
    s.ec = ec;
    s.message = std::move(msg);
    s.rows = rowset();
    s.affected = good ? affected_rows(r) : 0;
    if (st == PGRES_TUPLES_OK)
        s.rows = rowset(r);  // takes ownership
    else
        PQclear(r);
}

asio::awaitable<connection::exchange_outcome> connection::exchange(const std::vector<pending>& q,
                                                                   std::vector<step_result>& out,
                                                                   clock::time_point deadline) {
    exchange_outcome o;
    bool got = false;  // q[o.done] is a statement whose result arrived; its NULL terminator is next
    bool flushed = false;
    while (o.done < q.size()) {
        if (!flushed) {
            const int f = PQflush(conn_);
            if (f < 0) {
                o.ec = errc::connection_lost;
                break;
            }
            flushed = f == 0;
        }
        // Read what has arrived even while still writing: a server that cannot send its
        // results stops reading our requests, and neither side would move again.
        const bool lost = PQconsumeInput(conn_) == 0;
        while (o.done < q.size() && !PQisBusy(conn_)) {
            PGresult* r = PQgetResult(conn_);
            const pending& p = q[o.done];
            if (p.what == pending::kind::sync) {
                const bool is_sync = r && PQresultStatus(r) == PGRES_PIPELINE_SYNC;
                PQclear(r);
                if (!is_sync) o.ec = errc::protocol_error;
                if (!is_sync) break;
                ++o.done;
            } else if (!r) {
                if (!got) {
                    if (!lost) o.ec = errc::protocol_error;
                    break;
                }
                got = false;
                ++o.done;
            } else if (PQresultStatus(r) == PGRES_PIPELINE_SYNC) {
                PQclear(r);
                o.ec = errc::protocol_error;
                break;
            } else {
                store(p, r, out);
                got = true;
            }
        }
        if (o.ec) break;
        if (lost || PQstatus(conn_) == CONNECTION_BAD) {
            o.ec = errc::connection_lost;
            break;
        }
        if (o.done == q.size()) break;
        const wake w = co_await wait_socket(flushed ? wait_for::read : wait_for::read_or_write, deadline);
        if (w == wake::ready) continue;
        o.ec = w == wake::closed ? errc::closed : w == wake::timeout ? errc::timeout : errc::connection_lost;
        break;
    }
    if (o.ec && o.ec != errc::closed) {
        if (state_ == state::ready) state_ = state::broken;
        if (o.ec == errc::connection_lost) {
            std::string why = one_line(PQerrorMessage(conn_));
            if (!why.empty()) last_error_ = std::move(why);
        }
    }
    co_return o;
}

asio::awaitable<batch_result> connection::run(const batch& b, clock::duration timeout) {
    if (!sent_.empty()) throw std::logic_error("pg::connection: run() with batches sent and not received");
    if (b.empty()) co_return batch_result{};
    const bool connected = usable();
    if (connected && send(b, false)) co_return co_await receive(timeout);
    batch_result res;
    res.steps.resize(b.size());
    for (auto& s : res.steps) {
        s.ec = connected ? errc::connection_lost : errc::not_connected;
        s.message = last_error_;
    }
    co_return res;
}

bool connection::send(const batch& b, bool chain) {
    if (busy_) throw std::logic_error("pg::connection: send() while an operation is pending");
    if (!usable() || b.empty()) return false;
    sent_batch s{&b, {}};
    s.q.reserve(b.size() * 2);
    // Behind a chained batch a Sync would end its condition.
    const bool behind_chain = !sent_.empty();
    const bool ok = send_prepares(s.q, !behind_chain) && send_steps(b, s.q, chain);
    if (!ok) {
        state_ = state::broken;
        last_error_ = one_line(PQerrorMessage(conn_));
        return false;
    }
    PQflush(conn_);  // under way now; receive() flushes the rest
    sent_.push_back(std::move(s));
    return true;
}

asio::awaitable<batch_result> connection::receive(clock::duration timeout) {
    if (sent_.empty()) throw std::logic_error("pg::connection: receive() with nothing sent");
    op_guard guard(*this);
    const sent_batch s = std::move(sent_.front());
    sent_.pop_front();
    const batch& b = *s.b;
    batch_result res;
    res.steps.resize(b.size());
    if (!usable()) {
        for (auto& st : res.steps) {
            st.ec = errc::connection_lost;
            st.message = last_error_;
        }
        co_return res;
    }
    const auto deadline = deadline_after(timeout);
    const exchange_outcome o = co_await exchange(s.q, res.steps, deadline);
    if (o.ec) {
        // What was not answered may or may not have run: report the connection's fate.
        const std::string why = o.ec == errc::closed ? std::string("connection closed") : last_error_;
        for (std::size_t k = o.done; k < s.q.size(); ++k) {
            if (s.q[k].what != pending::kind::step) continue;
            step_result& st = res.steps[s.q[k].index];
            if (st.ec && is_connection_error(st.ec)) continue;  // the server's own word (e.g. 57P01) says more
            st.ec = o.ec;
            st.message = why;
            st.rows = rowset();
        }
    }
    // Once a step met the connection's end, the steps after it did not run because of
    // that, not because of a statement error (libpq reports them as aborted).
    for (std::size_t i = 0, dead = b.size(); i < b.size(); ++i) {
        step_result& st = res.steps[i];
        if (dead < i && st.ec == errc::pipeline_aborted) {
            st.ec = errc::connection_lost;
            st.message = res.steps[dead].message;
        } else if (dead == b.size() && is_connection_error(st.ec)) {
            dead = i;
        }
    }
    if (o.ec) co_return res;
    // A step that used a statement the server refused to prepare: give its reason rather
    // than "prepared statement does not exist".
    for (std::size_t i = 0; i < b.steps_.size(); ++i) {
        step_result& st = res.steps[i];
        if (!b.steps_[i].prepared || st.ec != sqlstate::invalid_sql_statement_name) continue;
        std::string_view name(b.arena_.data() + b.steps_[i].text_offset);
        for (const auto& stmt : statements_) {
            if (stmt.name != name || !stmt.ec) continue;
            st.ec = stmt.ec;
            st.message = "preparing " + stmt.name + " failed: " + stmt.message;
        }
    }
    if (sent_.empty()) co_await end_pipeline(deadline);
    co_return res;
}

// With nothing more sent: ends a pipeline that a failure left skipping requests, and
// rolls back a transaction left failed, so that the session is clean for the next user;
// one left open (BEGIN without COMMIT) stays open: see in_transaction().
asio::awaitable<void> connection::end_pipeline(clock::time_point deadline) {
    if (usable() && PQpipelineStatus(conn_) == PQ_PIPELINE_ABORTED) {
        std::vector<pending> q{{pending::kind::sync, 0}};
        std::vector<step_result> none;
        if (!PQpipelineSync(conn_))
            state_ = state::broken;
        else
            co_await exchange(q, none, deadline);
    }
    if (usable() && PQtransactionStatus(conn_) == PQTRANS_INERROR) {
        batch rb;
        rb.rollback();
        std::vector<pending> rq;
        std::vector<step_result> rr(1);
        if (!send_steps(rb, rq))
            state_ = state::broken;
        else
            co_await exchange(rq, rr, deadline);
    }
}

bool connection::check_alive() {
    if (busy_ || !usable()) return usable();
    // Twice: the first read may bring the server's FATAL notice, the second its hang-up.
    for (int i = 0; i < 2 && usable(); ++i) {
        if (PQconsumeInput(conn_) == 0 || PQstatus(conn_) != CONNECTION_OK) {
            state_ = state::broken;
            last_error_ = one_line(PQerrorMessage(conn_));
        }
    }
    return usable();
}

}  // namespace mqttd::pg
