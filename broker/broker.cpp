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

#include <unordered_set>

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
      sessions_(
          [this](const session_ptr& s) {
              s->mark_ended();  // before its subscriptions go: see add_subscription
              tree_.unsubscribe_all(s);
              hooks_.session_terminated({s->clientid(), s.get()});
          },
          [this](const message_ptr& will) { publish_will(will); }) {
    auto micros = std::chrono::duration_cast<std::chrono::microseconds>(
                      std::chrono::system_clock::now().time_since_epoch())
                      .count();
    msgid_prefix_ = fmt::format("{:013X}{:04X}", micros, static_cast<unsigned>(::getpid()) & 0xFFFFu);
    const unsigned n = std::max(1u, opts_.threads);
    for (unsigned i = 0; i < n; ++i) {
        contexts_.push_back(std::make_unique<asio::io_context>(1));
        sets_.push_back(std::make_unique<connection_set>(*contexts_.back()));
    }
}

broker::~broker() {
    stop();
    wait();
}

std::string broker::next_msgid() {
    return fmt::format("{}{:011X}", msgid_prefix_, msg_counter_.fetch_add(1, std::memory_order_relaxed));
}

void broker::start() {
    started_at_ = std::chrono::steady_clock::now();
    std::vector<connection_set*> sets;
    for (auto& s : sets_) sets.push_back(s.get());
    for (const auto& l : opts_.listeners) {
        auto lst = std::make_shared<listener>(*this, sets, l);
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
                std::size_t open = 0;
                for (auto& s : sets_) open += s->size();
                if (open == 0 || now >= stop_deadline) {
                    for (auto& s : sets_) s->stop();
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
    for (auto& s : sets_) s->start();
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
    for (auto& s : sets_) s->shutdown_all();
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
    // A Clean Start takeover may have ended the session while its old connection handled
    // this SUBSCRIBE. The session is marked ended before its entries leave the tree, so
    // either that removal saw this entry, or this check sees the mark and undoes it.
    if (s->ended()) {
        tree_.unsubscribe(s, sub.filter);
        return fail(reason_code::unspecified_error);
    }

    // Retained messages [MQTT-3.3.1-9..11]; never for shared subscriptions.
    const bool send_retained = !shared && opts_.retain_available && opts_.retained_on_subscribe &&
                               (options.retain_handling == 0 || (options.retain_handling == 1 && !existed));
    if (send_retained) {
        std::vector<std::uint32_t> ids;
        if (sub_id) ids.push_back(sub_id);
        for (auto& m : retained_.match(sub.filter)) s->enqueue({m, std::min(m->qos, options.max_qos), true, ids, {}});
    }
    return {static_cast<std::uint8_t>(options.max_qos), existed};
}

void broker::publish_will(const message_ptr& due) {
    message_ptr will = due;
    // Its Message Expiry Interval runs from now, when it is published (spec 3.1.3.2.3).
    if (auto expiry = due->props.integer(mqtt::property_id::message_expiry_interval)) {
        auto m = std::make_shared<message>(*due);
        m->expires_at = std::chrono::steady_clock::now() + std::chrono::seconds(*expiry);
        will = std::move(m);
    }
    // The hook first, as for any publish: its row is queued before a subscriber can ack.
    hooks_.message_publish(client_info{will->sender, will->username, mqtt::protocol_version::v5, {}}, will, nullptr);
    if (will->retain) retained_.set(will);
    router_.route(will, nullptr);
}

void broker::hand_over_shared(const session_ptr& from) {
    // Only filters with another connected member give their messages away: with none,
    // they stay for this session's return.
    auto other_connected = [&from](const session_ptr& s) { return s != from && s->attached(); };
    std::unordered_set<std::string> movable;
    for (const auto& [filter, _] : from->subscriptions()) {
        const auto parsed = mqtt::parse_shared(filter);
        if (parsed && tree_.pick_shared(parsed->group, parsed->filter, other_connected)) movable.insert(filter);
    }
    if (movable.empty()) return;
    for (auto& o : from->take_shared_unacked([&](const std::string& f) { return movable.contains(f); })) {
        const auto parsed = mqtt::parse_shared(o.share_filter);
        auto pick = tree_.pick_shared(parsed->group, parsed->filter, other_connected, member_room);
        if (!pick) pick = tree_.pick_shared(parsed->group, parsed->filter, [](const session_ptr&) { return true; });
        if (!pick) continue;  // the group is gone: as if routed after its last member left
        std::vector<std::uint32_t> ids;
        if (pick->subscription_id) ids.push_back(pick->subscription_id);
        pick->subscriber->enqueue(make_outgoing(o.msg, pick->options, std::move(ids), std::move(o.share_filter)));
    }
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
    for (const auto& m : msgs) s->enqueue({m, std::min(m->qos, qos), retained, {}, {}});
    return true;
}

std::size_t broker::deliver_stored(const std::string& clientid, const std::vector<message_ptr>& msgs, mqtt::qos qos) {
    auto s = sessions_.find(clientid);
    if (!s) return 0;
    std::vector<outgoing> page;
    page.reserve(msgs.size());
    for (const auto& m : msgs) page.push_back({m, std::min(m->qos, qos), false, {}, {}});
    return s->enqueue_stored(std::move(page));
}

}  // namespace mqttd
