#pragma once
// Errors of the PostgreSQL client layer, as std::error_code in two categories:
//  - sqlstate_category(): the server's five-character SQLSTATE, packed into the int
//    (base 36, so "00000" successful_completion is 0, i.e. "no error");
//  - client_category(): conditions that have no SQLSTATE (connection lost, timeouts...).
// Hot paths return these codes; exceptions are kept for programming errors.
#include <string>
#include <string_view>
#include <system_error>

namespace mqttd::pg {

// Packs a SQLSTATE ("23505") into an int; -1 when it is not five characters of [0-9A-Z].
constexpr int pack_sqlstate(std::string_view s) noexcept {
    if (s.size() != 5) return -1;
    int v = 0;
    for (char c : s) {
        int d;
        if (c >= '0' && c <= '9') d = c - '0';
        else if (c >= 'A' && c <= 'Z') d = c - 'A' + 10;
        else return -1;
        v = v * 36 + d;
    }
    return v;
}

// The SQLSTATEs the broker tests for by name. Any other code is still representable:
// sqlstate_error("XXXXX").
enum class sqlstate : int {
    connection_exception = pack_sqlstate("08000"),
    connection_failure = pack_sqlstate("08006"),
    protocol_violation = pack_sqlstate("08P01"),
    string_data_right_truncation = pack_sqlstate("22001"),
    numeric_value_out_of_range = pack_sqlstate("22003"),
    invalid_text_representation = pack_sqlstate("22P02"),
    character_not_in_repertoire = pack_sqlstate("22021"),
    not_null_violation = pack_sqlstate("23502"),
    foreign_key_violation = pack_sqlstate("23503"),
    unique_violation = pack_sqlstate("23505"),
    check_violation = pack_sqlstate("23514"),
    in_failed_sql_transaction = pack_sqlstate("25P02"),
    invalid_sql_statement_name = pack_sqlstate("26000"),
    invalid_password = pack_sqlstate("28P01"),
    serialization_failure = pack_sqlstate("40001"),
    deadlock_detected = pack_sqlstate("40P01"),
    syntax_error = pack_sqlstate("42601"),
    undefined_table = pack_sqlstate("42P01"),
    undefined_column = pack_sqlstate("42703"),
    duplicate_prepared_statement = pack_sqlstate("42P05"),
    query_canceled = pack_sqlstate("57014"),
    admin_shutdown = pack_sqlstate("57P01"),
    crash_shutdown = pack_sqlstate("57P02"),
    cannot_connect_now = pack_sqlstate("57P03"),
};

// Conditions of our own, without a SQLSTATE.
enum class errc : int {
    connection_lost = 1,  // the socket failed or the server went away mid-operation
    not_connected,        // no usable connection (never connected, broken, or reconnecting)
    timeout,              // connect, query or acquire took longer than allowed
    closed,               // close() was called while the operation was pending
    connect_failed,       // libpq could not establish a session (refused, auth, DNS...)
    pipeline_aborted,     // not executed: an earlier step of the same sync segment failed
    client_error,         // libpq reported an error without a SQLSTATE (e.g. out of memory)
    protocol_error,       // a result arrived that does not fit what was sent
    too_many_waiters,     // the pool's bounded queue of acquirers is full
};

const std::error_category& sqlstate_category() noexcept;
const std::error_category& client_category() noexcept;

std::error_code make_error_code(sqlstate e) noexcept;
std::error_code make_error_code(errc e) noexcept;

// The error for a SQLSTATE as the server sends it; client_error if it is malformed.
std::error_code sqlstate_error(std::string_view code) noexcept;
// The five characters back, or "" when `ec` is not in sqlstate_category().
std::string sqlstate_of(const std::error_code& ec);

// True when the error means the connection cannot be used any more (or never was): a
// caller may retry on another connection. SQLSTATE class 08, the server's shutdown and
// session-terminating codes (57P01..57P05, 25P03), and our own connection_lost,
// not_connected, connect_failed, timeout and closed.
bool is_connection_error(const std::error_code& ec) noexcept;

// True when the server rejected the statement for what it is or carries: classes 0A, 21,
// 22 (data), 23 (constraints), 2F, 38, 39, 42 (syntax, undefined table, privileges), 44,
// 54 (limits) and P0 (raised by a trigger). Writing it again cannot succeed. Anything else
// (a lost connection, a serialization failure, a full disk, a cancelled query, an error
// without a SQLSTATE) may pass on a later try.
bool is_statement_error(const std::error_code& ec) noexcept;

}  // namespace mqttd::pg

template <>
struct std::is_error_code_enum<mqttd::pg::sqlstate> : std::true_type {};
template <>
struct std::is_error_code_enum<mqttd::pg::errc> : std::true_type {};
