#pragma once
// The SQL of the built-in functions, as prepared statements. Their texts depend on what
// the schema probe found (see schema.hpp): whether mqtt_msg.msgid has a unique index
// (then message inserts are idempotent: ON CONFLICT (msgid) DO NOTHING, so a batch
// written again after a lost connection stores each message once).
//
// Time values: instants are bound as text "YYYY-MM-DD HH:MM:SS.ffffff+00" and cast to
// timestamptz, so they are stored in the `timestamp` columns in the session's time zone, the
// same zone now() uses for the columns the server fills.
#include <chrono>
#include <string>
#include <string_view>

namespace mqttd::persistence::sql {

// Statement names (all prefixed "mqttd_").
inline constexpr std::string_view client_connected = "mqttd_client_connected";
inline constexpr std::string_view client_disconnected = "mqttd_client_disconnected";
inline constexpr std::string_view subscription_lookup = "mqttd_subscription_lookup";
inline constexpr std::string_view message_insert = "mqttd_message_insert";
inline constexpr std::string_view message_insert_rows = "mqttd_message_insert_rows";
inline constexpr std::string_view retain_upsert = "mqttd_retain_upsert";
inline constexpr std::string_view retain_delete = "mqttd_retain_delete";
inline constexpr std::string_view retain_lookup_exact = "mqttd_retain_lookup_exact";
inline constexpr std::string_view retain_lookup_wild = "mqttd_retain_lookup_wild";
inline constexpr std::string_view ack_pointer_create_exact = "mqttd_ack_pointer_create_exact";
inline constexpr std::string_view ack_pointer_create_wild = "mqttd_ack_pointer_create_wild";
inline constexpr std::string_view fetch_exact = "mqttd_fetch_exact";
inline constexpr std::string_view fetch_wild = "mqttd_fetch_wild";
inline constexpr std::string_view ack_advance = "mqttd_ack_advance";
inline constexpr std::string_view ack_advance_rows = "mqttd_ack_advance_rows";
inline constexpr std::string_view message_ack_rows = "mqttd_message_ack_rows";

// $1 clientid, $2 node, $3 connected_at
std::string client_connected_sql();
// $1 clientid, $2 connected_at: a late disconnect of a taken-over connection does not
// mark the newer connection offline.
std::string client_disconnected_sql();
// $1 clientid -> (topic, qos)
std::string subscription_lookup_sql();
// $1 msgid, $2 sender, $3 topic, $4 qos, $5 retain, $6 payload, $7 arrived
std::string message_insert_sql(bool msgid_unique);
// The types message_insert_rows casts the arrays' elements to: the types of mqtt_msg's
// columns without their length, so that a value too long for its column fails as it does
// in the one-row statement instead of being cut.
struct msg_column_types {
    std::string msgid = "character varying";
    std::string sender = "character varying";
    std::string topic = "character varying";
    std::string qos = "integer";
    std::string retain = "integer";
    std::string payload = "text";
};
// Many rows in one statement, in the order of the arrays (ids in that order): the same
// seven values as message_insert, each parameter an array of them, bound in binary form:
// msgid, sender, topic text[]; qos, retain bigint[] for an integer column, text[] for
// another; payload bytea[] for a bytea column, text[] for another; arrived timestamptz[].
// -> (msgid, id) of the rows inserted
std::string message_insert_rows_sql(bool msgid_unique, const msg_column_types& types);
// smallint, integer or bigint.
bool is_integer_type(std::string_view type);
// $1 topic, $2 msgid, $3 sender, $4 qos, $5 payload, $6 arrived
std::string retain_upsert_sql();
// $1 topic
std::string retain_delete_sql();
// exact: $1 topic; wild: $1 LIKE prefix, $2 regex -> (msgid, sender, topic, qos, payload)
std::string retain_lookup_sql(bool wildcard);
// Creates the ack pointer (clientid, filter) at the newest matching message if there is
// none, returning its mid only when it created it.
// exact: $1 clientid, $2 filter; wild: $1 clientid, $2 filter, $3 LIKE prefix, $4 regex
std::string ack_pointer_create_sql(bool wildcard);
// The unread messages after the pointer, oldest first.
// exact: $1 clientid, $2 filter, $3 time range (interval or NULL), $4 subscribed at,
//        $5 limit (or NULL)
// wild:  $1 clientid, $2 filter, $3 LIKE prefix, $4 regex, $5 time range,
//        $6 subscribed at, $7 limit
// -> (id, msgid, sender, topic, qos, payload)
std::string fetch_sql(bool wildcard);
// $1 clientid, $2 filter, $3 msgid: the pointer moves forward only, and only when the
// message has a row.
std::string ack_advance_sql();
// The same for many acks at once: $1 clientids, $2 filters, $3 msgids, $4 the messages'
// row ids where known (NULL: looked up by msgid). Each pointer moves to the furthest of
// its acked messages, as the acks one after another would.
std::string ack_advance_rows_sql();
// Both in one statement, the rows first: $1..$7 as message_insert_rows, $8..$11 as
// ack_advance_rows; an ack of a message inserted here finds its row id among the rows
// inserted. -> (msgid, id) of the rows inserted
std::string message_ack_rows_sql(bool msgid_unique, const msg_column_types& types);

// "YYYY-MM-DD HH:MM:SS.ffffff+00" (microseconds, UTC).
std::string timestamp_text(std::chrono::system_clock::time_point t);
// A duration as an interval literal: "7200000 milliseconds".
std::string interval_text(std::chrono::milliseconds d);

}  // namespace mqttd::persistence::sql
