// The SQLSTATE and client error categories: packing, messages, classification.
#include <doctest/doctest.h>

#include <ostream>  // doctest prints std::error_code with it

#include "persistence/pg_error.hpp"

using namespace mqttd::pg;

TEST_CASE("SQLSTATE codes pack into the int and back") {
    CHECK(pack_sqlstate("00000") == 0);
    CHECK(pack_sqlstate("2350") == -1);
    CHECK(pack_sqlstate("23a05") == -1);
    for (const char* code : {"23505", "22001", "08006", "57P01", "XX000", "0A000", "ZZZZZ"}) {
        auto ec = sqlstate_error(code);
        CHECK(ec.category() == sqlstate_category());
        CHECK(sqlstate_of(ec) == code);
    }
    CHECK(sqlstate_error("bad") == errc::client_error);
    CHECK(sqlstate_of(make_error_code(errc::timeout)).empty());
}

TEST_CASE("named SQLSTATEs compare with what the server sends") {
    CHECK(sqlstate_error("23505") == sqlstate::unique_violation);
    CHECK(sqlstate_error("22001") == sqlstate::string_data_right_truncation);
    CHECK(sqlstate_error("23505") != sqlstate::string_data_right_truncation);
    CHECK(std::error_code(sqlstate::admin_shutdown) == sqlstate_error("57P01"));
}

TEST_CASE("messages name the condition, or at least its class") {
    CHECK(sqlstate_error("23505").message() == "unique_violation (SQLSTATE 23505)");
    CHECK(sqlstate_error("22001").message() == "string_data_right_truncation (SQLSTATE 22001)");
    CHECK(sqlstate_error("08006").message() == "connection_failure (SQLSTATE 08006)");
    CHECK(sqlstate_error("08999").message() == "connection_exception class (SQLSTATE 08999)");
    CHECK(sqlstate_error("23999").message() == "integrity_constraint_violation class (SQLSTATE 23999)");
    CHECK(sqlstate_error("ZZ000").message() == "SQLSTATE ZZ000");
    CHECK(std::string(sqlstate_category().name()) == "pgsql.sqlstate");
    CHECK(make_error_code(errc::connection_lost).message().find("lost") != std::string::npos);
}

TEST_CASE("connection errors are told apart from statement errors") {
    for (const char* code : {"08000", "08003", "08006", "08P01", "57P01", "57P02", "57P03", "25P03"})
        CHECK_MESSAGE(is_connection_error(sqlstate_error(code)), code);
    for (const char* code : {"23505", "22001", "42P01", "40001", "57014", "00000"})
        CHECK_MESSAGE(!is_connection_error(sqlstate_error(code)), code);
    CHECK(is_connection_error(errc::connection_lost));
    CHECK(is_connection_error(errc::not_connected));
    CHECK(is_connection_error(errc::connect_failed));
    CHECK(is_connection_error(errc::timeout));
    CHECK(is_connection_error(errc::closed));
    CHECK(!is_connection_error(errc::pipeline_aborted));
    CHECK(!is_connection_error(errc::too_many_waiters));
    CHECK(!is_connection_error(std::make_error_code(std::errc::connection_reset)));
    CHECK(!is_connection_error(std::error_code{}));
}

TEST_CASE("only errors about the statement itself say that writing it again is useless") {
    for (const char* code : {"23505", "23514", "22001", "22021", "42P01", "42501", "54000", "0A000", "P0001", "21000"})
        CHECK_MESSAGE(is_statement_error(sqlstate_error(code)), code);
    // Transient, or not about the row: a batch meeting them is written again.
    for (const char* code : {"40001", "40P01", "53100", "53300", "57014", "55P03", "25P02", "58030", "XX000", "08006",
                             "57P01", "00000"})
        CHECK_MESSAGE(!is_statement_error(sqlstate_error(code)), code);
    CHECK(!is_statement_error(errc::client_error));
    CHECK(!is_statement_error(errc::protocol_error));
    CHECK(!is_statement_error(errc::connection_lost));
    CHECK(!is_statement_error(errc::pipeline_aborted));
    CHECK(!is_statement_error(std::error_code{}));
}

TEST_CASE("our timeout is a std::errc::timed_out condition") {
    CHECK(make_error_code(errc::timeout) == std::errc::timed_out);
    CHECK(make_error_code(errc::connection_lost) != std::errc::timed_out);
}
