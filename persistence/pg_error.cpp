#include "persistence/pg_error.hpp"

#include <algorithm>
#include <array>
#include <utility>

namespace mqttd::pg {
namespace {

std::string unpack(int v) {
    if (v < 0) return {};
    std::string s(5, '0');
    for (int i = 4; i >= 0; --i) {
        int d = v % 36;
        s[static_cast<std::size_t>(i)] = static_cast<char>(d < 10 ? '0' + d : 'A' + d - 10);
        v /= 36;
    }
    return s;
}

// PostgreSQL's condition names (Appendix A) for the codes a broker is likely to meet.
constexpr std::pair<std::string_view, std::string_view> known_codes[] = {
    {"00000", "successful_completion"},
    {"08000", "connection_exception"},
    {"08001", "sqlclient_unable_to_establish_sqlconnection"},
    {"08003", "connection_does_not_exist"},
    {"08004", "sqlserver_rejected_establishment_of_sqlconnection"},
    {"08006", "connection_failure"},
    {"08007", "transaction_resolution_unknown"},
    {"08P01", "protocol_violation"},
    {"0A000", "feature_not_supported"},
    {"22001", "string_data_right_truncation"},
    {"22003", "numeric_value_out_of_range"},
    {"22004", "null_value_not_allowed"},
    {"22007", "invalid_datetime_format"},
    {"22008", "datetime_field_overflow"},
    {"22012", "division_by_zero"},
    {"22021", "character_not_in_repertoire"},
    {"22023", "invalid_parameter_value"},
    {"22P02", "invalid_text_representation"},
    {"22P03", "invalid_binary_representation"},
    {"22P05", "untranslatable_character"},
    {"23000", "integrity_constraint_violation"},
    {"23502", "not_null_violation"},
    {"23503", "foreign_key_violation"},
    {"23505", "unique_violation"},
    {"23514", "check_violation"},
    {"23P01", "exclusion_violation"},
    {"25001", "active_sql_transaction"},
    {"25006", "read_only_sql_transaction"},
    {"25P01", "no_active_sql_transaction"},
    {"25P02", "in_failed_sql_transaction"},
    {"25P03", "idle_in_transaction_session_timeout"},
    {"26000", "invalid_sql_statement_name"},
    {"28000", "invalid_authorization_specification"},
    {"28P01", "invalid_password"},
    {"3D000", "invalid_catalog_name"},
    {"3F000", "invalid_schema_name"},
    {"40001", "serialization_failure"},
    {"40002", "transaction_integrity_constraint_violation"},
    {"40003", "statement_completion_unknown"},
    {"40P01", "deadlock_detected"},
    {"42501", "insufficient_privilege"},
    {"42601", "syntax_error"},
    {"42703", "undefined_column"},
    {"42710", "duplicate_object"},
    {"42804", "datatype_mismatch"},
    {"42883", "undefined_function"},
    {"42P01", "undefined_table"},
    {"42P02", "undefined_parameter"},
    {"42P05", "duplicate_prepared_statement"},
    {"42P07", "duplicate_table"},
    {"42P08", "ambiguous_parameter"},
    {"42P18", "indeterminate_datatype"},
    {"53000", "insufficient_resources"},
    {"53100", "disk_full"},
    {"53200", "out_of_memory"},
    {"53300", "too_many_connections"},
    {"54000", "program_limit_exceeded"},
    {"55006", "object_in_use"},
    {"55P03", "lock_not_available"},
    {"57000", "operator_intervention"},
    {"57014", "query_canceled"},
    {"57P01", "admin_shutdown"},
    {"57P02", "crash_shutdown"},
    {"57P03", "cannot_connect_now"},
    {"57P04", "database_dropped"},
    {"57P05", "idle_session_timeout"},
    {"58000", "system_error"},
    {"58030", "io_error"},
    {"XX000", "internal_error"},
    {"XX001", "data_corrupted"},
    {"XX002", "index_corrupted"},
    {"P0001", "raise_exception"},
};

// Every SQLSTATE class, so that an unlisted code still gets a meaningful name.
constexpr std::pair<std::string_view, std::string_view> classes[] = {
    {"00", "successful_completion"},
    {"01", "warning"},
    {"02", "no_data"},
    {"03", "sql_statement_not_yet_complete"},
    {"08", "connection_exception"},
    {"09", "triggered_action_exception"},
    {"0A", "feature_not_supported"},
    {"0B", "invalid_transaction_initiation"},
    {"0F", "locator_exception"},
    {"0L", "invalid_grantor"},
    {"0P", "invalid_role_specification"},
    {"0Z", "diagnostics_exception"},
    {"20", "case_not_found"},
    {"21", "cardinality_violation"},
    {"22", "data_exception"},
    {"23", "integrity_constraint_violation"},
    {"24", "invalid_cursor_state"},
    {"25", "invalid_transaction_state"},
    {"26", "invalid_sql_statement_name"},
    {"27", "triggered_data_change_violation"},
    {"28", "invalid_authorization_specification"},
    {"2B", "dependent_privilege_descriptors_still_exist"},
    {"2D", "invalid_transaction_termination"},
    {"2F", "sql_routine_exception"},
    {"34", "invalid_cursor_name"},
    {"38", "external_routine_exception"},
    {"39", "external_routine_invocation_exception"},
    {"3B", "savepoint_exception"},
    {"3D", "invalid_catalog_name"},
    {"3F", "invalid_schema_name"},
    {"40", "transaction_rollback"},
    {"42", "syntax_error_or_access_rule_violation"},
    {"44", "with_check_option_violation"},
    {"53", "insufficient_resources"},
    {"54", "program_limit_exceeded"},
    {"55", "object_not_in_prerequisite_state"},
    {"57", "operator_intervention"},
    {"58", "system_error"},
    {"72", "snapshot_too_old"},
    {"F0", "config_file_error"},
    {"HV", "fdw_error"},
    {"P0", "plpgsql_error"},
    {"XX", "internal_error"},
};

class sqlstate_category_impl final : public std::error_category {
public:
    const char* name() const noexcept override { return "pgsql.sqlstate"; }
    std::string message(int v) const override {
        std::string code = unpack(v);
        if (code.empty()) return "invalid SQLSTATE";
        for (const auto& [c, n] : known_codes)
            if (c == code) return std::string(n) + " (SQLSTATE " + code + ")";
        std::string_view cls = std::string_view(code).substr(0, 2);
        for (const auto& [c, n] : classes)
            if (c == cls) return std::string(n) + " class (SQLSTATE " + code + ")";
        return "SQLSTATE " + code;
    }
};

class client_category_impl final : public std::error_category {
public:
    const char* name() const noexcept override { return "pgsql.client"; }
    std::string message(int v) const override {
        switch (static_cast<errc>(v)) {
        case errc::connection_lost: return "connection to the PostgreSQL server lost";
        case errc::not_connected: return "not connected to the PostgreSQL server";
        case errc::timeout: return "PostgreSQL operation timed out";
        case errc::closed: return "PostgreSQL connection closed while the operation was pending";
        case errc::connect_failed: return "cannot connect to the PostgreSQL server";
        case errc::pipeline_aborted: return "not executed: an earlier statement of the same pipeline segment failed";
        case errc::client_error: return "libpq error";
        case errc::protocol_error: return "unexpected result from the PostgreSQL server";
        case errc::too_many_waiters: return "too many operations waiting for a PostgreSQL connection";
        }
        return "unknown PostgreSQL client error";
    }
    std::error_condition default_error_condition(int v) const noexcept override {
        if (static_cast<errc>(v) == errc::timeout) return std::errc::timed_out;
        return {v, *this};
    }
};

}  // namespace

const std::error_category& sqlstate_category() noexcept {
    static const sqlstate_category_impl c;
    return c;
}

const std::error_category& client_category() noexcept {
    static const client_category_impl c;
    return c;
}

std::error_code make_error_code(sqlstate e) noexcept { return {static_cast<int>(e), sqlstate_category()}; }
std::error_code make_error_code(errc e) noexcept { return {static_cast<int>(e), client_category()}; }

std::error_code sqlstate_error(std::string_view code) noexcept {
    int v = pack_sqlstate(code);
    if (v < 0) return errc::client_error;
    return {v, sqlstate_category()};
}

std::string sqlstate_of(const std::error_code& ec) {
    if (ec.category() != sqlstate_category()) return {};
    return unpack(ec.value());
}

bool is_connection_error(const std::error_code& ec) noexcept {
    if (ec.category() == client_category()) {
        switch (static_cast<errc>(ec.value())) {
        case errc::connection_lost:
        case errc::not_connected:
        case errc::timeout:
        case errc::closed:
        case errc::connect_failed: return true;
        default: return false;
        }
    }
    if (ec.category() != sqlstate_category() || ec.value() <= 0) return false;
    constexpr int class_width = 36 * 36 * 36;  // the last three characters
    if (ec.value() / class_width == pack_sqlstate("08000") / class_width) return true;
    constexpr std::array session_ending{pack_sqlstate("57P01"), pack_sqlstate("57P02"), pack_sqlstate("57P03"),
                                        pack_sqlstate("57P04"), pack_sqlstate("57P05"), pack_sqlstate("25P03")};
    return std::find(session_ending.begin(), session_ending.end(), ec.value()) != session_ending.end();
}

bool is_statement_error(const std::error_code& ec) noexcept {
    if (ec.category() != sqlstate_category() || ec.value() <= 0 || is_connection_error(ec)) return false;
    constexpr int class_width = 36 * 36 * 36;
    constexpr std::array classes{"0A000", "21000", "22000", "23000", "2F000", "38000",
                                 "39000", "42000", "44000", "54000", "P0000"};
    const int cls = ec.value() / class_width;
    return std::any_of(classes.begin(), classes.end(),
                       [cls](const char* c) { return pack_sqlstate(c) / class_width == cls; });
}

}  // namespace mqttd::pg
