// The schema probe: once a pool's server answers, find out what the tables look like
// (payload columns text or bytea, a unique index on mqtt_msg.msgid, the types of
// mqtt_msg's columns for the statements of many rows, the lengths of the columns a
// message's topic and sender go into), check that every table and column the pool's
// hooks use exists and that the pool's user may do what the hooks do, register the
// prepared statements the pool's hooks need, and learn which SQL action parameters the
// server typed bytea (payloads bound raw there).
#include <fmt/format.h>

#include "persistence/backend_impl.hpp"
#include "persistence/pg_error.hpp"
#include "persistence/statements.hpp"

namespace mqttd::persistence {

namespace asio = boost::asio;

namespace {

// "{text,bytea,\"character varying\"}" -> its elements.
std::vector<std::string> parse_text_array(std::string_view a) {
    std::vector<std::string> out;
    if (a.size() < 2 || a.front() != '{' || a.back() != '}') return out;
    a = a.substr(1, a.size() - 2);
    std::string cur;
    bool quoted = false, any = false;
    for (std::size_t i = 0; i < a.size(); ++i) {
        const char c = a[i];
        any = true;
        if (quoted) {
            if (c == '\\' && i + 1 < a.size()) cur += a[++i];
            else if (c == '"') quoted = false;
            else cur += c;
        } else if (c == '"') {
            quoted = true;
        } else if (c == ',') {
            out.push_back(std::move(cur));
            cur.clear();
        } else {
            cur += c;
        }
    }
    if (any) out.push_back(std::move(cur));
    return out;
}

// A table the hooks use: its columns, and what they do to it.
struct table_use {
    const char* table;
    const char* columns;     // a PostgreSQL array literal
    const char* privileges;  // likewise
};

std::vector<table_use> tables_used(const pool_needs& n) {
    std::vector<table_use> out;
    if (n.client) out.push_back({"mqtt_client", "{clientid,state,node,online_at,offline_at,created}", "{INSERT,UPDATE}"});
    if (n.sub) out.push_back({"mqtt_sub", "{clientid,topic,qos}", "{SELECT}"});
    if (n.msg)
        out.push_back({"mqtt_msg", "{id,msgid,sender,topic,qos,retain,payload,arrived}",
                       n.acked ? "{INSERT,SELECT}" : "{INSERT}"});
    if (n.retain)
        out.push_back({"mqtt_retain", "{topic,msgid,sender,qos,payload,arrived}", "{INSERT,UPDATE,DELETE,SELECT}"});
    if (n.acked) out.push_back({"mqtt_acked", "{clientid,topic,mid,created}", "{INSERT,UPDATE,SELECT}"});
    return out;
}

// Checks the tables the hooks use; logs each problem and returns false when there is one.
asio::awaitable<std::error_code> check_tables(pool_runtime& p, bool& healthy) {
    healthy = true;
    const auto used = tables_used(p.needs);
    if (used.empty()) co_return std::error_code();
    pg::batch b;
    for (const auto& t : used)
        b.query(
            "SELECT to_regclass($1) IS NOT NULL, "
            "coalesce((SELECT string_agg(c, ', ') FROM unnest($2::text[]) c WHERE NOT EXISTS (SELECT 1 FROM "
            "pg_attribute a WHERE a.attrelid = to_regclass($1) AND a.attname = c AND a.attnum > 0 AND NOT "
            "a.attisdropped)), ''), "
            "coalesce((SELECT string_agg(v, ', ') FROM unnest($3::text[]) v WHERE to_regclass($1) IS NOT NULL AND "
            "NOT has_table_privilege(to_regclass($1), v)), '')",
            {t.table, t.columns, t.privileges});
    // The lengths that decide whether a message's row can be stored at all.
    b.query(
        "SELECT c.relname::text, a.attname::text, CASE WHEN a.atttypmod > 4 AND a.atttypid IN "
        "('varchar'::regtype, 'bpchar'::regtype) THEN a.atttypmod - 4 ELSE 0 END FROM pg_attribute a "
        "JOIN pg_class c ON c.oid = a.attrelid WHERE a.attrelid IN (to_regclass('mqtt_msg'), "
        "to_regclass('mqtt_retain')) AND a.attname IN ('topic', 'sender') AND NOT a.attisdropped");
    auto r = co_await p.pool->run(b);
    if (!r.ok()) {
        const auto& bad = r.steps[r.first_error()];
        if (pg::is_connection_error(bad.ec)) co_return bad.ec;
        backend_log(pg::log_level::error,
                    fmt::format("{}: cannot check the tables the hooks use: {}", p.settings.name, bad.message));
        healthy = false;
        co_return std::error_code();
    }
    for (std::size_t i = 0; i < used.size(); ++i) {
        const auto& rows = r.steps[i].rows;
        const auto& t = used[i];
        std::string problem;
        if (rows.get(0, 0) != "t")
            problem = "does not exist (load sql/emqx_backend_pgsql.sql)";
        else if (!rows.get(0, 1).empty())
            problem = fmt::format("has no column {}", rows.get(0, 1));
        else if (!rows.get(0, 2).empty())
            problem = fmt::format("cannot be used: user {} lacks the privilege {}", p.settings.username, rows.get(0, 2));
        if (problem.empty()) continue;
        healthy = false;
        backend_log(pg::log_level::error,
                    fmt::format("{}: table {} {}: the hooks that use it will fail, and publishes whose rows go "
                                "there are not acknowledged as stored",
                                p.settings.name, t.table, problem));
    }
    const auto& lens = r.steps[used.size()].rows;
    auto& lim = p.schema.limits;
    for (auto* l : {&lim.msg_topic, &lim.msg_sender, &lim.retain_topic, &lim.retain_sender}) l->store(0);
    for (std::size_t i = 0; i < lens.size(); ++i) {
        const bool msg = lens.get(i, 0) == "mqtt_msg", topic = lens.get(i, 1) == "topic";
        const auto n = static_cast<std::uint32_t>(lens.get_int(i, 2).value_or(0));
        (msg ? (topic ? lim.msg_topic : lim.msg_sender) : (topic ? lim.retain_topic : lim.retain_sender)).store(n);
    }
    co_return std::error_code();
}

void register_statements(pool_runtime& p) {
    auto& pl = *p.pool;
    const auto& n = p.needs;
    if (n.client) {
        pl.prepare(std::string(sql::client_connected), sql::client_connected_sql());
        pl.prepare(std::string(sql::client_disconnected), sql::client_disconnected_sql());
    }
    if (n.sub) pl.prepare(std::string(sql::subscription_lookup), sql::subscription_lookup_sql());
    if (n.msg) {
        pl.prepare(std::string(sql::message_insert), sql::message_insert_sql(p.schema.msgid_unique));
        pl.prepare(std::string(sql::message_insert_rows),
                   sql::message_insert_rows_sql(p.schema.msgid_unique, p.schema.msg_types));
    }
    if (n.retain) {
        pl.prepare(std::string(sql::retain_upsert), sql::retain_upsert_sql());
        pl.prepare(std::string(sql::retain_delete), sql::retain_delete_sql());
        pl.prepare(std::string(sql::retain_lookup_exact), sql::retain_lookup_sql(false));
        pl.prepare(std::string(sql::retain_lookup_wild), sql::retain_lookup_sql(true));
    }
    if (n.acked) {
        pl.prepare(std::string(sql::ack_pointer_create_exact), sql::ack_pointer_create_sql(false));
        pl.prepare(std::string(sql::ack_pointer_create_wild), sql::ack_pointer_create_sql(true));
        pl.prepare(std::string(sql::fetch_exact), sql::fetch_sql(false));
        pl.prepare(std::string(sql::fetch_wild), sql::fetch_sql(true));
        pl.prepare(std::string(sql::ack_advance), sql::ack_advance_sql());
        pl.prepare(std::string(sql::ack_advance_rows), sql::ack_advance_rows_sql());
    }
    if (n.msg && n.acked)
        pl.prepare(std::string(sql::message_ack_rows),
                   sql::message_ack_rows_sql(p.schema.msgid_unique, p.schema.msg_types));
    for (const auto& a : p.actions) pl.prepare(a.name, a.statement->text);
}

}  // namespace

asio::awaitable<std::error_code> set_up_pool(pool_runtime& p) {
    const auto& name = p.settings.name;
    if (p.needs.msg || p.needs.retain) {
        pg::batch b;
        b.query(
            "SELECT c.relname::text, format_type(a.atttypid, a.atttypmod) FROM pg_attribute a "
            "JOIN pg_class c ON c.oid = a.attrelid "
            "WHERE a.attrelid IN (to_regclass('mqtt_msg'), to_regclass('mqtt_retain')) "
            "AND a.attname = 'payload' AND NOT a.attisdropped");
        b.query(
            "SELECT to_regclass('mqtt_msg') IS NOT NULL, to_regclass('mqtt_retain') IS NOT NULL, "
            "EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = to_regclass('mqtt_msg') AND i.indisunique "
            "AND i.indpred IS NULL AND i.indnkeyatts = 1 AND i.indkey[0] = "
            "(SELECT attnum FROM pg_attribute WHERE attrelid = to_regclass('mqtt_msg') AND attname = 'msgid'))");
        b.query(
            "SELECT attname::text, format_type(atttypid, NULL) FROM pg_attribute "
            "WHERE attrelid = to_regclass('mqtt_msg') AND attnum > 0 AND NOT attisdropped");
        auto r = co_await p.pool->run(b);
        if (!r.ok()) {
            const auto& bad = r.steps[r.first_error()];
            if (pg::is_connection_error(bad.ec)) co_return bad.ec;
            backend_log(pg::log_level::error,
                        fmt::format("{}: cannot read the schema ({}); assuming text payloads", name, bad.message));
        } else {
            const auto& cols = r.steps[0].rows;
            for (std::size_t i = 0; i < cols.size(); ++i) {
                const auto kind = cols.get(i, 1) == "bytea" ? payload_column::bytea : payload_column::text;
                (cols.get(i, 0) == "mqtt_msg" ? p.schema.msg_payload : p.schema.retain_payload) = kind;
            }
            const auto& t = r.steps[1].rows;
            const bool have_msg = t.get(0, 0) == "t";
            p.schema.msgid_unique = t.get(0, 2) == "t";
            auto& types = p.schema.msg_types;
            const auto& msg_cols = r.steps[2].rows;
            for (std::size_t i = 0; i < msg_cols.size(); ++i) {
                const auto column = msg_cols.get(i, 0);
                std::string type(msg_cols.get(i, 1));
                if (column == "msgid") types.msgid = std::move(type);
                else if (column == "sender") types.sender = std::move(type);
                else if (column == "topic") types.topic = std::move(type);
                else if (column == "qos") types.qos = std::move(type);
                else if (column == "retain") types.retain = std::move(type);
                else if (column == "payload") types.payload = std::move(type);
            }
            if (p.needs.msg && have_msg && !p.schema.msgid_unique)
                backend_log(pg::log_level::warning,
                            fmt::format("{}: mqtt_msg.msgid has no unique index: a batch written again after a lost "
                                        "connection may store a message twice (CREATE UNIQUE INDEX mqtt_msg_msgid ON "
                                        "mqtt_msg (msgid))",
                                        name));
            backend_log(pg::log_level::info,
                        fmt::format("{}: payload columns: mqtt_msg {}, mqtt_retain {}", name,
                                    p.schema.msg_payload == payload_column::bytea ? "bytea" : "text",
                                    p.schema.retain_payload == payload_column::bytea ? "bytea" : "text"));
        }
    }

    bool healthy = true;
    if (auto ec = co_await check_tables(p, healthy)) co_return ec;
    p.schema.healthy.store(healthy);

    if (!p.prepared) {
        register_statements(p);
        p.prepared = true;
    }

    // SQL actions binding ${payload}: raw bytes where the server typed the parameter bytea.
    bool any_payload = false;
    for (const auto& a : p.actions)
        for (const auto& v : a.statement->params) any_payload |= v == "payload";
    if (any_payload) {
        pg::batch b;
        b.query(
            "SELECT name, parameter_types::text[]::text FROM pg_prepared_statements WHERE name LIKE 'mqttd\\_action\\_%'");
        auto r = co_await p.pool->run(b);
        if (!r.ok()) {
            if (pg::is_connection_error(r.error())) co_return r.error();
        } else {
            const auto& rows = r.steps[0].rows;
            for (std::size_t i = 0; i < rows.size(); ++i) {
                std::vector<bool> bytea;
                for (const auto& t : parse_text_array(rows.get(i, 1))) bytea.push_back(t == "bytea");
                p.schema.bytea_params[std::string(rows.get(i, 0))] = std::move(bytea);
            }
        }
    }
    co_return std::error_code();
}

}  // namespace mqttd::persistence
