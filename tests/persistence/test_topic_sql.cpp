// Topic filters as SQL: the translation is checked against mqtt::topic_matches on many
// (filter, topic) pairs, by PostgreSQL itself.
#include <doctest/doctest.h>

#include <algorithm>
#include <set>
#include <string>
#include <vector>

#include "pg_test_env.hpp"
#include "persistence/topic_sql.hpp"
#include "protocol/topic.hpp"

using namespace mqttd::persistence;
using namespace pgtest;

TEST_CASE("exact filters stay exact; wildcards get a LIKE prefix and an anchored regex") {
    CHECK(filter_condition("a/b").exact);
    CHECK(filter_condition("$SYS/x").exact);

    auto t = filter_condition("a/+/c");
    CHECK_FALSE(t.exact);
    CHECK(t.like == "a/%");
    CHECK(t.regex == "^a/[^/]*/c$");

    t = filter_condition("sport/tennis/#");
    CHECK(t.like == "sport/tennis%");
    CHECK(t.regex == "^sport/tennis(/.*)?$");

    t = filter_condition("#");
    CHECK(t.like == "%");
    CHECK(t.regex == "^([^$].*)?$");

    t = filter_condition("+/x");
    CHECK(t.like == "%");
    CHECK(t.regex == "^([^$/][^/]*)?/x$");

    t = filter_condition("10%_off\\/+");
    CHECK(t.like == "10\\%\\_off\\\\/%");
    CHECK(t.regex == "^10\\%\\_off\\\\/[^/]*$");
}

namespace {

const std::vector<std::string> topics = {
    "a", "a/b", "a/b/c", "a/b/c/d", "a/", "/a", "/", "//", "a//b", "a/b/", "b/a",
    "$SYS/broker", "$SYS", "$x/a", "a/$x", "a$/b", "sport/tennis/player1", "sport/tennis",
    "sport", "sport/", "sport/tennis/player1/ranking", "10%_off", "10%_off/x", "10a_off/x", "100_off/x",
    "back\\slash/x", "back\\\\slash/x", "dot.star*/x", "re(g)ex[1]{2}/y", "^caret$/z", "plus+/hash#",
    "space here/x", "ünï/cödé", "😀/x", "line\nbreak/x", "tab\there", "a.b", "axb", "q?/x", "pipe|/x",
};

std::vector<std::string> filters() {
    std::vector<std::string> f = {
        "#", "+", "+/+", "+/#", "/#", "/+", "+/", "a/#", "a/+", "a/+/c", "a/+/+", "a/b/#", "a//#", "a/+/#",
        "+/b", "+/b/#", "$SYS/#", "$SYS/+", "$x/+", "sport/tennis/#", "sport/#", "sport/+", "sport/+/player1",
        "10%_off/#", "10%_off/+", "10a_off/+", "back\\slash/+", "back\\\\slash/#", "dot.star*/+",
        "re(g)ex[1]{2}/+", "^caret$/+", "plus+/hash#", "space here/+", "ünï/+", "😀/#", "line\nbreak/+",
        "tab\there/#", "a.b/#", "q?/+", "pipe|/+", "+/+/+/+", "#/#",
    };
    // And every topic with each of its levels replaced by '+', and cut with '#'.
    for (const auto& t : topics) {
        std::vector<std::string> lv;
        std::size_t s = 0;
        for (;;) {
            auto e = t.find('/', s);
            lv.push_back(t.substr(s, e == std::string::npos ? std::string::npos : e - s));
            if (e == std::string::npos) break;
            s = e + 1;
        }
        for (std::size_t i = 0; i < lv.size(); ++i) {
            std::string plus, hash;
            for (std::size_t k = 0; k < lv.size(); ++k) {
                if (k) plus += '/';
                plus += k == i ? "+" : lv[k];
            }
            for (std::size_t k = 0; k < i; ++k) hash += lv[k] + "/";
            hash += "#";
            f.push_back(plus);
            f.push_back(hash);
        }
    }
    std::sort(f.begin(), f.end());
    f.erase(std::unique(f.begin(), f.end()), f.end());
    std::erase_if(f, [](const std::string& x) { return !mqtt::valid_topic_filter(x) || mqtt::parse_shared(x); });
    return f;
}

}  // namespace

TEST_CASE("the SQL condition selects exactly the topics mqtt::topic_matches selects (real PostgreSQL)") {
    PGTEST_REQUIRE_DSN(d);
    asio::io_context io;
    session s(io, d);
    const std::string table = unique("bt_topics");
    s.sql("CREATE TABLE " + table + " (id serial, topic character varying(200))");
    for (const auto& t : topics) s.sql("INSERT INTO " + table + " (topic) VALUES ($1)", {t});

    const auto fs = filters();
    REQUIRE(fs.size() > 80);
    std::size_t pairs = 0, matched = 0;
    for (const auto& f : fs) {
        const auto c = filter_condition(f);
        mqttd::pg::batch b;
        if (c.exact)
            b.query("SELECT topic FROM " + table + " WHERE topic = $1", {f});
        else
            b.query("SELECT topic FROM " + table + " WHERE topic LIKE $1 ESCAPE '\\' AND topic ~ $2", {c.like, c.regex});
        auto r = s.exec(b);
        REQUIRE_MESSAGE(r.ok(), f, ": ", r.steps[0].message);
        std::set<std::string> got, want;
        for (std::size_t i = 0; i < r.steps[0].rows.size(); ++i) got.emplace(r.steps[0].rows.get(i, 0));
        for (const auto& t : topics)
            if (mqtt::topic_matches(f, t)) want.insert(t);
        CAPTURE(f);
        CAPTURE(c.like);
        CAPTURE(c.regex);
        CHECK(got == want);
        pairs += topics.size();
        matched += want.size();
    }
    MESSAGE(fs.size() << " filters x " << topics.size() << " topics = " << pairs << " pairs, " << matched << " matches");
    CHECK(matched > 200);
    s.sql("DROP TABLE " + table);
}
