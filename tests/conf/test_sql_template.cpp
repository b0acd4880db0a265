#include <doctest/doctest.h>

#include <array>
#include <stdexcept>

#include "conf/sql_template.hpp"

using conf::bind_variables;

namespace {

constexpr std::array<std::string_view, 3> vars{"clientid", "topic", "qos"};

std::string bind_error(std::string_view sql) {
    try {
        bind_variables(sql, vars);
    } catch (const std::invalid_argument& e) {
        return e.what();
    }
    return "no error";
}

}  // namespace

TEST_CASE("the seed's example becomes a positional parameter") {
    const auto s = bind_variables("insert into conn(clientid) values(${clientid})", vars);
    CHECK(s.text == "insert into conn(clientid) values($1)");
    CHECK(s.params == std::vector<std::string>{"clientid"});
}

TEST_CASE("parameters are numbered in order of appearance; a repeated name gets a new one") {
    const auto s = bind_variables("insert into sub(clientid, topic, qos, c2) values(${clientid}, ${topic}, ${qos}, ${clientid})", vars);
    CHECK(s.text == "insert into sub(clientid, topic, qos, c2) values($1, $2, $3, $4)");
    CHECK(s.params == std::vector<std::string>{"clientid", "topic", "qos", "clientid"});
}

TEST_CASE("text without variables is unchanged") {
    const auto s = bind_variables("delete from t where a = 'x' and b = $1", vars);
    CHECK(s.text == "delete from t where a = 'x' and b = $1");
    CHECK(s.params.empty());
}

TEST_CASE("substitution is textual, literals included") {
    const auto s = bind_variables("select '${topic}'", vars);
    CHECK(s.text == "select '$1'");
    CHECK(s.params == std::vector<std::string>{"topic"});
}

TEST_CASE("$$ dollar quoting is not a variable") {
    const auto s = bind_variables("do $$ begin perform 1; end $$; select $${x}$$", vars);
    CHECK(s.text == "do $$ begin perform 1; end $$; select $${x}$$");
    CHECK(s.params.empty());
    const auto tagged = bind_variables("select $q$a$q$, ${qos}", vars);
    CHECK(tagged.text == "select $q$a$q$, $1");
}

TEST_CASE("unknown and unterminated variables") {
    CHECK(bind_error("select ${msgid}") == "unknown variable ${msgid}; this hookpoint has: clientid, topic, qos");
    CHECK(bind_error("select ${}") == "unknown variable ${}; this hookpoint has: clientid, topic, qos");
    CHECK(bind_error("select ${clientid") == "unterminated ${ in \"select ${clientid\"");
}
