#include <doctest/doctest.h>

#include "protocol/topic.hpp"

using namespace mqtt;

TEST_CASE("topic: names") {
    CHECK(valid_topic_name("sport/tennis/player1"));
    CHECK(valid_topic_name("/"));
    CHECK(valid_topic_name("$SYS/broker/load"));
    CHECK(valid_topic_name(" "));
    CHECK_FALSE(valid_topic_name(""));  // [MQTT-4.7.3-1]
    CHECK_FALSE(valid_topic_name("sport/+"));
    CHECK_FALSE(valid_topic_name("sport/#"));
    CHECK_FALSE(valid_topic_name("sport+"));
}

TEST_CASE("topic: filters [MQTT-4.7.1-1], [MQTT-4.7.1-2]") {
    for (const char* ok : {"#", "+", "sport/#", "sport/tennis/#", "+/tennis/#", "sport/+/player1", "+/+", "/+",
                           "/", "//", "sport/", "$SYS/#", "a"})
        CHECK_MESSAGE(valid_topic_filter(ok), ok);
    for (const char* bad : {"", "sport/tennis#", "sport/tennis/#/ranking", "sport+", "sport/+x", "#/", "##", "++",
                            "a/#b", "+a/b"})
        CHECK_MESSAGE(!valid_topic_filter(bad), bad);
}

TEST_CASE("topic: wildcard detection") {
    CHECK(has_wildcard("a/+"));
    CHECK(has_wildcard("#"));
    CHECK_FALSE(has_wildcard("a/b"));
}

TEST_CASE("topic: shared subscriptions [MQTT-4.8.2-1], [MQTT-4.8.2-2]") {
    const auto s = parse_shared("$share/group/sport/+/player1");
    REQUIRE(s);
    CHECK(s->group == "group");
    CHECK(s->filter == "sport/+/player1");
    CHECK_FALSE(parse_shared("sport/tennis"));
    CHECK_FALSE(parse_shared("$share"));
    CHECK_FALSE(parse_shared("$sharex/g/f"));

    CHECK(valid_topic_filter("$share/g/f"));
    CHECK(valid_topic_filter("$share/g/#"));
    CHECK(valid_topic_filter("$share/g//"));
    CHECK(valid_topic_filter("$share"));  // no "/" after it: an ordinary topic filter
    CHECK_FALSE(valid_topic_filter("$share/g"));
    CHECK_FALSE(valid_topic_filter("$share/g/"));
    CHECK_FALSE(valid_topic_filter("$share//f"));
    CHECK_FALSE(valid_topic_filter("$share/g+/f"));
    CHECK_FALSE(valid_topic_filter("$share/+/f"));
    CHECK_FALSE(valid_topic_filter("$share/#/f"));
    CHECK_FALSE(valid_topic_filter("$share/g/f#"));
    CHECK_FALSE(valid_topic_filter("$share/"));
}

TEST_CASE("topic: matching (spec 4.7)") {
    CHECK(topic_matches("sport/tennis/player1/#", "sport/tennis/player1"));
    CHECK(topic_matches("sport/tennis/player1/#", "sport/tennis/player1/ranking"));
    CHECK(topic_matches("sport/tennis/player1/#", "sport/tennis/player1/score/wimbledon"));
    CHECK(topic_matches("sport/#", "sport"));
    CHECK(topic_matches("#", "sport/tennis"));
    CHECK(topic_matches("#", "/"));
    CHECK(topic_matches("sport/tennis/+", "sport/tennis/player1"));
    CHECK_FALSE(topic_matches("sport/tennis/+", "sport/tennis/player1/ranking"));
    CHECK_FALSE(topic_matches("sport/+", "sport"));
    CHECK(topic_matches("sport/+", "sport/"));
    CHECK(topic_matches("+/+", "/finance"));
    CHECK(topic_matches("/+", "/finance"));
    CHECK_FALSE(topic_matches("+", "/finance"));
    CHECK(topic_matches("+", "finance"));
    CHECK(topic_matches("a/b", "a/b"));
    CHECK_FALSE(topic_matches("a/b", "a/b/c"));
    CHECK_FALSE(topic_matches("a/b/c", "a/b"));
    CHECK_FALSE(topic_matches("a/b", "a/c"));
    CHECK_FALSE(topic_matches("Sport", "sport"));  // case-sensitive
    CHECK(topic_matches("a/+/c", "a//c"));
}

TEST_CASE("topic: wildcards at the start do not match $ topics [MQTT-4.7.2-1]") {
    CHECK_FALSE(topic_matches("#", "$SYS/broker/load"));
    CHECK_FALSE(topic_matches("+/monitor/Clients", "$SYS/monitor/Clients"));
    CHECK_FALSE(topic_matches("+", "$SYS"));
    CHECK(topic_matches("$SYS/#", "$SYS/broker/load"));
    CHECK(topic_matches("$SYS/monitor/+", "$SYS/monitor/Clients"));
    CHECK(topic_matches("$SYS/#", "$SYS"));
    CHECK(topic_matches("a/#", "a/$b"));
}
