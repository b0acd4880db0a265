// Array literals: what goes in comes out of unnest() as it was, element for element, in
// order, whatever the text holds; integers and NULLs; bytea elements in hex.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "persistence/pg_array.hpp"
#include "pg_test_env.hpp"

namespace pg = mqttd::pg;

namespace {

// Text that a naive array literal would get wrong, and what unnest() gives back.
const std::vector<std::string> sample_texts = {
    "", "plain", "NULL", "null", "a,b", "{braces}", "\"quoted\"", "back\\slash", "\\", "trailing\\",
    " spaced ", "tab\tnew\nline", "ünïcödé ✓ 😀", "\\x41", "'single'", "x'); DROP TABLE mqtt_msg;--"};
constexpr const char* texts_query = "SELECT x, x IS NULL FROM unnest($1::text[]) WITH ORDINALITY AS t(x, n) ORDER BY n";

// The rows of texts_query for sample_texts and then a NULL.
void check_texts_then_null(const pg::step_result& r) {
    REQUIRE(r.rows.size() == sample_texts.size() + 1);
    for (std::size_t i = 0; i < sample_texts.size(); ++i) {
        CAPTURE(sample_texts[i]);
        CHECK(r.rows.get(i, 0) == sample_texts[i]);
        CHECK(r.rows.get(i, 1) == "f");
    }
    CHECK(r.rows.get(sample_texts.size(), 1) == "t");
}

}  // namespace

TEST_CASE("array literal: the text form") {
    pg::array_literal a;
    CHECK(a.str() == "{}");
    a.add("x");
    a.add(std::int64_t{-7});
    a.add_null();
    a.add("a\"b\\c");
    CHECK(a.str() == R"({"x",-7,NULL,"a\"b\\c"})");
    a.add("more");  // still usable after str()
    CHECK(a.str() == R"({"x",-7,NULL,"a\"b\\c","more"})");
    a.clear();
    a.add("");
    CHECK(a.str() == R"({""})");
}

TEST_CASE("array literal: every element comes back from the server as it went in") {
    PGTEST_REQUIRE_DSN(d);
    pgtest::asio::io_context io;
    pgtest::session s(io, d);
    pg::array_literal a;
    for (const auto& t : sample_texts) a.add(t);
    a.add_null();
    check_texts_then_null(s.sql(texts_query, {a.str()}));

    pg::array_literal ints;
    for (std::int64_t v : {0LL, 1LL, -1LL, 9223372036854775807LL, -9223372036854775807LL - 1}) ints.add(v);
    auto r = s.sql("SELECT string_agg(x::text, ' ' ORDER BY n) FROM unnest($1::bigint[]) WITH ORDINALITY AS t(x, n)",
              {ints.str()});
    CHECK(r.rows.get(0, 0) == "0 1 -1 9223372036854775807 -9223372036854775808");

    // bytea's text input, \x and hex, inside a text array: every byte value.
    std::string all, hex = "\\x";
    for (int i = 0; i < 256; ++i) {
        all.push_back(static_cast<char>(i));
        hex += fmt::format("{:02x}", i);
    }
    pg::array_literal bytes;
    bytes.add(hex);
    r = s.sql("SELECT x, length(x) FROM unnest($1::bytea[]) AS t(x)", {bytes.str()});
    CHECK(r.rows.get(0, 1) == "256");
    CHECK(r.rows.get_bytes(0, 0) == all);
}

TEST_CASE("binary array: every element comes back from the server as it went in") {
    PGTEST_REQUIRE_DSN(d);
    pgtest::asio::io_context io;
    pgtest::session s(io, d);
    // Prepared, so that the parameter's type comes from the SQL (an ad-hoc query declares
    // a binary parameter bytea).
    int statements = 0;
    auto query = [&](const std::string& sql, pg::binary_array& a) {
        const auto name = "binary_array_" + std::to_string(++statements);
        s.conn.prepare(name, sql);
        pg::batch b;
        b.execute(name, {pg::param::binary(a.bytes())});
        return std::move(s.exec(b).steps.at(0));
    };
    pg::binary_array a(pg::oids::text);
    for (const auto& t : sample_texts) a.add(t);
    a.add_null();
    CHECK(a.size() == sample_texts.size() + 1);
    check_texts_then_null(query(texts_query, a));

    pg::binary_array ints(pg::oids::int8);
    for (std::int64_t v : {0LL, 1LL, -1LL, 9223372036854775807LL, -9223372036854775807LL - 1}) ints.add(v);
    auto r = query("SELECT string_agg(x::text, ' ' ORDER BY n) FROM unnest($1::bigint[]) WITH ORDINALITY AS t(x, n)", ints);
    CHECK(r.rows.get(0, 0) == "0 1 -1 9223372036854775807 -9223372036854775808");

    // Every byte value, raw.
    std::string all;
    for (int i = 0; i < 256; ++i) all.push_back(static_cast<char>(i));
    pg::binary_array bytes(pg::oids::bytea);
    bytes.add(all);
    r = query("SELECT x, length(x) FROM unnest($1::bytea[]) AS t(x)", bytes);
    CHECK(r.rows.get(0, 1) == "256");
    CHECK(r.rows.get_bytes(0, 0) == all);

    // Microseconds, before and after PostgreSQL's epoch (2000-01-01).
    using namespace std::chrono;
    pg::binary_array times(pg::oids::timestamptz);
    times.add(system_clock::time_point(microseconds(1'700'000'000'123'456LL)));
    times.add(system_clock::time_point(microseconds(0)));
    r = query("SELECT string_agg(to_char(x AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US'), ' ' ORDER BY n) "
              "FROM unnest($1::timestamptz[]) WITH ORDINALITY AS t(x, n)",
              times);
    CHECK(r.rows.get(0, 0) == "2023-11-14 22:13:20.123456 1970-01-01 00:00:00.000000");

    // Empty, and reused after clear().
    a.clear();
    r = query("SELECT cardinality($1::text[])", a);
    CHECK(r.rows.get(0, 0) == "0");
    a.add("again");
    r = query("SELECT ($1::text[])[1]", a);
    CHECK(r.rows.get(0, 0) == "again");
    // An element type other than the parameter's is refused, not misread.
    CHECK(query("SELECT cardinality($1::text[])", ints).ec);
}
