#include "broker/broker.hpp"

#include <unistd.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <fmt/format.h>

#include "broker/connection.hpp"
#include "broker/listener.hpp"
#include "broker/log.hpp"
#include "broker/sys_topics.hpp"
#include "protocol/topic.hpp"

namespace mqttd {

namespace asio = boost::asio;

namespace {
// How long stop() waits for connections to close before the threads are stopped.
constexpr auto shutdown_grace = std::chrono::seconds(3);
}  // namespace

broker::broker(broker_options opts)
    : opts_(std::move(opts)),
      router_(tree_, stats_),
      sessions_([this](const session_ptr& s) {
          tree_.unsubscribe_all(s);
          hooks_.session_terminated({s->clientid(), s.get()});
      }) {
    auto micros = std::chrono::duration_cast<std::chrono::microseconds>(
                      std::chrono::system_clock::now().time_since_epoch())
                      .count();
    msgid_prefix_ = fmt::format("{:013X}{:04X}", micros, static_cast<unsigned>(::getpid()) & 0xFFFFu);
    const unsigned n = std::max(1u, opts_.threads);
    for (unsigned i = 0; i < n; ++i) contexts_.push_back(std::make_unique<asio::io_context>(1));
}

broker::~broker() {
    stop();
    wait();
}

std::string broker::next_msgid() {
    return fmt::format("{}{:011X}", msgid_prefix_, msg_counter_.fetch_add(1, std::memory_order_relaxed));
}

asio::io_context& broker::next_context() {
    return *contexts_[next_context_.fetch_add(1, std::memory_order_relaxed) % contexts_.size()];
}

void broker::start() {
    started_at_ = std::chrono::steady_clock::now();
    for (const auto& l : opts_.listeners) {
        auto lst = std::make_shared<listener>(*this, *contexts_.front(), l);
        log::info("listening on {}:{} ({})", l.address, lst->port(),
                  l.type == listener_options::kind::websocket ? "mqtt/websocket" : "mqtt/tcp");
        listeners_.push_back(std::move(lst));
    }
    for (auto& l : listeners_) l->start();
    asio::co_spawn(*contexts_.front(), [this]() -> asio::awaitable<void> {
        asio::steady_timer timer(co_await asio::this_coro::executor);
        auto next_sys = std::chrono::steady_clock::now();
        std::chrono::steady_clock::time_point stop_deadline{};
        for (;;) {
            timer.expires_after(std::chrono::milliseconds(stopping_ ? 50 : 500));
            co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
            auto now = std::chrono::steady_clock::now();
            if (stopping_) {
                if (stop_deadline == std::chrono::steady_clock::time_point{}) stop_deadline = now + shutdown_grace;
                std::size_t open;
                {
                    std::lock_guard lock(connections_mutex_);
                    open = connections_.size();
                }
                if (open == 0 || now >= stop_deadline) {
                    for (auto& c : contexts_) c->stop();
                    co_return;
                }
                continue;
            }
            sessions_.sweep(now);
            if (opts_.sys_interval.count() > 0 && now >= next_sys) {
                publish_sys_topics(*this);
                next_sys = now + opts_.sys_interval;
            }
        }
    }, asio::detached);
    for (auto& c : contexts_) {
        threads_.emplace_back([ctx = c.get()] {
            auto guard = asio::make_work_guard(*ctx);
            ctx->run();
        });
    }
    log::info("{} ready ({} threads)", opts_.node_name, contexts_.size());
}

void broker::stop() {
    if (stopping_.exchange(true)) return;
    for (auto& l : listeners_) l->stop();
    std::vector<std::shared_ptr<connection>> open;
    {
        std::lock_guard lock(connections_mutex_);
        for (auto& [_, w] : connections_)
            if (auto c = w.lock()) open.push_back(std::move(c));
    }
    for (auto& c : open) c->shutdown();
}

void broker::wait() {
    for (auto& t : threads_)
        if (t.joinable()) t.join();
    threads_.clear();
}

std::vector<std::uint16_t> broker::ports() const {
    std::vector<std::uint16_t> out;
    for (const auto& l : listeners_) out.push_back(l->port());
    return out;
}

void broker::add_connection(const std::shared_ptr<connection>& c) {
    {
        std::lock_guard lock(connections_mutex_);
        connections_[c.get()] = c;
    }
    if (stopping_) c->shutdown();
}

void broker::remove_connection(const connection* c) {
    std::lock_guard lock(connections_mutex_);
    connections_.erase(c);
}

broker::subscribe_outcome broker::add_subscription(const session_ptr& s, const mqtt::subscription& sub,
                                                   std::uint32_t sub_id, bool v5_rules) {
    using mqtt::reason_code;
    const bool shared = mqtt::parse_shared(sub.filter).has_value();
    auto fail = [v5_rules](reason_code rc) {
        return subscribe_outcome{static_cast<std::uint8_t>(v5_rules ? rc : reason_code::unspecified_error), false};
    };
    if (shared && !opts_.shared_subscription) return fail(reason_code::shared_subscriptions_not_supported);
    if (!opts_.wildcard_subscription && mqtt::has_wildcard(sub.filter))
        return fail(reason_code::wildcard_subscriptions_not_supported);
    if (opts_.max_topic_levels && mqtt::topic_levels(sub.filter) > opts_.max_topic_levels)
        return fail(reason_code::topic_filter_invalid);

    auto options = sub.options;
    options.max_qos = std::min(options.max_qos, static_cast<mqtt::qos>(opts_.max_qos_allowed));
    const bool existed = tree_.subscribe(s, sub.filter, options, sub_id);
    s->remember_subscription(sub.filter, options, sub_id);

    // Retained messages [MQTT-3.3.1-9..11]; never for shared subscriptions.
    const bool send_retained = !shared && opts_.retain_available && opts_.retained_on_subscribe &&
                               (options.retain_handling == 0 || (options.retain_handling == 1 && !existed));
    if (send_retained) {
        std::vector<std::uint32_t> ids;
        if (sub_id) ids.push_back(sub_id);
        for (auto& m : retained_.match(sub.filter)) s->enqueue({m, std::min(m->qos, options.max_qos), true, ids});
    }
    return {static_cast<std::uint8_t>(options.max_qos), existed};
}

bool broker::subscribe(const std::string& clientid, const std::vector<mqtt::subscription>& subs) {
    auto s = sessions_.find(clientid);
    if (!s) return false;
    client_info who{clientid, {}, mqtt::protocol_version::v311, {}};
    for (const auto& sub : subs) {
        auto r = add_subscription(s, sub, 0, false);
        if (r.reason < 0x80)
            hooks_.session_subscribed(
                {who, sub.filter, static_cast<mqtt::qos>(r.reason), r.existed, sub.options.retain_handling, s.get()});
    }
    return true;
}

bool broker::deliver(const std::string& clientid, const std::vector<message_ptr>& msgs, mqtt::qos qos, bool retained) {
    auto s = sessions_.find(clientid);
    if (!s) return false;
    for (const auto& m : msgs) s->enqueue({m, std::min(m->qos, qos), retained, {}});
    return true;
}

}  // namespace mqttd
