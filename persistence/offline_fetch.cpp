// The reads of the backend, served from PostgreSQL through the pool's ordered stream (so
// they see every write queued before them): on_subscribe_lookup (restore subscriptions
// from mqtt_sub), on_retain_lookup (retained messages for a subscription, wildcards
// included), on_message_fetch (unread messages, oldest first, behind the client's ack
// pointer, in pages) and on_message_acked (the pointer moves forward only, and only past
// rows delivered and acknowledged: fetch_pointer.hpp).
#include <fmt/format.h>

#include <algorithm>

#include "broker/log.hpp"
#include "persistence/backend_impl.hpp"
#include "persistence/statements.hpp"
#include "persistence/topic_sql.hpp"
#include "protocol/topic.hpp"

namespace mqttd::persistence {

namespace {

// A bound on the rows of one page, whatever the limits: their messages are held in
// memory at once, by the backend and by the session queue.
constexpr std::uint64_t max_page_rows = 1000;

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

// One page of a subscription's offline fetch: the rows after the ack pointer, oldest
// first. The first page also creates the pointer when the client has none.
class fetch_op final : public stream_op {
public:
    fetch_op(backend::impl& b, std::shared_ptr<const fetch_request> r, std::uint64_t serial, bool first)
        : backend_(b), req_(std::move(r)), serial_(serial), first_(first) {
        // Shed, the messages stay behind the pointer for the next subscription.
        when_over = shed::over_twice;
    }
    void build(pg::batch& b) const override {
        const auto& r = *req_;
        const std::optional<std::string_view> range = r.range ? std::optional<std::string_view>(*r.range) : std::nullopt;
        if (r.cond.exact) {
            if (first_) b.execute(sql::ack_pointer_create_exact, {r.clientid, r.filter});
            b.execute(sql::fetch_exact, {r.clientid, r.filter, range, r.subscribed_at, r.page_rows});
        } else {
            if (first_) b.execute(sql::ack_pointer_create_wild, {r.clientid, r.filter, r.cond.like, r.cond.regex});
            b.execute(sql::fetch_wild,
                      {r.clientid, r.filter, r.cond.like, r.cond.regex, range, r.subscribed_at, r.page_rows});
        }
    }
    void done(std::span<pg::step_result> r) override {
        const auto& req = *req_;
        auto& pool = *req.pool;
        // A pointer created now: a first subscription gets no history (an empty page).
        const bool created = first_ && !r[0].rows.empty();
        // (id, msgid, sender, topic, qos, payload), oldest first
        const auto& rows = r.back().rows;
        std::vector<message_ptr> msgs;
        std::vector<fetch_pointer::row> page;
        bool cut = false;
        if (!created && !rows.empty()) {
            msgs = messages_of(rows, 1, pool.schema.msg_payload, false);
            std::size_t bytes = 0;
            for (std::size_t i = 0; i < msgs.size(); ++i) {
                bytes += msgs[i]->payload.size() + msgs[i]->topic.size();
                if (i > 0 && bytes > req.page_bytes) {  // the rest waits for the next page
                    msgs.resize(i);
                    cut = true;
                    break;
                }
                const auto id = rows.get_int(i, 0).value_or(0);
                pool.ids.add(msgs[i]->msgid, id);  // for the acks of other filters
                page.push_back({id, msgs[i]->msgid, std::min(msgs[i]->qos, req.qos) != mqtt::qos::at_most_once});
            }
        }
        const bool full = cut || (!created && static_cast<std::int64_t>(rows.size()) >= req.page_rows);
        std::vector<std::size_t> send;
        if (!backend_.page_fetched(req, serial_, std::move(page), full, send) || send.empty()) return;
        std::vector<message_ptr> out;
        out.reserve(send.size());
        for (auto i : send) out.push_back(std::move(msgs[i]));
        log::debug("pgsql: {} unread messages for client {} on {}", out.size(), req.clientid, req.filter);
        backend_.page_handed_over(req, serial_, backend_.broker.deliver_stored(req.clientid, out, req.qos), send);
    }
    std::string describe() const override {
        return fmt::format("on_message_fetch (client {}, filter {})", req_->clientid, req_->filter);
    }

private:
    backend::impl& backend_;
    std::shared_ptr<const fetch_request> req_;
    std::uint64_t serial_;
    bool first_;
};

// Rows per page: at most max_returned_count, and half the session queue, so that a page
// leaves room for live messages and never overflows the queue on its own.
std::int64_t page_rows(const conf::offline_limits& lim, const conf::backend_settings& s) {
    std::uint64_t n = max_page_rows;
    if (s.session_queue_len) n = std::min<std::uint64_t>(n, std::max<std::uint64_t>(1, s.session_queue_len / 2));
    if (lim.max_returned_count) n = std::min<std::uint64_t>(n, std::max<std::uint64_t>(1, *lim.max_returned_count));
    return static_cast<std::int64_t>(n);
}

}  // namespace

backend::impl::tracked_filter& backend::impl::track(const subscription_event& e) {
    auto& t = tracked[e.client.clientid];
    if (t.owner != e.owner) {  // an earlier session's filters are not this one's
        t.owner = e.owner;
        t.filters.clear();
    }
    auto it = std::find_if(t.filters.begin(), t.filters.end(), [&](const auto& f) { return f.filter == e.topic; });
    if (it != t.filters.end()) return *it;
    return t.filters.emplace_back(tracked_filter{e.topic, 0, nullptr, fetch_pointer(false)});
}

void backend::impl::untrack(const subscription_event& e) {
    std::lock_guard lock(tracked_mutex);
    auto it = tracked.find(e.client.clientid);
    if (it == tracked.end() || it->second.owner != e.owner) return;
    std::erase_if(it->second.filters, [&](const auto& f) { return f.filter == e.topic; });
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

void backend::impl::push_fetch(const hook_runtime& h, const subscription_event& e) {
    // Not for shared subscriptions (their messages go to one member of a group) nor QoS 0.
    if (mqtt::parse_shared(e.topic)) return;
    if (e.qos == mqtt::qos::at_most_once) {
        untrack(e);
        return;
    }
    std::lock_guard lock(tracked_mutex);
    auto& f = track(e);
    // A resumed session that subscribes again has been receiving the filter's messages.
    if (e.existed) return;
    auto r = std::make_shared<fetch_request>();
    r->pool = h.pool;
    r->clientid = e.client.clientid;
    r->filter = e.topic;
    r->qos = e.qos;
    r->cond = filter_condition(e.topic);
    r->subscribed_at = sql::timestamp_text(std::chrono::system_clock::now());
    if (h.config->offline.time_range) r->range = sql::interval_text(*h.config->offline.time_range);
    r->page_rows = page_rows(h.config->offline, settings);
    r->page_bytes = static_cast<std::size_t>(std::max<std::uint64_t>(1, settings.session_queue_bytes / 2));
    // A new subscription to the filter: the pages of an earlier one are not its own.
    f.serial = ++fetch_serial;
    f.request = r;
    f.pointer = fetch_pointer(true);
    h.pool->stream->push(std::make_unique<fetch_op>(*this, std::move(r), f.serial, true));
}

void backend::impl::ack_tracked(const hook_runtime& h, const delivery_event& e) {
    std::lock_guard lock(tracked_mutex);
    auto it = tracked.find(e.client.clientid);
    if (it == tracked.end()) return;
    // Every filter sees the ack: one whose page the session queue had no room for learns
    // that it has some now.
    for (auto& f : it->second.filters) {
        const auto s = mqtt::topic_matches(f.filter, e.msg->topic) ? f.pointer.ack(e.msg->msgid) : f.pointer.saw_ack();
        apply(e.client.clientid, f, s, h.pool);
    }
}

bool backend::impl::page_fetched(const fetch_request& r, std::uint64_t serial, std::vector<fetch_pointer::row> rows,
                                 bool full, std::vector<std::size_t>& send) {
    std::lock_guard lock(tracked_mutex);
    auto it = tracked.find(r.clientid);
    if (it == tracked.end()) return false;
    for (auto& f : it->second.filters) {
        if (f.serial != serial) continue;
        apply(r.clientid, f, f.pointer.page(std::move(rows), full, send), r.pool);
        return true;
    }
    return false;
}

void backend::impl::page_handed_over(const fetch_request& r, std::uint64_t serial, std::size_t taken,
                                     const std::vector<std::size_t>& send) {
    std::lock_guard lock(tracked_mutex);
    auto it = tracked.find(r.clientid);
    if (it == tracked.end()) return;
    for (auto& f : it->second.filters) {
        if (f.serial != serial) continue;
        apply(r.clientid, f, f.pointer.handed_over(taken, send), r.pool);
        return;
    }
}

void backend::impl::apply(const std::string& clientid, const tracked_filter& f, const fetch_pointer::step& s,
                          pool_runtime* ack_pool) {
    // Pushed under tracked_mutex (push never blocks): the moves and fetches of a filter
    // reach the stream in the order its pointer decided them, each fetch after the moves
    // before it.
    auto& p = f.request ? *f.request->pool : *ack_pool;
    if (s.move_to) p.stream->push(ack_advance_to(p, clientid, f.filter, *s.move_to));
    if (!s.move_to_msgid.empty()) p.stream->push(ack_advance(p, clientid, f.filter, s.move_to_msgid));
    if (s.fetch) p.stream->push(std::make_unique<fetch_op>(*this, f.request, f.serial, false));
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

}  // namespace mqttd::persistence
