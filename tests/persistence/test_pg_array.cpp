// Array literals: what goes in comes out of unnest() as it was, element for element, in
// order, whatever the text holds; integers and NULLs; bytea elements in hex.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "persistence/pg_array.hpp"
#include "pg_test_env.hpp"

namespace pg = mqttd::pg;

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
    const std::vector<std::string> texts = {
        "", "plain", "NULL", "null", "a,b", "{braces}", "\"quoted\"", "back\\slash", "\\", "trailing\\",
        " spaced ", "tab\tnew\nline", "ünïcödé ✓ 😀", "\\x41", "'single'", "x'); DROP TABLE mqtt_msg;--"};
    pg::array_literal a;
    for (const auto& t : texts) a.add(t);
    a.add_null();
    auto r = s.sql("SELECT x, x IS NULL FROM unnest($1::text[]) WITH ORDINALITY AS t(x, n) ORDER BY n", {a.str()});
    REQUIRE(r.rows.size() == texts.size() + 1);
    for (std::size_t i = 0; i < texts.size(); ++i) {
        CAPTURE(texts[i]);
        CHECK(r.rows.get(i, 0) == texts[i]);
        CHECK(r.rows.get(i, 1) == "f");
    }
    CHECK(r.rows.get(texts.size(), 1) == "t");

    pg::array_literal ints;
    for (std::int64_t v : {0LL, 1LL, -1LL, 9223372036854775807LL, -9223372036854775807LL - 1}) ints.add(v);
    r = s.sql("SELECT string_agg(x::text, ' ' ORDER BY n) FROM unnest($1::bigint[]) WITH ORDINALITY AS t(x, n)",
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
