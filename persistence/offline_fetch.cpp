// The reads of the backend, served from PostgreSQL through the pool's ordered stream (so
// they see every write queued before them): on_subscribe_lookup (restore subscriptions
// from mqtt_sub), on_retain_lookup (retained messages for a subscription, wildcards
// included), on_message_fetch (unread messages, oldest first, behind the client's ack
// pointer) and on_message_acked (the pointer moves forward only).
#include <fmt/format.h>

#include <algorithm>

#include "broker/log.hpp"
#include "persistence/backend_impl.hpp"
#include "persistence/statements.hpp"
#include "persistence/topic_sql.hpp"
#include "protocol/topic.hpp"

namespace mqttd::persistence {

namespace {

mqtt::qos qos_of(std::optional<std::int64_t> v) {
    return static_cast<mqtt::qos>(std::clamp<std::int64_t>(v.value_or(0), 0, 2));
}

std::string payload_of(const pg::rowset& rows, std::size_t row, std::size_t col, payload_column kind) {
    if (kind == payload_column::bytea) return rows.get_bytes(row, col);
    return payload_from_text(rows.get(row, col));
}

// Rows of (msgid, sender, topic, qos, payload), from column `first` on, as messages.
std::vector<message_ptr> messages_of(const pg::rowset& rows, std::size_t first, payload_column kind, bool retain) {
    std::vector<message_ptr> msgs;
    msgs.reserve(rows.size());
    const auto now = std::chrono::system_clock::now();
    for (std::size_t i = 0; i < rows.size(); ++i) {
        auto m = std::make_shared<message>();
        m->msgid = rows.get(i, first);
        m->sender = rows.get(i, first + 1);
        m->topic = rows.get(i, first + 2);
        m->qos = qos_of(rows.get_int(i, first + 3));
        m->payload = mqtt::shared_payload(payload_of(rows, i, first + 4, kind));
        m->retain = retain;
        m->timestamp = now;
        msgs.push_back(std::move(m));
    }
    return msgs;
}

class subscription_lookup_op final : public stream_op {
public:
    subscription_lookup_op(broker_api& b, std::string clientid) : broker_(b), clientid_(std::move(clientid)) {
        when_over = shed::over_twice;
    }
    void build(pg::batch& b) const override { b.execute(sql::subscription_lookup, {clientid_}); }
    void done(std::span<pg::step_result> r) override {
        const auto& rows = r[0].rows;
        std::vector<mqtt::subscription> subs;
        for (std::size_t i = 0; i < rows.size(); ++i) {
            std::string filter(rows.get(i, 0));
            if (rows.is_null(i, 0) || !mqtt::valid_topic_filter(filter)) {
                log::warning("pgsql: mqtt_sub of client {}: \"{}\" is not a valid topic filter; skipped", clientid_,
                             filter);
                continue;
            }
            mqtt::subscription s;
            s.filter = std::move(filter);
            s.options.max_qos = qos_of(rows.get_int(i, 1));
            subs.push_back(std::move(s));
        }
        if (!subs.empty()) broker_.subscribe(clientid_, subs);
    }
    std::string describe() const override { return fmt::format("on_subscribe_lookup (client {})", clientid_); }

private:
    broker_api& broker_;
    std::string clientid_;
};

// A read for one subscription, whose rows go to the subscribing client.
class subscription_read : public stream_op {
protected:
    subscription_read(broker_api& b, pool_runtime& p, const subscription_event& e)
        : broker_(b), pool_(p), clientid_(e.client.clientid), filter_(e.topic), qos_(e.qos),
          cond_(filter_condition(e.topic)) {}
    std::string describe_as(std::string_view function) const {
        return fmt::format("{} (client {}, filter {})", function, clientid_, filter_);
    }

    broker_api& broker_;
    pool_runtime& pool_;
    std::string clientid_, filter_;
    mqtt::qos qos_;
    topic_condition cond_;
};

class retain_lookup_op final : public subscription_read {
public:
    retain_lookup_op(broker_api& b, pool_runtime& p, const subscription_event& e) : subscription_read(b, p, e) {
        when_over = shed::over_bound;
    }
    void build(pg::batch& b) const override {
        if (cond_.exact)
            b.execute(sql::retain_lookup_exact, {filter_});
        else
            b.execute(sql::retain_lookup_wild, {cond_.like, cond_.regex});
    }
    void done(std::span<pg::step_result> r) override {
        // (msgid, sender, topic, qos, payload)
        const auto& rows = r[0].rows;
        if (rows.empty()) return;
        broker_.deliver(clientid_, messages_of(rows, 0, pool_.schema.retain_payload, true), qos_, true);
    }
    std::string describe() const override { return describe_as("on_retain_lookup"); }
};

class fetch_op final : public subscription_read {
public:
    fetch_op(broker_api& b, pool_runtime& p, const subscription_event& e, const conf::offline_limits& lim)
        : subscription_read(b, p, e), subscribed_at_(sql::timestamp_text(std::chrono::system_clock::now())) {
        // Shed, the messages stay behind the pointer for the next subscription.
        when_over = shed::over_twice;
        if (lim.time_range) range_ = sql::interval_text(*lim.time_range);
        if (lim.max_returned_count) limit_ = static_cast<std::int64_t>(std::min<std::uint64_t>(*lim.max_returned_count, INT64_MAX));
    }
    void build(pg::batch& b) const override {
        const std::optional<std::string_view> range =
            range_ ? std::optional<std::string_view>(*range_) : std::nullopt;
        const pg::param limit = limit_ ? pg::param(*limit_) : pg::param(std::nullopt);
        if (cond_.exact) {
            b.execute(sql::ack_pointer_create_exact, {clientid_, filter_});
            b.execute(sql::fetch_exact, {clientid_, filter_, range, subscribed_at_, limit});
        } else {
            b.execute(sql::ack_pointer_create_wild, {clientid_, filter_, cond_.like, cond_.regex});
            b.execute(sql::fetch_wild, {clientid_, filter_, cond_.like, cond_.regex, range, subscribed_at_, limit});
        }
    }
    void done(std::span<pg::step_result> r) override {
        // A pointer created now: a first subscription gets no history.
        if (!r[0].rows.empty()) return;
        // (id, msgid, sender, topic, qos, payload), oldest first
        const auto& rows = r[1].rows;
        if (rows.empty()) return;
        const auto msgs = messages_of(rows, 1, pool_.schema.msg_payload, false);
        for (std::size_t i = 0; i < rows.size(); ++i)  // for the acks of these messages
            if (auto id = rows.get_int(i, 0)) pool_.ids.add(rows.get(i, 1), *id);
        log::debug("pgsql: {} unread messages for client {} on {}", msgs.size(), clientid_, filter_);
        broker_.deliver(clientid_, msgs, qos_, false);
    }
    std::string describe() const override { return describe_as("on_message_fetch"); }

private:
    std::string subscribed_at_;
    std::optional<std::string> range_;
    std::optional<std::int64_t> limit_;
};

}  // namespace

void backend::impl::track(const subscription_event& e) {
    std::lock_guard lock(tracked_mutex);
    auto& t = tracked[e.client.clientid];
    if (t.owner != e.owner) {  // an earlier session's filters are not this one's
        t.owner = e.owner;
        t.filters.clear();
    }
    if (std::find(t.filters.begin(), t.filters.end(), e.topic) == t.filters.end()) t.filters.push_back(e.topic);
}

void backend::impl::untrack(const subscription_event& e) {
    std::lock_guard lock(tracked_mutex);
    auto it = tracked.find(e.client.clientid);
    if (it == tracked.end() || it->second.owner != e.owner) return;
    std::erase(it->second.filters, e.topic);
    if (it->second.filters.empty()) tracked.erase(it);
}

void backend::impl::untrack_session(const session_event& e) {
    std::lock_guard lock(tracked_mutex);
    // A late event of a replaced session leaves its successor's filters alone.
    if (auto it = tracked.find(e.clientid); it != tracked.end() && it->second.owner == e.owner) tracked.erase(it);
}

std::size_t backend::impl::tracked_clients() {
    std::lock_guard lock(tracked_mutex);
    return tracked.size();
}

std::vector<std::string> backend::impl::tracked_matching(const std::string& clientid, std::string_view topic) {
    std::vector<std::string> out;
    std::lock_guard lock(tracked_mutex);
    auto it = tracked.find(clientid);
    if (it == tracked.end()) return out;
    for (const auto& f : it->second.filters)
        if (mqtt::topic_matches(f, topic)) out.push_back(f);
    return out;
}

void backend::impl::push_fetch(const hook_runtime& h, const subscription_event& e) {
    // Not for shared subscriptions (their messages go to one member of a group) nor QoS 0.
    if (mqtt::parse_shared(e.topic)) return;
    if (e.qos == mqtt::qos::at_most_once) {
        untrack(e);
        return;
    }
    track(e);
    // A resumed session that subscribes again has been receiving the filter's messages.
    if (e.existed) return;
    h.pool->stream->push(std::make_unique<fetch_op>(broker, *h.pool, e, h.config->offline));
}

void backend::impl::push_retain_lookup(const hook_runtime& h, const subscription_event& e) {
    // As the broker does from memory [MQTT-3.3.1-9..11]: never for a shared subscription;
    // Retain Handling 2: never; 1: only for a new subscription.
    if (mqtt::parse_shared(e.topic)) return;
    if (e.retain_handling == 2 || (e.retain_handling == 1 && e.existed)) return;
    h.pool->stream->push(std::make_unique<retain_lookup_op>(broker, *h.pool, e));
}

void backend::impl::push_subscription_lookup(const hook_runtime& h, const client_info& c) {
    h.pool->stream->push(std::make_unique<subscription_lookup_op>(broker, c.clientid));
}

void backend::impl::push_ack(const hook_runtime& h, const std::string& clientid, const std::string& filter,
                             const std::string& msgid) {
    h.pool->stream->push(ack_advance(*h.pool, clientid, filter, msgid));
}

}  // namespace mqttd::persistence
