#pragma once
// The text form of a one-dimensional PostgreSQL array, bound as one parameter ($1::text[])
// so that one statement can take the values of many rows (INSERT ... SELECT FROM
// unnest($1::text[], $2::integer[])). Every element is quoted, with `"` and `\` escaped,
// so any text goes in as it is.
#include <cstdint>
#include <string>
#include <string_view>

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

}  // namespace mqttd::pg
