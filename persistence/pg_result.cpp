#include "persistence/pg_result.hpp"

#include <libpq-fe.h>

#include <charconv>
#include <cstring>
#include <stdexcept>

namespace mqttd::pg {

void rowset::deleter::operator()(pg_result* r) const noexcept { PQclear(r); }

std::size_t rowset::size() const noexcept { return res_ ? static_cast<std::size_t>(PQntuples(res_.get())) : 0; }

std::size_t rowset::columns() const noexcept { return res_ ? static_cast<std::size_t>(PQnfields(res_.get())) : 0; }

void rowset::check(std::size_t row, std::size_t col) const {
    if (row >= size() || col >= columns()) throw std::out_of_range("pg::rowset: row or column out of range");
}

bool rowset::is_null(std::size_t row, std::size_t col) const {
    check(row, col);
    return PQgetisnull(res_.get(), static_cast<int>(row), static_cast<int>(col)) != 0;
}

std::string_view rowset::get(std::size_t row, std::size_t col) const {
    check(row, col);
    int r = static_cast<int>(row), c = static_cast<int>(col);
    return {PQgetvalue(res_.get(), r, c), static_cast<std::size_t>(PQgetlength(res_.get(), r, c))};
}

std::string rowset::get_bytes(std::size_t row, std::size_t col) const {
    std::string_view v = get(row, col);
    if (PQfformat(res_.get(), static_cast<int>(col)) == 1) return std::string(v);
    // Text format: bytea arrives hex-encoded ("\x..."); PQunescapeBytea decodes it.
    std::size_t n = 0;
    unsigned char* raw = PQunescapeBytea(reinterpret_cast<const unsigned char*>(v.data()), &n);
    if (!raw) throw std::bad_alloc();
    std::string out(reinterpret_cast<const char*>(raw), n);
    PQfreemem(raw);
    return out;
}

std::optional<std::int64_t> rowset::get_int(std::size_t row, std::size_t col) const {
    if (is_null(row, col)) return std::nullopt;
    std::string_view v = get(row, col);
    if (PQfformat(res_.get(), static_cast<int>(col)) == 1) {
        // Binary integers are big-endian, two, four or eight bytes.
        if (v.size() != 2 && v.size() != 4 && v.size() != 8) return std::nullopt;
        std::uint64_t u = 0;
        for (char ch : v) u = (u << 8) | static_cast<unsigned char>(ch);
        unsigned bits = static_cast<unsigned>(v.size() * 8);
        if (bits < 64 && (u >> (bits - 1)) != 0) u |= ~std::uint64_t{0} << bits;  // sign-extend
        return static_cast<std::int64_t>(u);
    }
    std::int64_t out = 0;
    auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), out);
    if (ec != std::errc{} || p != v.data() + v.size()) return std::nullopt;
    return out;
}

std::optional<std::size_t> rowset::column(std::string_view name) const {
    for (std::size_t c = 0; c < columns(); ++c)
        if (column_name(c) == name) return c;
    return std::nullopt;
}

std::string_view rowset::column_name(std::size_t col) const {
    if (col >= columns()) throw std::out_of_range("pg::rowset: column out of range");
    return PQfname(res_.get(), static_cast<int>(col));
}

std::size_t batch_result::first_error() const noexcept {
    for (std::size_t i = 0; i < steps.size(); ++i)
        if (steps[i].ec) return i;
    return steps.size();
}

std::error_code batch_result::error() const noexcept {
    std::size_t i = first_error();
    return i < steps.size() ? steps[i].ec : std::error_code{};
}

}  // namespace mqttd::pg
