// The built-in functions that write: on_client_connected, on_client_disconnected,
// on_message_publish, on_message_store, on_message_retain, on_retain_delete; and the
// dispatch of every hookpoint's events to the hook's function or SQL action.
#include <fmt/format.h>

#include <algorithm>

#include "persistence/backend_impl.hpp"
#include "persistence/statements.hpp"
#include "protocol/topic.hpp"

namespace mqttd::persistence {

namespace {

std::int64_t epoch_ms(std::chrono::system_clock::time_point t) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

class client_connected_op final : public stream_op {
public:
    client_connected_op(const client_info& c, const std::string& node, std::shared_ptr<client_row> row)
        : clientid_(c.clientid), node_(node), at_(sql::timestamp_text(c.connected_at)), row_(std::move(row)) {
        when_over = shed::over_twice;
    }
    void build(pg::batch& b) const override {
        auto expected = client_row::queued;
        row_->state.compare_exchange_strong(expected, client_row::sent);
        if (expected == client_row::dropped) return;  // the connection ended before: nothing to write
        b.execute(sql::client_connected, {clientid_, node_, at_});
    }
    std::string describe() const override { return fmt::format("on_client_connected (client {})", clientid_); }

private:
    std::string clientid_, node_, at_;
    std::shared_ptr<client_row> row_;
};

class client_disconnected_op final : public stream_op {
public:
    explicit client_disconnected_op(const client_info& c)
        : clientid_(c.clientid), at_(sql::timestamp_text(c.connected_at)) {}
    void build(pg::batch& b) const override { b.execute(sql::client_disconnected, {clientid_, at_}); }
    std::string describe() const override { return fmt::format("on_client_disconnected (client {})", clientid_); }

private:
    std::string clientid_, at_;
};

class retain_upsert_op final : public stream_op {
public:
    retain_upsert_op(const pool_runtime& p, message_ptr m)
        : pool_(p), msg_(std::move(m)), at_(sql::timestamp_text(msg_->timestamp)) {
        bytes = 128 + msg_->topic.size() + msg_->payload.size() * 2;
    }
    void build(pg::batch& b) const override {
        std::string scratch;
        const auto& m = *msg_;
        b.execute(sql::retain_upsert, {m.topic, m.msgid, m.sender, static_cast<int>(m.qos),
                                       payload_param(m.payload.view(), pool_.schema.retain_payload, scratch), at_});
    }
    std::string describe() const override { return fmt::format("on_message_retain (topic {})", msg_->topic); }

private:
    const pool_runtime& pool_;
    message_ptr msg_;
    std::string at_;
};

class retain_delete_op final : public stream_op {
public:
    explicit retain_delete_op(std::string topic) : topic_(std::move(topic)) {}
    void build(pg::batch& b) const override { b.execute(sql::retain_delete, {topic_}); }
    std::string describe() const override { return fmt::format("on_retain_delete (topic {})", topic_); }

private:
    std::string topic_;
};

// varchar(n) counts characters; a topic and a client id are valid UTF-8.
std::size_t characters(std::string_view utf8) {
    return static_cast<std::size_t>(std::count_if(utf8.begin(), utf8.end(), [](char c) {
        return (static_cast<unsigned char>(c) & 0xC0) != 0x80;
    }));
}

// Why a message's row could never be stored in a table with these column lengths (0:
// unknown), or success.
mqtt::reason_code unfit(const message& m, std::uint32_t topic_max, std::uint32_t sender_max) {
    if (topic_max && characters(m.topic) > topic_max) return mqtt::reason_code::topic_name_invalid;
    if (sender_max && characters(m.sender) > sender_max) return mqtt::reason_code::implementation_specific_error;
    return mqtt::reason_code::success;
}

std::shared_ptr<event_vars> vars_of(const client_info& c) {
    auto v = std::make_shared<event_vars>();
    v->clientid = c.clientid;
    v->username = c.username;
    return v;
}

std::shared_ptr<event_vars> vars_of(const client_info& c, const message_ptr& m) {
    auto v = vars_of(c);
    v->topic = m->topic;
    v->msgid = m->msgid;
    v->qos = static_cast<int>(m->qos);
    v->retain = m->retain;
    v->timestamp_ms = epoch_ms(m->timestamp);
    v->msg = m;
    return v;
}

}  // namespace

pg::param payload_param(std::string_view bytes, payload_column col, std::string& scratch) {
    if (col == payload_column::bytea) return pg::param::binary(bytes);
    return pg::param(payload_to_text(bytes, scratch));
}

void backend::impl::keep_hold(stream_op& op, const publish_hold& hold, write_stream& s) const {
    if (!hold) {
        // Nothing to hold back (QoS 0, a will): over the bound such rows are refused.
        op.when_over = shed::over_bound;
        return;
    }
    if (settings.publish_ack == conf::ack_mode::after_commit)
        op.hold = hold;  // PUBACK/PUBREC once the row has committed
    else if (s.over_bound())
        s.hold_back(hold);  // async, but the queue is full: back-pressure the publisher
}

void backend::impl::on_client_connected(const hook_runtime& h, const client_info& c) {
    auto& s = *h.pool->stream;
    if (const auto* f = std::get_if<conf::hook_function>(&h.config->action)) {
        if (*f == conf::hook_function::on_client_connected) {
            auto row = std::make_shared<client_row>();
            row->connected_at = c.connected_at;
            if (!s.push(std::make_unique<client_connected_op>(c, broker.node_name(), row)))
                row->state = client_row::dropped;
            std::lock_guard lock(h.pool->client_rows_mutex);
            h.pool->client_rows[c.clientid] = std::move(row);
        } else if (*f == conf::hook_function::on_subscribe_lookup)
            push_subscription_lookup(h, c);
        return;
    }
    push_actions(h, vars_of(c), nullptr);
}

void backend::impl::on_client_disconnected(const hook_runtime& h, const client_info& c) {
    if (std::holds_alternative<conf::hook_function>(h.config->action)) {
        std::shared_ptr<client_row> row;
        {
            std::lock_guard lock(h.pool->client_rows_mutex);
            auto& rows = h.pool->client_rows;
            if (auto it = rows.find(c.clientid); it != rows.end() && it->second->connected_at == c.connected_at) {
                row = std::move(it->second);
                rows.erase(it);
            }
        }
        if (row) {
            // The connect row refused, or still queued while the stream is over its bounds
            // (PostgreSQL away): neither is written, so an outage with clients coming and
            // going queues nothing for them.
            auto expected = client_row::queued;
            if (row->state == client_row::dropped ||
                (h.pool->stream->over_bound() && row->state.compare_exchange_strong(expected, client_row::dropped)))
                return;
        }
        // Never shed once its connect row may have been written: the client would stay online.
        h.pool->stream->push(std::make_unique<client_disconnected_op>(c));
        return;
    }
    push_actions(h, vars_of(c), nullptr);
}

void backend::impl::on_session_subscribed(const hook_runtime& h, const subscription_event& e) {
    if (const auto* f = std::get_if<conf::hook_function>(&h.config->action)) {
        if (*f == conf::hook_function::on_message_fetch)
            push_fetch(h, e);
        else if (*f == conf::hook_function::on_retain_lookup)
            push_retain_lookup(h, e);
        return;
    }
    auto v = vars_of(e.client);
    v->topic = e.topic;
    v->qos = static_cast<int>(e.qos);
    push_actions(h, v, nullptr);
}

void backend::impl::on_session_unsubscribed(const hook_runtime& h, const subscription_event& e) {
    auto v = vars_of(e.client);
    v->topic = e.topic;
    v->qos = static_cast<int>(e.qos);
    push_actions(h, v, nullptr);
}

void backend::impl::on_message_publish(const hook_runtime& h, const client_info& c, const message_ptr& m,
                                       const publish_hold& hold) {
    auto& s = *h.pool->stream;
    const auto* f = std::get_if<conf::hook_function>(&h.config->action);
    if (!f) {
        push_actions(h, vars_of(c, m), hold);
        return;
    }
    const bool empty = m->payload.empty();
    const auto& lim = h.pool->schema.limits;
    op_ptr op;
    auto why = mqtt::reason_code::success;
    switch (*f) {
    case conf::hook_function::on_message_publish:
        // QoS 1/2, and not the deletion of a retained message.
        if (m->qos != mqtt::qos::at_most_once && !(m->retain && empty)) {
            why = unfit(*m, lim.msg_topic.load(), lim.msg_sender.load());
            op = message_insert(*h.pool, m, "on_message_publish");
        }
        break;
    case conf::hook_function::on_message_store:
        if (!(m->retain && empty)) {
            why = unfit(*m, lim.msg_topic.load(), lim.msg_sender.load());
            op = message_insert(*h.pool, m, "on_message_store");
        }
        break;
    case conf::hook_function::on_message_retain:
        if (m->retain && !empty) {
            why = unfit(*m, lim.retain_topic.load(), lim.retain_sender.load());
            op = std::make_unique<retain_upsert_op>(*h.pool, m);
        }
        break;
    case conf::hook_function::on_retain_delete:
        if (m->retain && empty) op = std::make_unique<retain_delete_op>(m->topic);
        break;
    default: break;
    }
    if (!op) return;
    if (why != mqtt::reason_code::success) {
        // Refused before anything is acknowledged or routed, rather than fail at commit.
        if (hold) hold->fail(why);
        const auto n = unfit_rows.fetch_add(1) + 1;
        if (n <= 10 || n % 1000 == 0)
            backend_log(pg::log_level::error,
                        fmt::format("{}: {} refused: a column of the table is too short for it ({}; {} refused so far)",
                                    h.pool->settings.name, op->describe(), mqtt::to_string(why), n));
        return;
    }
    keep_hold(*op, hold, s);
    s.push(std::move(op));
}

void backend::impl::on_message_acked(const hook_runtime& h, const delivery_event& e) {
    if (std::holds_alternative<conf::hook_function>(h.config->action)) {
        ack_tracked(h, e);  // on_message_acked: the client's fetch-tracked filters
        return;
    }
    auto v = vars_of(e.client, e.msg);
    v->msg.reset();  // no payload variable here
    push_actions(h, v, nullptr);
}

void backend::impl::on_message_delivered(const hook_runtime& h, const delivery_event& e) {
    auto v = vars_of(e.client, e.msg);
    v->msg.reset();
    push_actions(h, v, nullptr);
}

}  // namespace mqttd::persistence
