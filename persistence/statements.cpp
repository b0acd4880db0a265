#include "persistence/statements.hpp"

#include <fmt/format.h>

#include <ctime>

namespace mqttd::persistence::sql {
namespace {

// The condition on `topic` for a filter: exact or LIKE + regex (see topic_sql.hpp).
std::string topic_cond(bool wildcard, int first_param) {
    if (!wildcard) return fmt::format("topic = ${}", first_param);
    return fmt::format("topic LIKE ${} ESCAPE '\\' AND topic ~ ${}", first_param, first_param + 1);
}

// The acks of arrays from $first on (clients, filters, msgids, known row ids); `inserted`
// names a relation (msgid, id) of rows the same statement inserts, or is empty.
std::string ack_rows_sql(int first, std::string_view inserted) {
    // A row id given is used as it is, then one of the rows inserted with it; only then
    // is the msgid looked up (coalesce evaluates its arguments in turn). One row per
    // pointer: ON CONFLICT DO UPDATE may not touch a row twice in a statement.
    return fmt::format(
        "INSERT INTO mqtt_acked (clientid, topic, mid, created) "
        "SELECT clientid, topic, max(mid), now() FROM ("
        "SELECT a.clientid, a.topic, coalesce(a.id, {}(SELECT max(m.id) FROM mqtt_msg m WHERE m.msgid = a.msgid)) AS mid "
        "FROM unnest(${}::text[], ${}::text[], ${}::text[], ${}::bigint[]) AS a(clientid, topic, msgid, id){}) acked "
        "WHERE mid IS NOT NULL GROUP BY clientid, topic "
        "ON CONFLICT (clientid, topic) DO UPDATE SET mid = GREATEST(mqtt_acked.mid, EXCLUDED.mid)",
        inserted.empty() ? "" : fmt::format("{}.id, ", inserted), first, first + 1, first + 2, first + 3,
        inserted.empty() ? "" : fmt::format(" LEFT JOIN {0} ON {0}.msgid = a.msgid", inserted));
}

}  // namespace

std::string client_connected_sql() {
    return "INSERT INTO mqtt_client (clientid, state, node, online_at, offline_at, created) "
           "VALUES ($1, 1, $2, $3::timestamptz, NULL, now()) "
           "ON CONFLICT (clientid) DO UPDATE SET state = 1, node = EXCLUDED.node, "
           "online_at = EXCLUDED.online_at, offline_at = NULL";
}

std::string client_disconnected_sql() {
    return "UPDATE mqtt_client SET state = 0, offline_at = now() "
           "WHERE clientid = $1 AND (online_at IS NULL OR online_at <= $2::timestamptz)";
}

std::string subscription_lookup_sql() {
    return "SELECT topic, qos FROM mqtt_sub WHERE clientid = $1 ORDER BY id";
}

std::string message_insert_sql(bool msgid_unique) {
    std::string s =
        "INSERT INTO mqtt_msg (msgid, sender, topic, qos, retain, payload, arrived) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7::timestamptz)";
    if (msgid_unique) s += " ON CONFLICT (msgid) DO NOTHING";
    return s;
}

std::string message_insert_rows_sql(bool msgid_unique, const msg_column_types& t) {
    auto number = [](const std::string& type) { return is_integer_type(type) ? "bigint" : "text"; };
    std::string s = fmt::format(
        "INSERT INTO mqtt_msg (msgid, sender, topic, qos, retain, payload, arrived) "
        "SELECT r.msgid::{}, r.sender::{}, r.topic::{}, r.qos::{}, r.retain::{}, r.payload::{}, r.arrived "
        "FROM unnest($1::text[], $2::text[], $3::text[], $4::{}[], $5::{}[], $6::{}[], $7::timestamptz[]) "
        "WITH ORDINALITY AS r(msgid, sender, topic, qos, retain, payload, arrived, n) ORDER BY r.n",
        t.msgid, t.sender, t.topic, t.qos, t.retain, t.payload, number(t.qos), number(t.retain),
        t.payload == "bytea" ? "bytea" : "text");
    if (msgid_unique) s += " ON CONFLICT (msgid) DO NOTHING";
    return s + " RETURNING msgid, id";
}

bool is_integer_type(std::string_view type) {
    return type == "smallint" || type == "integer" || type == "bigint";
}

std::string retain_upsert_sql() {
    return "INSERT INTO mqtt_retain (topic, msgid, sender, qos, payload, arrived) "
           "VALUES ($1, $2, $3, $4, $5, $6::timestamptz) "
           "ON CONFLICT (topic) DO UPDATE SET msgid = EXCLUDED.msgid, sender = EXCLUDED.sender, "
           "qos = EXCLUDED.qos, payload = EXCLUDED.payload, arrived = EXCLUDED.arrived";
}

std::string retain_delete_sql() { return "DELETE FROM mqtt_retain WHERE topic = $1"; }

std::string retain_lookup_sql(bool wildcard) {
    return fmt::format("SELECT msgid, sender, topic, qos, payload FROM mqtt_retain WHERE {} ORDER BY topic",
                       topic_cond(wildcard, 1));
}

std::string ack_pointer_create_sql(bool wildcard) {
    return fmt::format(
        "INSERT INTO mqtt_acked (clientid, topic, mid, created) "
        "SELECT $1::varchar, $2::varchar, coalesce(max(id), 0), now() FROM mqtt_msg WHERE {} "
        "ON CONFLICT (clientid, topic) DO NOTHING RETURNING mid",
        wildcard ? topic_cond(true, 3) : topic_cond(false, 2));
}

std::string fetch_sql(bool wildcard) {
    const int n = wildcard ? 5 : 3;  // the first parameter after the topic condition
    return fmt::format(
        "SELECT id, msgid, sender, topic, qos, payload FROM mqtt_msg "
        "WHERE {} AND id > (SELECT mid FROM mqtt_acked WHERE clientid = $1 AND topic = $2) "
        "AND (${}::interval IS NULL OR arrived >= now() - ${}::interval) "
        "AND (arrived IS NULL OR arrived <= ${}::timestamptz) "
        "ORDER BY id LIMIT ${}::bigint",
        wildcard ? topic_cond(true, 3) : topic_cond(false, 2), n, n, n + 1, n + 2);
}

std::string ack_advance_sql() {
    return "INSERT INTO mqtt_acked (clientid, topic, mid, created) "
           "SELECT $1::varchar, $2::varchar, max(id), now() FROM mqtt_msg WHERE msgid = $3 "
           "HAVING max(id) IS NOT NULL "
           "ON CONFLICT (clientid, topic) DO UPDATE SET mid = GREATEST(mqtt_acked.mid, EXCLUDED.mid)";
}

std::string ack_advance_rows_sql() { return ack_rows_sql(1, ""); }

std::string message_ack_rows_sql(bool msgid_unique, const msg_column_types& types) {
    // Statements in WITH run once and to completion, whether their output is read or not.
    return fmt::format("WITH ins AS ({}), pointers AS ({}) SELECT msgid, id FROM ins",
                       message_insert_rows_sql(msgid_unique, types), ack_rows_sql(8, "ins"));
}

std::string timestamp_text(std::chrono::system_clock::time_point t) {
    using namespace std::chrono;
    const auto us = duration_cast<microseconds>(t.time_since_epoch()).count();
    std::time_t secs = static_cast<std::time_t>(us / 1'000'000);
    long frac = static_cast<long>(us % 1'000'000);
    if (frac < 0) {
        frac += 1'000'000;
        --secs;
    }
    std::tm tm{};
    ::gmtime_r(&secs, &tm);
    return fmt::format("{:04}-{:02}-{:02} {:02}:{:02}:{:02}.{:06}+00", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                       tm.tm_hour, tm.tm_min, tm.tm_sec, frac);
}

std::string interval_text(std::chrono::milliseconds d) { return fmt::format("{} milliseconds", d.count()); }

}  // namespace mqttd::persistence::sql
