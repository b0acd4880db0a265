// The mqtt_msg rows (on_message_publish, on_message_store) and the ack pointers that
// refer to them (on_message_acked), as operations of the pool's stream. Alone, each is
// one statement. Together (one op_group), the rows and acks that come between two other
// operations of a batch are one statement, its arrays bound in binary form:
//     WITH ins AS (INSERT INTO mqtt_msg ... SELECT FROM unnest(arrays) RETURNING msgid, id)
//     INSERT INTO mqtt_acked ... (the furthest acked row id of each pointer)
// in which an ack finds its message's row id among the rows inserted with it, or in the
// pool's row_ids, and looks the msgid up only when it is in neither.
#include <fmt/format.h>

#include <algorithm>
#include <map>

#include "persistence/backend_impl.hpp"
#include "persistence/pg_array.hpp"
#include "persistence/statements.hpp"

namespace mqttd::persistence {

namespace {

// The array parameters of one statement for many rows and acks, in binary form (see
// sql::message_insert_rows_sql for the element types). One per thread, reused from batch
// to batch, so that a batch does not allocate them again.
struct row_arrays {
    void reset(const pool_schema& schema) {
        numeric_qos = sql::is_integer_type(schema.msg_types.qos);
        numeric_retain = sql::is_integer_type(schema.msg_types.retain);
        text_payload = schema.msg_payload != payload_column::bytea;
        messages = acks = 0;
        furthest.clear();
        for (auto* a : {&msgid, &sender, &topic, &ack_client, &ack_filter, &ack_msgid}) a->clear(pg::oids::text);
        qos.clear(numeric_qos ? pg::oids::int8 : pg::oids::text);
        retain.clear(numeric_retain ? pg::oids::int8 : pg::oids::text);
        payload.clear(text_payload ? pg::oids::text : pg::oids::bytea);
        arrived.clear(pg::oids::timestamptz);
        ack_id.clear(pg::oids::int8);
    }
    static void add_number(pg::binary_array& a, bool numeric, int v) {
        if (numeric) {
            a.add(std::int64_t{v});
        } else {
            const char digit = static_cast<char>('0' + v);
            a.add(std::string_view(&digit, 1));
        }
    }

    bool numeric_qos = true, numeric_retain = true, text_payload = true;
    std::size_t messages = 0;
    pg::binary_array msgid{pg::oids::text}, sender{pg::oids::text}, topic{pg::oids::text}, qos{pg::oids::int8},
        retain{pg::oids::int8}, payload{pg::oids::text}, arrived{pg::oids::timestamptz};
    // (client, filter) -> the furthest row id acked, of the known ones
    std::map<std::pair<std::string_view, std::string_view>, std::int64_t> furthest;
    std::size_t acks = 0;
    pg::binary_array ack_client{pg::oids::text}, ack_filter{pg::oids::text}, ack_msgid{pg::oids::text},
        ack_id{pg::oids::int8};
    std::string scratch;
};

class message_rows final : public op_group {
public:
    void build(pg::batch& b, std::span<const stream_op* const> ops) const override;
    void done(std::span<const stream_op* const> ops, const pg::step_result& result) const override;
};
const message_rows message_rows_group;

class row_op : public stream_op {
public:
    explicit row_op(pool_runtime& p) : pool_(p) { group = &message_rows_group; }
    virtual void add_to(row_arrays& a) const = 0;
    pool_runtime& pool() const { return pool_; }

protected:
    pool_runtime& pool_;
};

class message_insert_op final : public row_op {
public:
    message_insert_op(pool_runtime& p, message_ptr m, std::string_view fn)
        : row_op(p), msg_(std::move(m)), fn_(fn) {
        bytes = 128 + msg_->topic.size() + msg_->payload.size() * 2;
    }
    void build(pg::batch& b) const override {
        std::string scratch;
        const auto& m = *msg_;
        b.execute(sql::message_insert,
                  {m.msgid, m.sender, m.topic, static_cast<int>(m.qos), m.retain ? 1 : 0,
                   payload_param(m.payload.view(), pool_.schema.msg_payload, scratch), sql::timestamp_text(m.timestamp)});
    }
    void add_to(row_arrays& a) const override {
        const auto& m = *msg_;
        ++a.messages;
        a.msgid.add(m.msgid);
        a.sender.add(m.sender);
        a.topic.add(m.topic);
        row_arrays::add_number(a.qos, a.numeric_qos, static_cast<int>(m.qos));
        row_arrays::add_number(a.retain, a.numeric_retain, m.retain ? 1 : 0);
        if (a.text_payload)
            a.payload.add(payload_to_text(m.payload.view(), a.scratch));
        else
            a.payload.add(m.payload.view());
        a.arrived.add(m.timestamp);
    }
    std::string describe() const override {
        return fmt::format("{} (topic {}, msgid {})", fn_, msg_->topic, msg_->msgid);
    }

private:
    message_ptr msg_;
    std::string_view fn_;
};

// To the row of msgid_, or to row id_ when the caller knows it (a fetched row).
class ack_op final : public row_op {
public:
    ack_op(pool_runtime& p, std::string clientid, std::string filter, std::string msgid,
           std::optional<std::int64_t> id = std::nullopt)
        : row_op(p), clientid_(std::move(clientid)), filter_(std::move(filter)), msgid_(std::move(msgid)), id_(id) {
        when_over = shed::over_bound;  // shed, the pointer stays behind: messages may come again, never lost
    }
    void build(pg::batch& b) const override {
        if (!id_) {
            b.execute(sql::ack_advance, {clientid_, filter_, msgid_});
            return;
        }
        pg::binary_array client{pg::oids::text}, filter{pg::oids::text}, msgid{pg::oids::text}, id{pg::oids::int8};
        client.add(clientid_);
        filter.add(filter_);
        msgid.add_null();
        id.add(*id_);
        auto bin = [](pg::binary_array& x) { return pg::param::binary(x.bytes()); };
        b.execute(sql::ack_advance_rows, {bin(client), bin(filter), bin(msgid), bin(id)});
    }
    void add_to(row_arrays& a) const override {
        ++a.acks;
        if (auto id = id_ ? id_ : pool_.ids.find(msgid_)) {
            auto [it, fresh] = a.furthest.try_emplace({clientid_, filter_}, *id);
            if (!fresh) it->second = std::max(it->second, *id);
            return;
        }
        a.ack_client.add(clientid_);
        a.ack_filter.add(filter_);
        a.ack_msgid.add(msgid_);
        a.ack_id.add_null();
    }
    std::string describe() const override {
        if (id_) return fmt::format("on_message_acked (client {}, filter {}, row {})", clientid_, filter_, *id_);
        return fmt::format("on_message_acked (client {}, filter {}, msgid {})", clientid_, filter_, msgid_);
    }

private:
    std::string clientid_, filter_, msgid_;
    std::optional<std::int64_t> id_;
};

void message_rows::build(pg::batch& b, std::span<const stream_op* const> ops) const {
    thread_local row_arrays a;
    a.reset(static_cast<const row_op&>(*ops.front()).pool().schema);
    for (const auto* op : ops) static_cast<const row_op&>(*op).add_to(a);
    for (const auto& [key, id] : a.furthest) {
        a.ack_client.add(key.first);
        a.ack_filter.add(key.second);
        a.ack_msgid.add_null();
        a.ack_id.add(id);
    }
    auto bin = [](pg::binary_array& x) { return pg::param::binary(x.bytes()); };
    if (a.acks == 0)
        b.execute(sql::message_insert_rows, {bin(a.msgid), bin(a.sender), bin(a.topic), bin(a.qos), bin(a.retain),
                                             bin(a.payload), bin(a.arrived)});
    else if (a.messages == 0)
        b.execute(sql::ack_advance_rows, {bin(a.ack_client), bin(a.ack_filter), bin(a.ack_msgid), bin(a.ack_id)});
    else
        b.execute(sql::message_ack_rows,
                  {bin(a.msgid), bin(a.sender), bin(a.topic), bin(a.qos), bin(a.retain), bin(a.payload), bin(a.arrived),
                   bin(a.ack_client), bin(a.ack_filter), bin(a.ack_msgid), bin(a.ack_id)});
}

void message_rows::done(std::span<const stream_op* const> ops, const pg::step_result& result) const {
    // (msgid, id) of each message row inserted, for the acks to come
    auto& ids = static_cast<const row_op&>(*ops.front()).pool().ids;
    const auto& rows = result.rows;
    for (std::size_t i = 0; i < rows.size(); ++i)
        if (auto id = rows.get_int(i, 1)) ids.add(rows.get(i, 0), *id);
}

}  // namespace

op_ptr message_insert(pool_runtime& p, message_ptr m, std::string_view function) {
    return std::make_unique<message_insert_op>(p, std::move(m), function);
}

op_ptr ack_advance(pool_runtime& p, const std::string& clientid, const std::string& filter, const std::string& msgid) {
    return std::make_unique<ack_op>(p, clientid, filter, msgid);
}

op_ptr ack_advance_to(pool_runtime& p, const std::string& clientid, const std::string& filter, std::int64_t row_id) {
    return std::make_unique<ack_op>(p, clientid, filter, std::string(), row_id);
}

}  // namespace mqttd::persistence
