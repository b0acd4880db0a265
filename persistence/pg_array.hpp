#pragma once
// One-dimensional PostgreSQL arrays, bound as one parameter ($1::text[]) so that one
// statement can take the values of many rows (INSERT ... SELECT FROM
// unnest($1::text[], $2::integer[])).
//   array_literal: the text form. Every element is quoted, with `"` and `\` escaped, so
//                  any text goes in as it is.
//   binary_array:  the binary form (PostgreSQL's array_send), bound with param::binary:
//                  nothing to escape here and nothing to parse on the server. Its
//                  element type must be exactly the parameter's (text for $1::text[]).
#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

#include "persistence/pg_batch.hpp"

namespace mqttd::pg {

class array_literal {
public:
    array_literal() { clear(); }

    void add(std::string_view element);
    void add(std::int64_t element);
    void add_null();

    // "{...}"; the literal stays usable for more elements.
    std::string_view str();
    void clear();

private:
    void separate();

    std::string text_;
    bool closed_ = false;
};

class binary_array {
public:
    // element: oids::text, oids::bytea (bytes as they are), oids::int8, oids::timestamptz.
    explicit binary_array(oid element) : element_(element) { clear(); }

    void add(std::string_view bytes);
    void add(std::int64_t v);  // int8
    void add(std::chrono::system_clock::time_point t);  // timestamptz, in microseconds
    void add_null();

    // The bytes to bind; the array stays usable for more elements.
    std::string_view bytes();
    std::size_t size() const noexcept { return count_; }
    // Empties the array and keeps its buffer (for elements of another type, if given).
    void clear();
    void clear(oid element) {
        element_ = element;
        clear();
    }

private:
    void put32(std::uint32_t v);
    void put64(std::uint64_t v);

    oid element_;
    std::string data_;
    std::uint32_t count_ = 0;
    bool has_null_ = false;
};

}  // namespace mqttd::pg
