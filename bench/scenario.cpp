#include "bench/scenario.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <cmath>
#include <cstdio>
#include <functional>
#include <optional>
#include <thread>

#include "bench/client.hpp"
#include "bench/flow.hpp"
#include "bench/io_pool.hpp"
#include "bench/proc_stats.hpp"

namespace bench {

namespace {

namespace asio = boost::asio;
namespace json = boost::json;
using asio::awaitable;
using std::chrono::milliseconds;

// How long one client may take from TCP connect to CONNACK (and SUBACK).
constexpr auto join_timeout = std::chrono::seconds(30);
// After publishing stops, how long deliveries may go without progress before the
// missing ones count as lost.
constexpr auto drain_stall = milliseconds(1000);
// How long a disconnect of every client may take.
constexpr auto close_timeout = std::chrono::seconds(5);

double seconds_between(clock::time_point a, clock::time_point b) {
    return std::chrono::duration<double>(b - a).count();
}

// Rounded to what the measurement supports; a whole number is written as an integer so
// the result lines stay readable (Boost.JSON writes every double in E notation).
json::value round_to(double v, int decimals) {
    double scale = std::pow(10.0, decimals);
    double r = std::round(v * scale) / scale;
    if (r == std::trunc(r) && std::abs(r) < 1e15) return static_cast<std::int64_t>(r);
    return r;
}

json::object latency_json(const histogram& h) {
    auto us = [](double ns) { return round_to(ns / 1000.0, ns < 100'000 ? 1 : 0); };
    return {{"count", h.count()},
            {"mean", us(h.mean())},
            {"p50", us(static_cast<double>(h.quantile(0.50)))},
            {"p95", us(static_cast<double>(h.quantile(0.95)))},
            {"p99", us(static_cast<double>(h.quantile(0.99)))},
            {"p999", us(static_cast<double>(h.quantile(0.999)))},
            {"max", us(static_cast<double>(h.max()))}};
}

struct totals {
    std::uint64_t connects = 0, connect_failures = 0, subscribed = 0, published = 0, acked = 0, delivered = 0;
    std::uint64_t closed = 0, unexpected_closes = 0;
    std::int64_t last_connack_ns = 0, last_delivery_ns = 0;
};

// The counters and the processes' state at one moment, for the differences of a phase.
struct snapshot {
    clock::time_point at;
    totals counts;
    std::optional<process_sample> broker;
    std::optional<machine_cpu_sample> machine;
    double own_cpu = 0;
    double db_cpu = 0;  // summed over --db-pids
};

// Connects one client and, given a filter, subscribes it.
awaitable<bool> join(std::shared_ptr<client> c, asio::ip::tcp::endpoint broker, connect_params p,
                     std::optional<std::string> filter, mqtt::qos q, clock::time_point deadline) {
    // Kept out of if-conditions: GCC 12 miscompiles a co_await there (the frame's resume
    // point is corrupted and the coroutine traps on its first resumption).
    bool ok = co_await c->connect(broker, std::move(p), deadline);
    if (ok && filter) ok = co_await c->subscribe(std::move(*filter), q, deadline);
    co_return ok;
}

struct launch_state {
    std::atomic<std::size_t> finished{0};
    std::atomic<std::size_t> succeeded{0};
    // Closed loop (no --connect-rate): the handshakes made ready by the main thread, each
    // started by the completion of an earlier one on a generator thread.
    std::vector<std::pair<std::shared_ptr<client>, std::optional<awaitable<bool>>>> ready;
    std::atomic<std::size_t> next{0};
    std::atomic<bool> abandoned{false};
};

class controller {
public:
    explicit controller(const options& o)
        : o_(o),
          pool_(o.threads),
          broker_(asio::ip::make_address(o.host), o.port),
          started_(clock::now()),
          deadline_(started_ + o.timeout),
          next_tick_(started_ + std::chrono::seconds(1)) {
        last_ = take_snapshot();
    }

    json::object run() {
        result_ = {{"scenario", to_string(o_.scenario)}, {"label", o_.label}, {"threads", o_.threads}};
        switch (o_.scenario) {
            case pattern::p2p:
            case pattern::fanout:
            case pattern::fanin: run_traffic(); break;
            case pattern::storm: run_storm(); break;
            case pattern::idle: run_idle(); break;
            case pattern::drain: run_drain(); break;
        }
        finish();
        return std::move(result_);
    }

private:
    using starter = std::function<awaitable<bool>(std::size_t, std::shared_ptr<client>)>;

    // ------------------------------------------------------------ scenarios

    void run_traffic() {
        const bool p2p = o_.scenario == pattern::p2p;
        const unsigned subscribers = p2p ? o_.publishers : o_.subscribers;
        // How many deliveries one publish makes.
        const std::uint64_t fanout =
            o_.scenario == pattern::fanout || (o_.scenario == pattern::fanin && !o_.shared) ? subscribers : 1;
        const auto q = static_cast<mqtt::qos>(o_.qos);
        result_.insert({{"publishers", o_.publishers}, {"subscribers", subscribers}, {"qos", o_.qos},
                        {"payload", o_.payload}, {"rate", round_to(o_.rate, 3)}, {"inflight", o_.inflight}, {"window", o_.window},
                        {"shared", o_.shared}});

        auto publish_topic = [&](std::size_t i) {
            switch (o_.scenario) {
                case pattern::p2p: return o_.topic_prefix + "/p2p/" + std::to_string(i);
                case pattern::fanin: return o_.topic_prefix + "/fanin/" + std::to_string(i);
                default: return o_.topic_prefix + "/fanout";
            }
        };
        auto filter = [&](std::size_t i) {
            switch (o_.scenario) {
                case pattern::p2p: return publish_topic(i);
                case pattern::fanin: return (o_.shared ? "$share/bench/" : "") + o_.topic_prefix + "/fanin/+";
                default: return o_.topic_prefix + "/fanout";
            }
        };

        phase("subscribe");
        auto subscribed = launch(subscribers, [&](std::size_t i, std::shared_ptr<client> c) {
            return join(std::move(c), broker_, params("sub", i), filter(i), q, join_deadline());
        });
        phase("connect");
        const auto first_publisher = clients_.size();
        auto connected = launch(o_.publishers, [&](std::size_t i, std::shared_ptr<client> c) {
            return join(std::move(c), broker_, params("pub", i), std::nullopt, q, join_deadline());
        });
        if (subscribed < subscribers || connected < o_.publishers) {
            fail("only " + std::to_string(subscribed) + " of " + std::to_string(subscribers) + " subscribers and " +
                 std::to_string(connected) + " of " + std::to_string(o_.publishers) + " publishers joined");
            return;
        }

        phase("warmup");
        flags_.publishing = true;
        std::vector<publish_params> publishing;
        for (std::size_t i = 0; i < o_.publishers; ++i) {
            auto& c = clients_[first_publisher + i];
            auto flow = flows_.add(c->executor(), [w = std::weak_ptr<client>(c)] {
                if (auto c = w.lock()) c->wake();
            });
            publishing.push_back({publish_topic(i), q, o_.payload, o_.rate, o_.inflight, o_.window, flow, fanout});
        }
        for (std::size_t i = 0; i < o_.publishers; ++i) {
            auto c = clients_[first_publisher + i];
            asio::co_spawn(c->executor(), [c, p = publishing[i]] { return c->publish(p); }, asio::detached);
        }
        sleep_for(o_.warmup);

        phase("measure");
        auto from = take_snapshot();
        flags_.measuring = true;
        sleep_for(o_.duration);
        flags_.measuring = false;
        auto to = take_snapshot();
        flags_.publishing = false;

        phase("drain");
        settle_deliveries([&] { return sum().published * fanout; });
        auto end = sum();
        const double window = seconds_between(from.at, to.at);
        const auto delivered = to.counts.delivered - from.counts.delivered;
        result_.insert({{"duration_s", round_to(window, 3)},
                        {"published", to.counts.published - from.counts.published},
                        {"delivered", delivered},
                        {"pub_per_s", round_to(static_cast<double>(to.counts.published - from.counts.published) / window, 0)},
                        {"msgs_per_s", round_to(static_cast<double>(delivered) / window, 0)},
                        {"expected_total", end.published * fanout},
                        {"delivered_total", end.delivered},
                        {"lost", end.published * fanout > end.delivered ? end.published * fanout - end.delivered : 0}});
        window_usage(from, to, delivered);
        measure_latency_ = true;
    }

    void run_storm() {
        result_.insert({{"connections", o_.connections}, {"connect_rate", round_to(o_.connect_rate, 3)},
                        {"connect_concurrency", o_.connect_concurrency}});
        phase("storm");
        snapshot from;
        auto ok = launch(
            o_.connections,
            [&](std::size_t i, std::shared_ptr<client> c) {
                return join(std::move(c), broker_, params("storm", i), std::nullopt, mqtt::qos::at_most_once,
                            join_deadline());
            },
            [&] { from = take_snapshot(); });
        auto to = take_snapshot();
        connect_rate(from, ok);
        window_usage(from, to, ok, "connect");
        if (ok < o_.connections) fail(std::to_string(o_.connections - ok) + " connects failed");
    }

    void run_idle() {
        result_.insert({{"connections", o_.connections}});
        if (!o_.broker_pid) {
            fail("idle needs --broker-pid");
            return;
        }
        // The first connection sets up what every later one shares (thread caches, the
        // session registry); it is not part of the per-connection cost.
        phase("probe");
        launch(1, [&](std::size_t i, std::shared_ptr<client> c) {
            return join(std::move(c), broker_, params("probe", i), std::nullopt, mqtt::qos::at_most_once, join_deadline());
        });
        sleep_for(milliseconds(500));
        auto from = take_snapshot();
        phase("connect");
        auto ok = launch(o_.connections, [&](std::size_t i, std::shared_ptr<client> c) {
            return join(std::move(c), broker_, params("idle", i), std::nullopt, mqtt::qos::at_most_once, join_deadline());
        });
        connect_rate(from, ok);
        phase("idle");
        sleep_for(milliseconds(1000));
        auto to = take_snapshot();
        if (ok < o_.connections) fail(std::to_string(o_.connections - ok) + " connects failed");
        if (!from.broker || !to.broker || ok == 0) return;
        auto grown = static_cast<double>(to.broker->rss_kib) - static_cast<double>(from.broker->rss_kib);
        result_["idle"] = {{"connections", ok},
                           {"rss_kib_before", from.broker->rss_kib},
                           {"rss_kib_after", to.broker->rss_kib},
                           {"bytes_per_connection", round_to(grown * 1024.0 / static_cast<double>(ok), 0)}};
    }

    void run_drain() {
        const auto topic = o_.topic_prefix + "/drain";
        const auto q = mqtt::qos::at_least_once;
        result_.insert({{"messages", o_.messages}, {"resubscribe", o_.resubscribe}, {"qos", 1}, {"payload", o_.payload}});
        // Without --resubscribe the subscriber keeps a persistent session (clean session 0)
        // and the broker queues for it; with it, it comes back clean and subscribes again,
        // so the messages come from a backend's store.
        auto subscriber = [&](bool subscribes) {
            return [&, subscribes](std::size_t, std::shared_ptr<client> c) {
                connect_params p = params("drain", 0);
                p.clean_session = o_.resubscribe;
                return join(std::move(c), broker_, p, subscribes ? std::optional(topic) : std::nullopt, q, join_deadline());
            };
        };

        phase("subscribe");
        if (launch(1, subscriber(true)) != 1) return fail("the subscriber could not subscribe");
        disconnect_and_wait(clients_.back());
        // Let the broker see the subscriber gone before the first message.
        sleep_for(milliseconds(200));

        phase("publish");
        if (launch(1, [&](std::size_t i, std::shared_ptr<client> c) {
                return join(std::move(c), broker_, params("drainpub", i), std::nullopt, q, join_deadline());
            }) != 1)
            return fail("the publisher could not connect");
        auto publisher = clients_.back();
        publish_params p{topic, q, o_.payload, 0, o_.inflight};
        p.count = o_.messages;
        asio::co_spawn(publisher->executor(), [publisher, p] { return publisher->publish(p); }, asio::detached);
        const auto publish_started = clock::now();
        if (!wait_until([&] { return sum().acked >= o_.messages; }, clock::now() + std::chrono::seconds(60)))
            return fail("only " + std::to_string(sum().acked) + " of " + std::to_string(o_.messages) + " messages acknowledged");
        const double publish_s = seconds_between(publish_started, clock::now());
        disconnect_and_wait(publisher);
        // A backend that acknowledges before it commits (publish_ack = async) gets a moment
        // to finish writing.
        sleep_for(milliseconds(500));

        phase("drain");
        auto from = take_snapshot();
        auto back = launch(1, subscriber(o_.resubscribe));
        settle_deliveries([&] { return from.counts.delivered + o_.messages; });
        auto to = take_snapshot();
        const auto received = to.counts.delivered - from.counts.delivered;
        const double drain_s = received ? static_cast<double>(to.counts.last_delivery_ns - to_ns(from.at)) / 1e9 : 0.0;
        result_["drain"] = {{"received", received},
                            {"ms", round_to(drain_s * 1000.0, 1)},
                            {"publish_s", round_to(publish_s, 3)}};
        if (drain_s > 0) result_["msgs_per_s"] = round_to(static_cast<double>(received) / drain_s, 0);
        window_usage(from, to, received);
        if (back != 1) fail("the subscriber could not come back");
        else if (received < o_.messages) fail("only " + std::to_string(received) + " of " + std::to_string(o_.messages) + " messages came back");
    }

    // ------------------------------------------------------------ building blocks

    connect_params params(std::string_view role, std::size_t i) const {
        return {o_.id_prefix + "-" + std::string(role) + "-" + std::to_string(i), true, o_.keepalive};
    }

    clock::time_point join_deadline() const { return std::min(clock::now() + join_timeout, deadline_); }

    // Creates `n` clients and starts `start` on each, at most connect_concurrency of them
    // unfinished at once and at most connect_rate per second; returns when all are done
    // (or the run's deadline passed) with how many succeeded. `starting` runs just before
    // the first one starts.
    std::size_t launch(std::size_t n, const starter& start, const std::function<void()>& starting = {}) {
        if (o_.connect_rate > 0) {
            if (starting) starting();
            return launch_paced(n, start);
        }
        // As fast as the concurrency allows: a finished handshake starts the next one on
        // the generator's own thread, so no launcher thread polls and competes with the
        // broker for a core.
        auto state = std::make_shared<launch_state>();
        state->ready.reserve(n);
        for (std::size_t i = 0; i < n; ++i) {
            auto c = new_client();
            state->ready.emplace_back(c, start(i, c));
        }
        const auto first = std::min<std::size_t>(n, o_.connect_concurrency);
        state->next = first;
        if (starting) starting();
        for (std::size_t i = 0; i < first; ++i) start_ready(state, i);
        if (!wait_until([&] { return state->finished.load() == n; }, deadline_)) state->abandoned = true;
        return state->succeeded.load();
    }

    static void start_ready(const std::shared_ptr<launch_state>& state, std::size_t i) {
        auto& [c, handshake] = state->ready[i];
        auto work = std::move(*handshake);
        handshake.reset();
        asio::co_spawn(c->executor(), std::move(work), [state](std::exception_ptr, bool ok) {
            if (ok) state->succeeded.fetch_add(1);
            state->finished.fetch_add(1);
            if (state->abandoned) return;
            if (auto next = state->next.fetch_add(1); next < state->ready.size()) start_ready(state, next);
        });
    }

    // With --connect-rate: the main thread starts each handshake at its time.
    std::size_t launch_paced(std::size_t n, const starter& start) {
        auto state = std::make_shared<launch_state>();
        const auto begin = clock::now();
        std::size_t launched = 0;
        for (; launched < n; ++launched) {
            auto at = begin + std::chrono::duration_cast<clock::duration>(
                                  std::chrono::duration<double>(static_cast<double>(launched) / o_.connect_rate));
            if (!wait_until([&] { return clock::now() >= at; }, deadline_, std::chrono::microseconds(100))) break;
            if (!wait_until([&] { return launched - state->finished.load() < o_.connect_concurrency; }, deadline_,
                            std::chrono::microseconds(100)))
                break;
            auto c = new_client();
            asio::co_spawn(c->executor(), start(launched, c), [state](std::exception_ptr, bool ok) {
                if (ok) state->succeeded.fetch_add(1);
                state->finished.fetch_add(1);
            });
        }
        wait_until([&] { return state->finished.load() == launched; }, deadline_);
        return state->succeeded.load();
    }

    std::shared_ptr<client> new_client() {
        auto& w = pool_.next();
        auto c = std::make_shared<client>(w.io, w.metrics, flags_, flows_);
        clients_.push_back(c);
        return c;
    }

    // Polls `done` until it holds or the deadline passes, printing progress on the way.
    bool wait_until(const std::function<bool()>& done, clock::time_point deadline,
                    clock::duration poll = milliseconds(2)) {
        deadline = std::min(deadline, deadline_);
        for (;;) {
            if (done()) return true;
            auto now = clock::now();
            if (now >= next_tick_) tick(now);
            if (now >= deadline) {
                if (now >= deadline_ && !timed_out_) {
                    timed_out_ = true;
                    fail("the run's time limit passed");
                }
                return false;
            }
            std::this_thread::sleep_for(std::min<clock::duration>(poll, deadline - now));
        }
    }

    void sleep_for(clock::duration d) {
        auto until = clock::now() + d;
        wait_until([&] { return clock::now() >= until; }, until);
    }

    // Waits until the expected deliveries are in, or until they stop coming.
    void settle_deliveries(const std::function<std::uint64_t()>& expected) {
        auto seen = sum().delivered;
        auto stall_at = clock::now() + drain_stall;
        wait_until(
            [&] {
                auto now = sum().delivered;
                if (now >= expected()) return true;
                if (now != seen) {
                    seen = now;
                    stall_at = clock::now() + drain_stall;
                }
                return clock::now() >= stall_at;
            },
            clock::now() + std::chrono::seconds(60));
    }

    void disconnect_and_wait(const std::shared_ptr<client>& c) {
        auto closed = sum().closed;
        asio::post(c->executor(), [c] { c->disconnect(); });
        wait_until([&] { return sum().closed > closed; }, clock::now() + close_timeout);
    }

    totals sum() const {
        totals t;
        for (const auto& w : pool_.workers()) {
            const auto& m = w->metrics;
            t.connects += m.connects.load();
            t.connect_failures += m.connect_failures.load();
            t.subscribed += m.subscribed.load();
            t.published += m.published.load();
            t.acked += m.acked.load();
            t.delivered += m.delivered.load();
            t.closed += m.closed.load();
            t.unexpected_closes += m.unexpected_closes.load();
            t.last_connack_ns = std::max(t.last_connack_ns, m.last_connack_ns.load());
            t.last_delivery_ns = std::max(t.last_delivery_ns, m.last_delivery_ns.load());
        }
        return t;
    }

    snapshot take_snapshot() const {
        snapshot s{clock::now(), sum(), std::nullopt, sample_machine_cpu(), own_cpu_seconds()};
        if (o_.broker_pid) s.broker = sample_process(*o_.broker_pid);
        for (int pid : o_.db_pids)
            if (auto p = sample_process(pid)) s.db_cpu += p->cpu_seconds;
        return s;
    }

    void phase(std::string name) { phase_ = std::move(name); }

    void fail(const std::string& why) {
        if (!result_.contains("error")) result_["error"] = why;
    }

    void tick(clock::time_point now) {
        auto s = take_snapshot();
        const double dt = seconds_between(last_.at, s.at);
        auto per_s = [&](std::uint64_t a, std::uint64_t b) { return static_cast<double>(b - a) / dt; };
        std::string broker;
        if (s.broker && last_.broker)
            broker = " | broker rss " + std::to_string(s.broker->rss_kib / 1024) + " MiB cpu " +
                     std::to_string(static_cast<int>(100 * (s.broker->cpu_seconds - last_.broker->cpu_seconds) / dt)) + "%";
        std::fprintf(stderr, "[%s %s] %5.1fs %-9s clients %llu (+%.0f/s) | pub %.0f/s ack %.0f/s recv %.0f/s%s\n",
                     o_.label.c_str(), std::string(to_string(o_.scenario)).c_str(), seconds_between(started_, now),
                     phase_.c_str(), static_cast<unsigned long long>(s.counts.connects - s.counts.closed + s.counts.connect_failures),
                     per_s(last_.counts.connects, s.counts.connects), per_s(last_.counts.published, s.counts.published),
                     per_s(last_.counts.acked, s.counts.acked), per_s(last_.counts.delivered, s.counts.delivered), broker.c_str());
        last_ = std::move(s);
        next_tick_ = now + std::chrono::seconds(1);
    }

    void connect_rate(const snapshot& from, std::size_t ok) {
        auto t = sum();
        const double s = static_cast<double>(t.last_connack_ns - to_ns(from.at)) / 1e9;
        result_["connects"] = ok;
        result_["connect_failures"] = t.connect_failures;
        if (ok && s > 0) result_["connects_per_s"] = round_to(static_cast<double>(ok) / s, 0);
        measure_connects_ = true;
    }

    // What the broker, the generator and the machine spent over a phase.
    // `per`: how many messages (or connects, for `unit` "connect") the CPU time is divided by.
    void window_usage(const snapshot& from, const snapshot& to, std::uint64_t per, std::string_view unit = "msg") {
        const double s = seconds_between(from.at, to.at);
        // CPU time comes in clock ticks (10 ms): over a shorter phase it says nothing.
        const bool cpu_meaningful = s >= 0.1;
        if (from.broker && to.broker) {
            const double cpu = to.broker->cpu_seconds - from.broker->cpu_seconds;
            json::object b{{"rss_kib", to.broker->rss_kib}, {"peak_kib", to.broker->peak_kib}};
            if (cpu_meaningful) {
                b["cpu_s"] = round_to(cpu, 3);
                b["cpu_pct"] = round_to(100 * cpu / s, 1);
                if (per) b["cpu_us_per_" + std::string(unit)] = round_to(cpu * 1e6 / static_cast<double>(per), 2);
            }
            result_["broker"] = std::move(b);
        }
        if (!cpu_meaningful) return;
        const double loader = 100 * (to.own_cpu - from.own_cpu) / s;
        const double db = 100 * (to.db_cpu - from.db_cpu) / s;
        result_["loader_cpu_pct"] = round_to(loader, 1);
        if (!o_.db_pids.empty()) result_["db_cpu_pct"] = round_to(db, 1);
        if (from.machine && to.machine) {
            // Percent of one core, like the others: what the rest of the machine took.
            const double busy = 100 * busy_fraction(*from.machine, *to.machine) * std::thread::hardware_concurrency();
            const double broker = from.broker && to.broker ? 100 * (to.broker->cpu_seconds - from.broker->cpu_seconds) / s : 0;
            result_["machine_busy_pct"] = round_to(busy, 1);
            result_["other_cpu_pct"] = round_to(std::max(0.0, busy - broker - loader - db), 1);
        }
    }

    void finish() {
        flags_.publishing = false;
        flags_.measuring = false;
        phase("close");
        for (auto& c : clients_) asio::post(c->executor(), [c] { c->disconnect(); });
        const auto all = clients_.size();
        wait_until([&] { return sum().closed >= all; }, clock::now() + close_timeout);
        pool_.stop();

        // The threads have stopped: their histograms can be read.
        histogram latency, ack_latency, connect_latency, connack_latency;
        for (const auto& w : pool_.workers()) {
            latency.merge(w->metrics.latency);
            ack_latency.merge(w->metrics.ack_latency);
            connect_latency.merge(w->metrics.connect_latency);
            connack_latency.merge(w->metrics.connack_latency);
        }
        if (measure_latency_) {
            result_["latency_us"] = latency_json(latency);
            if (ack_latency.count()) result_["ack_latency_us"] = latency_json(ack_latency);
        }
        if (measure_connects_) {
            result_["connect_latency_us"] = latency_json(connect_latency);
            result_["connack_latency_us"] = latency_json(connack_latency);
        }
        auto t = sum();
        result_["unexpected_closes"] = t.unexpected_closes;
        result_["elapsed_s"] = round_to(seconds_between(started_, clock::now()), 3);
        result_["complete"] = !result_.contains("error");
    }

    const options& o_;
    io_pool pool_;  // declared first: destroyed last, after everything that refers to it
    run_flags flags_;
    flow_table flows_;
    std::vector<std::shared_ptr<client>> clients_;
    asio::ip::tcp::endpoint broker_;
    const clock::time_point started_;
    const clock::time_point deadline_;
    clock::time_point next_tick_;
    snapshot last_;
    std::string phase_ = "start";
    json::object result_;
    bool timed_out_ = false;
    bool measure_latency_ = false;
    bool measure_connects_ = false;
};

}  // namespace

json::object run_scenario(const options& o) { return controller(o).run(); }

}  // namespace bench
