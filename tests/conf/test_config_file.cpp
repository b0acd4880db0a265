#include <doctest/doctest.h>

#include "conf/config_file.hpp"
#include "temp_config.hpp"

using conf::config_error;
using conf::parse_config;
using conf::read_config_files;
using conf_test::temp_config;

namespace {

std::string parse_error(std::string_view text) {
    try {
        parse_config(text, "f.conf");
    } catch (const config_error& e) {
        return e.what();
    }
    return "no error";
}

}  // namespace

TEST_CASE("key = value lines, comments and blank lines") {
    const auto entries = parse_config(
        "## a comment\n"
        "# another\n"
        "\n"
        "   \t\n"
        "   # indented comment\n"
        "  a.b  =  value with spaces  \n"
        "x=1\n"
        "empty =\n"
        "hook = {\"topic\": \"#\", \"sql\": \"a = b\"}\n"
        "crlf = yes\r\n"
        "last = no newline",
        "f.conf");
    REQUIRE(entries.size() == 6);
    CHECK(entries[0].key == "a.b");
    CHECK(entries[0].value == "value with spaces");
    CHECK(entries[0].where.file == "f.conf");
    CHECK(entries[0].where.line == 6);
    CHECK(entries[1].key == "x");
    CHECK(entries[1].value == "1");
    CHECK(entries[2].key == "empty");
    CHECK(entries[2].value == "");
    CHECK(entries[3].value == "{\"topic\": \"#\", \"sql\": \"a = b\"}");
    CHECK(entries[4].value == "yes");
    CHECK(entries[4].where.line == 10);
    CHECK(entries[5].value == "no newline");
    CHECK(entries[5].where.line == 11);
}

TEST_CASE("a byte order mark does not stick to the first key") {
    const auto entries = parse_config("\xEF\xBB\xBFkey = v\n", "f.conf");
    REQUIRE(entries.size() == 1);
    CHECK(entries[0].key == "key");
}

TEST_CASE("duplicates within one text are all returned, in order") {
    const auto entries = parse_config("a = 1\na = 2\n", "f.conf");
    REQUIRE(entries.size() == 2);
    CHECK(entries[1].value == "2");
}

TEST_CASE("bad syntax names file and line") {
    CHECK(parse_error("a = 1\njust words\n") == "f.conf:2: expected `key = value`");
    CHECK(parse_error("\n\n = value\n") == "f.conf:3: empty key");
    CHECK(parse_error("a b = c\n") == "f.conf:1: key \"a b\" contains whitespace");
    CHECK(parse_error("a\tb=c\n") == "f.conf:1: key \"a\tb\" contains whitespace");
}

TEST_CASE("later files override earlier ones; each value keeps its origin") {
    const temp_config first("a = 1\nb = 2\nc = 3\n");
    const temp_config second("# override\nb = 20\nd = 4\na = 10\n");
    const auto entries = read_config_files({first.path(), second.path()});
    REQUIRE(entries.size() == 4);
    // In the order of the winning lines.
    CHECK(entries[0].key == "c");
    CHECK(entries[0].value == "3");
    CHECK(entries[0].where.file == first.path());
    CHECK(entries[0].where.line == 3);
    CHECK(entries[1].key == "b");
    CHECK(entries[1].value == "20");
    CHECK(entries[1].where.file == second.path());
    CHECK(entries[1].where.line == 2);
    CHECK(entries[2].key == "d");
    CHECK(entries[3].key == "a");
    CHECK(entries[3].value == "10");
    CHECK(entries[3].where.line == 4);
}

TEST_CASE("within one file the last value wins") {
    const temp_config file("a = 1\na = 2\n");
    const auto entries = read_config_files({file.path()});
    REQUIRE(entries.size() == 1);
    CHECK(entries[0].value == "2");
    CHECK(entries[0].where.line == 2);
}

TEST_CASE("a syntax error in the second file names that file") {
    const temp_config first("a = 1\n");
    const temp_config second("b = 2\noops\n");
    try {
        read_config_files({first.path(), second.path()});
        FAIL("no error");
    } catch (const config_error& e) {
        CHECK(std::string(e.what()) == second.path() + ":2: expected `key = value`");
    }
}

TEST_CASE("an unreadable file is an error naming it") {
    const std::string path = "/nonexistent-dir/mqttd.conf";
    try {
        read_config_files({path});
        FAIL("no error");
    } catch (const config_error& e) {
        CHECK(std::string(e.what()) == path + ": cannot read: No such file or directory");
    }
}
