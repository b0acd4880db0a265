#pragma once
// What connection::run() gives back: per step an error code, the server's message, the
// rows (if the statement returned any) and the number of rows affected.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

struct pg_result;  // libpq's PGresult

namespace mqttd::pg {

// The rows of one statement, owning libpq's result: get() returns views into it, valid
// as long as the rowset lives. Out-of-range access is a programming error (throws).
class rowset {
public:
    rowset() noexcept = default;
    explicit rowset(pg_result* r) noexcept : res_(r) {}

    std::size_t size() const noexcept;     // rows
    std::size_t columns() const noexcept;
    bool empty() const noexcept { return size() == 0; }

    bool is_null(std::size_t row, std::size_t col) const;
    // The value as sent by the server: text, or raw bytes for a binary-format column.
    // "" for NULL.
    std::string_view get(std::size_t row, std::size_t col) const;
    // A bytea value as raw bytes, whichever result format it came in.
    std::string get_bytes(std::size_t row, std::size_t col) const;
    // An integer column (int2/int4/int8 in binary format, or any decimal text); nullopt
    // for NULL or a value that is not an integer.
    std::optional<std::int64_t> get_int(std::size_t row, std::size_t col) const;

    // The index of a column by name, or nullopt.
    std::optional<std::size_t> column(std::string_view name) const;
    std::string_view column_name(std::size_t col) const;

private:
    struct deleter {
        void operator()(pg_result* r) const noexcept;
    };
    void check(std::size_t row, std::size_t col) const;

    std::unique_ptr<pg_result, deleter> res_;
};

struct step_result {
    std::error_code ec;          // empty on success; a SQLSTATE or an errc otherwise
    std::string message;         // the server's (or libpq's) text when ec is set
    rowset rows;                 // empty for statements that return no rows
    std::uint64_t affected = 0;  // rows inserted, updated, deleted or returned

    bool ok() const noexcept { return !ec; }
};

struct batch_result {
    std::vector<step_result> steps;  // one per step, in order

    bool ok() const noexcept { return first_error() == steps.size(); }
    // The index of the first failed step, or steps.size() when all succeeded.
    std::size_t first_error() const noexcept;
    // The first failed step's error, or an empty code.
    std::error_code error() const noexcept;
};

}  // namespace mqttd::pg
